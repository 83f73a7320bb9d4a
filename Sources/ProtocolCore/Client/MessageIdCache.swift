/// The ids of messages a consumer group recently handled, least recently used first out
/// (reference §5.1, last bullet: MetaQ 1.4.6 keeps 4096 `group + msgId` entries per process,
/// `metaq.consumer.message_ids.lru_cache.size`). A message fetched again — after a rebalance, a
/// broker's 301 back, or a recover round — whose id is here is skipped instead of handled twice.
///
/// Every operation is O(1): a dictionary from id to a node of a doubly linked list kept in an
/// array (most recent at the head), so no decision depends on the dictionary's order.
public struct MessageIdCache: Sendable {
    /// `metaq.consumer.message_ids.lru_cache.size`'s default.
    public static let defaultCapacity = 4096

    /// The most ids kept; inserting one more evicts the least recently used.
    public let capacity: Int
    private var nodes: [Node] = []
    private var index: [Int64: Int] = [:]
    /// Most recently used, or `none` when empty.
    private var head = Self.none
    /// Least recently used, or `none` when empty.
    private var tail = Self.none
    /// Slots of removed ids, reused before the array grows.
    private var free: [Int] = []

    private static let none = -1

    private struct Node: Sendable {
        var id: Int64
        var previous: Int
        var next: Int
    }

    public init(capacity: Int = Self.defaultCapacity) {
        precondition(capacity > 0, "a message id cache needs a positive capacity")
        self.capacity = capacity
    }

    public var count: Int { index.count }

    /// Whether `id` is kept; a hit makes it the most recently used (as an access-ordered map does).
    public mutating func contains(_ id: Int64) -> Bool {
        guard let slot = index[id] else { return false }
        moveToHead(slot)
        return true
    }

    /// Keeps `id` as the most recently used; returns the id evicted to stay within `capacity`.
    @discardableResult
    public mutating func insert(_ id: Int64) -> Int64? {
        if let slot = index[id] {
            moveToHead(slot)
            return nil
        }
        var evicted: Int64?
        if index.count == capacity {
            evicted = nodes[tail].id
            remove(evicted!)
        }
        let node = Node(id: id, previous: Self.none, next: Self.none)
        let slot: Int
        if let reused = free.popLast() {
            slot = reused
            nodes[slot] = node
        } else {
            slot = nodes.count
            nodes.append(node)
        }
        link(slot)
        index[id] = slot
        return evicted
    }

    /// Forgets `id`; returns whether it was kept.
    @discardableResult
    public mutating func remove(_ id: Int64) -> Bool {
        guard let slot = index.removeValue(forKey: id) else { return false }
        unlink(slot)
        free.append(slot)
        return true
    }

    /// The kept ids, most recently used first (O(n); for inspection and tests).
    public var idsByRecency: [Int64] {
        var ids: [Int64] = []
        ids.reserveCapacity(index.count)
        var slot = head
        while slot != Self.none {
            ids.append(nodes[slot].id)
            slot = nodes[slot].next
        }
        return ids
    }

    private mutating func moveToHead(_ slot: Int) {
        guard slot != head else { return }
        unlink(slot)
        link(slot)
    }

    /// Makes the unlinked `slot` the head.
    private mutating func link(_ slot: Int) {
        nodes[slot].previous = Self.none
        nodes[slot].next = head
        if head != Self.none { nodes[head].previous = slot }
        head = slot
        if tail == Self.none { tail = slot }
    }

    private mutating func unlink(_ slot: Int) {
        let (previous, next) = (nodes[slot].previous, nodes[slot].next)
        if previous != Self.none { nodes[previous].next = next } else { head = next }
        if next != Self.none { nodes[next].previous = previous } else { tail = previous }
    }
}
