import NIOCore
import ProtocolCore

/// One consumer group's lag on one partition of this broker, as `/metrics` exports it
/// (`metaq_consumer_lag_bytes` / `metaq_consumer_lag_messages{group,topic,partition}`;
/// docs/METRICS.md). Computed by `ConsumerLag` (shared with the dashboard's topic page): never
/// negative, a consumer offset outside the log's range counted at its nearer end (#113).
public struct ConsumerLagSample: Equatable, Sendable {
    public var group: String
    public var topic: String
    /// The partition as the group's znodes name it: `<brokerId>-<partition>`.
    public var partition: String
    /// Bytes from the group's committed offset to the partition's end (MetaQ offsets are byte
    /// positions, reference §2.3).
    public var lagBytes: Int64
    /// The same in messages, estimated at the partition's average message size.
    public var lagMessages: Int64

    public init(group: String, topic: String, partition: String, lagBytes: Int64, lagMessages: Int64) {
        self.group = group
        self.topic = topic
        self.partition = partition
        self.lagBytes = lagBytes
        self.lagMessages = lagMessages
    }

    public init(group: String, topic: String, _ lag: PartitionLag) {
        self.init(group: group, topic: topic, partition: lag.partition.description, lagBytes: lag.pendingBytes,
                  lagMessages: lag.pendingMessages)
    }
}

extension BrokerMetrics {
    /// Longest a scrape waits for consumer lag; past it the scrape answers without the lag
    /// series (and counts a failed read) rather than keep Prometheus waiting on ZooKeeper.
    public static let consumerLagTimeoutMs: Int64 = 5_000

    /// The consumer lag source for cluster mode: every group with offsets or owners on each topic
    /// of this broker, read through `perform` (a ZooKeeper session's `perform`; nil while there is
    /// no session, which fails the read). Cost per scrape: for every topic, one listing of
    /// `<root>/consumers` and one or two per group, then one read per committed partition.
    public static func zooKeeperConsumerLag(layout: MetaZooKeeperLayout,
                                            perform: @escaping @Sendable () async -> ConsumerLag.Perform?) -> ConsumerLagSource {
        { observation, loop in
            let promise = loop.makePromise(of: [ConsumerLagSample].self)
            promise.completeWithReadTask {
                guard let perform = await perform() else { throw ConsumerLagUnavailable() }
                return try await readConsumerLag(observation: observation, layout: layout, perform: perform)
            }
            return promise.futureResult
        }
    }

    /// Every group's lag on every topic that has a partition on this broker, sorted by topic,
    /// group, partition.
    public static func readConsumerLag(observation: BrokerObservation, layout: MetaZooKeeperLayout,
                                       perform: ConsumerLag.Perform) async throws -> [ConsumerLagSample] {
        let brokerId = observation.config.brokerId
        var samples: [ConsumerLagSample] = []
        for topic in Set(observation.snapshot.partitions.map(\.partition.topic)).sorted() {
            for group in try await ConsumerLag.groups(of: topic, layout: layout, perform: perform) {
                let state = try await ConsumerLag.read(group: group, topic: topic, brokerId: brokerId, layout: layout, perform: perform)
                samples += ConsumerLag.compute(brokerId: brokerId, topic: topic, observation: observation, state: state)
                    .map { ConsumerLagSample(group: group, topic: topic, $0) }
            }
        }
        return samples
    }
}

/// Consumer lag could not be read in time, or there is no ZooKeeper session to read it from.
struct ConsumerLagUnavailable: Error, CustomStringConvertible {
    var timedOut = false
    var description: String { timedOut ? "consumer lag not read within \(BrokerMetrics.consumerLagTimeoutMs) ms" : "no ZooKeeper session" }
}
