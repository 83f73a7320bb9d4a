import ProtocolCore

/// The file descriptors a broker may need at once, compared with the process's limit at start so
/// that running out is a warning in the log then, not a surprise under load (DESIGN.md §8).
///
/// One per partition (its active segment: sealed segments are opened only for the call that reads,
/// syncs or removes them), one per connection up to `maxConnections`, and a fixed headroom for the
/// rest: the listening socket, the event loop's and signal descriptors, standard streams and the
/// log, a data directory opened for its sync, a `synced-through` mark, a sealed segment opened for
/// a moment, segments held for gets being sent, ZooKeeper's sockets.
public struct DescriptorBudget: Equatable, Sendable {
    public static let headroom = 128

    /// Partitions on disk and those the configured topics will have (a topic pattern's partitions
    /// cannot be counted before its topics appear).
    public var partitions: Int
    public var maxConnections: Int

    public init(partitions: Int, maxConnections: Int) {
        self.partitions = partitions
        self.maxConnections = maxConnections
    }

    public var needed: Int { partitions + maxConnections + Self.headroom }
}

extension PartitionStores {
    /// The descriptors this broker may need: its partitions as found on disk and as configured.
    public func descriptorBudget() -> DescriptorBudget {
        var partitions = Set(logs.keys)
        for section in config.topics where !section.isPattern {
            let count = config.topicConfig(for: section.name)?.numPartitions ?? config.numPartitions
            for n in 0..<max(0, count) { partitions.insert(TopicPartition(section.name, Int32(clamping: n))) }
        }
        return DescriptorBudget(partitions: partitions.count, maxConnections: config.maxConnections)
    }
}
