/// How a group divides a topic's partitions among its consumers (reference §3.4 steps 2–4). Every
/// member computes its own share from the same sorted lists, so the shares fit together without
/// the members talking to each other; the owner nodes only catch members that disagree for a while.
public enum RebalanceStrategy: Equatable, Hashable, Sendable {
    /// `DefaultLoadBalanceStrategy`: contiguous ranges of the sorted partition list (§3.4 step 3).
    case `default`
    /// `ConsisHashStrategy` (`loadBalanceStrategyType=CONSIST`): an MD5 ring with 160 points per
    /// consumer (§3.4 step 4).
    case consistentHash

    /// The partitions `me` takes, in the order of `partitions`. Both lists must already be sorted
    /// with `RebalanceStrategy.precedes` (§3.4 step 2); a `me` not in `consumers` gets nothing.
    public func assign(partitions: [String], consumers: [String], me: String) -> [String] {
        guard let index = consumers.firstIndex(of: me), !partitions.isEmpty else { return [] }
        switch self {
        case .default:
            return Array(partitions[Self.defaultRange(partitions: partitions.count, consumers: consumers.count, index: index)])
        case .consistentHash:
            let ring = HashRing(consumers: consumers)
            return partitions.filter { consumers[ring.owner(of: $0)] == me }
        }
    }

    /// §3.4 step 3: `n = P / C`, `extra = P % C`, consumer `i` takes `count = n + (i < extra ? 1 : 0)`
    /// partitions from `start = n*i + min(i, extra)`. Consumers beyond `P` get an empty range.
    public static func defaultRange(partitions: Int, consumers: Int, index: Int) -> Range<Int> {
        precondition(consumers > 0 && (0..<consumers).contains(index) && partitions >= 0, "index must be a consumer's")
        let perConsumer = partitions / consumers
        let extra = partitions % consumers
        let start = perConsumer * index + min(index, extra)
        let count = perConsumer + (index < extra ? 1 : 0)
        return start..<(start + count)
    }

    /// Java's `String.compareTo` order (UTF-16 code units), in which the original sorts consumer
    /// ids and partition strings: `"0-10"` comes before `"0-2"` (§3.4 step 2). Swift's `<` agrees
    /// for ASCII but not for every non-ASCII id, so the group never relies on it.
    public static func precedes(_ a: String, _ b: String) -> Bool {
        a.utf16.lexicographicallyPrecedes(b.utf16)
    }

    /// The partition strings of a topic from the children of its `topics-sub` node (§3.4 step 2):
    /// for every child `<brokerId>-m` or `<brokerId>-s<n>`, `"<brokerId>-<k>"` for `k < numParts`.
    /// A master and its slaves give the same strings, which appear once. Sorted as strings.
    public static func partitionStrings(topicSubChildren: [(name: String, registration: TopicRegistration)]) -> [String] {
        var strings = Set<String>()
        for child in topicSubChildren {
            guard let node = BrokerNodeName(child.name) else { continue }
            for k in 0..<max(0, child.registration.numParts) {
                strings.insert(BrokerPartition(brokerId: node.brokerId, partition: k).description)
            }
        }
        return strings.sorted(by: precedes)
    }

    /// The ids of the consumers whose topic list contains `topic`, sorted as strings (§3.4 step 2).
    public static func consumers(subscribedTo topic: String, in members: [(id: String, topics: [String])]) -> [String] {
        var ids = Set<String>()
        for member in members where member.topics.contains(topic) { ids.insert(member.id) }
        return ids.sorted(by: precedes)
    }
}

/// The consistent-hash ring of §3.4 step 4.
///
/// Ties: the original keeps the ring in a `TreeMap`, filled consumer by consumer (in the sorted
/// list's order), `j` ascending, then point `h` ascending, so when two points are equal the one
/// put last wins. This ring does the same: of equal points, the latest in that order owns it.
struct HashRing {
    static let digestsPerConsumer = 40

    /// Ascending ring points, each with the index of its consumer; no two points equal.
    private(set) var points: [(point: UInt32, consumer: Int)]

    init(consumers: [String]) {
        // Each point packed with its insertion order (point in the high word): sorting plain
        // integers costs a fraction of sorting tuples, and the ring is built at every rebalance.
        let pointsPerConsumer = Self.digestsPerConsumer * 4
        var all: [UInt64] = []
        all.reserveCapacity(consumers.count * pointsPerConsumer)
        for id in consumers {
            for j in 0..<Self.digestsPerConsumer {
                let digest = MD5.digest(id + "-" + String(j))
                for h in 0..<4 {
                    all.append(UInt64(Self.littleEndianWord(digest, at: 4 * h)) << 32 | UInt64(all.count))
                }
            }
        }
        all.sort()
        points = []
        points.reserveCapacity(all.count)
        for entry in all {
            let point = UInt32(truncatingIfNeeded: entry >> 32)
            let consumer = Int(entry & 0xFFFF_FFFF) / pointsPerConsumer
            if let last = points.last, last.point == point {
                points[points.count - 1] = (point, consumer)
            } else {
                points.append((point, consumer))
            }
        }
    }

    /// A partition string's position: the little-endian word of its digest's first four bytes.
    static func hash(_ key: String) -> UInt32 { littleEndianWord(MD5.digest(key), at: 0) }

    /// The consumer index owning `key`: the first point at or after its hash, wrapping to the first.
    func owner(of key: String) -> Int {
        precondition(!points.isEmpty, "a ring needs a consumer")
        let target = Self.hash(key)
        var low = 0
        var high = points.count
        while low < high {
            let mid = (low + high) / 2
            if points[mid].point < target { low = mid + 1 } else { high = mid }
        }
        return points[low == points.count ? 0 : low].consumer
    }

    static func littleEndianWord(_ bytes: [UInt8], at i: Int) -> UInt32 {
        UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
    }
}
