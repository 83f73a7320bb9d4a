/// One consumer group's lag on one partition, as `/metrics` exports it
/// (`metaq_consumer_lag_bytes{group,topic,partition}`; docs/METRICS.md).
///
/// HOOK: the rows come from a closure given to `BrokerMetrics` (in cluster mode, read from
/// ZooKeeper's consumer offsets, §3.2 of reference/metaq.md). The dashboard's
/// `Sources/Runtime/HTTP/ConsumerLag.swift` computes the lag for its page; the lead maps its rows
/// to these when wiring both (this branch could not take that file: it did not exist yet).
public struct ConsumerLagSample: Equatable, Sendable {
    public var group: String
    public var topic: String
    /// The partition as the consumer offsets name it: `<brokerId>-<partition>` in ZooKeeper.
    public var partition: String
    /// The broker's end of the partition minus the group's committed offset (MetaQ offsets are
    /// byte positions), never negative.
    public var lagBytes: Int64

    public init(group: String, topic: String, partition: String, lagBytes: Int64) {
        self.group = group
        self.topic = topic
        self.partition = partition
        self.lagBytes = lagBytes
    }
}
