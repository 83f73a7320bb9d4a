/// A few partitions remembered with a value each, found by comparing their number and name
/// rather than hashing the name: a producer that spreads puts round robin over a topic's
/// partitions misses a one-entry memory on every put, and hashing a `TopicPartition` (SipHash
/// over the topic's bytes) cost two lookups of ~180 instructions each per put. Holds at most
/// `capacity` entries, replaced oldest first. The owner forgets an entry whose value went stale.
///
/// Inlinable so that callers in other modules specialize it (unspecialized, the generic
/// entries cost more than the hashing they save).
public struct RecentPartitions<Value> {
    @inlinable public static var capacity: Int { 16 }
    @usableFromInline var partitions: [TopicPartition] = []
    @usableFromInline var values: [Value] = []
    @usableFromInline var nextSlot = 0

    @inlinable public init() {}

    /// The value remembered for `partition`, if any.
    @inlinable
    public func value(for partition: TopicPartition) -> Value? {
        for index in partitions.indices
        where partitions[index].partition == partition.partition && partitions[index].topic == partition.topic {
            return values[index]
        }
        return nil
    }

    @inlinable
    public mutating func remember(_ partition: TopicPartition, _ value: Value) {
        if partitions.count < Self.capacity {
            partitions.append(partition)
            values.append(value)
        } else {
            partitions[nextSlot] = partition
            values[nextSlot] = value
            nextSlot = (nextSlot + 1) % Self.capacity
        }
    }

    @inlinable
    public mutating func removeAll() {
        partitions.removeAll()
        values.removeAll()
        nextSlot = 0
    }

    @inlinable public var count: Int { partitions.count }
}
