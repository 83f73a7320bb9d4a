/// A few partitions remembered with a value each, found by comparing their number and name
/// rather than hashing the name: a producer that spreads puts round robin over a topic's
/// partitions misses a one-entry memory on every put, and hashing a `TopicPartition` (SipHash
/// over the topic's bytes) cost two lookups of ~180 instructions each per put. Holds at most
/// `capacity` entries, replaced oldest first. The owner forgets an entry whose value went stale.
public struct RecentPartitions<Value> {
    public static var capacity: Int { 16 }
    private var entries: [(partition: TopicPartition, value: Value)] = []
    private var nextSlot = 0

    public init() {}

    /// The value remembered for `partition`, if any.
    @inline(__always)
    public func value(for partition: TopicPartition) -> Value? {
        for index in entries.indices
        where entries[index].partition.partition == partition.partition && entries[index].partition.topic == partition.topic {
            return entries[index].value
        }
        return nil
    }

    public mutating func remember(_ partition: TopicPartition, _ value: Value) {
        if entries.count < Self.capacity {
            entries.append((partition, value))
        } else {
            entries[nextSlot] = (partition, value)
            nextSlot = (nextSlot + 1) % Self.capacity
        }
    }

    public mutating func removeAll() {
        entries.removeAll()
        nextSlot = 0
    }

    public var count: Int { entries.count }
}
