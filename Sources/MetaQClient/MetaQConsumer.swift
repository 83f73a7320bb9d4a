import Glibc
import Logging
import ProtocolCore
import Runtime

/// Where a consumer group keeps its offsets (§5.4).
public enum OffsetStorage: Equatable, Sendable {
    /// `/meta/consumers/<group>/offsets/<topic>/<broker>-<partition>` = `<msgId>-<offset>` (the default).
    case zooKeeper
    /// A JSON file in LocalOffsetStorage's format (`~/.meta_offsets` by default); suitable when a
    /// group has one consumer (broadcast, direct mode).
    case localFile(String)
}

/// Consumer settings; defaults are MetaQ's `ConsumerConfig` values (§3.4, §5.1, §5.4).
public struct ConsumerSettings: Sendable {
    /// `ConsumerConfig.consumerId`; nil: `<local IP>-<pid>-<random>` (§3.1). Registered as `<group>_<id>`.
    public var consumerId: String?
    public var strategy: RebalanceStrategy
    /// Where a partition without a stored offset starts (`ConsumerConfig.offset`, §3.4 step 6).
    public var startOffset: Int64
    /// Start partitions without a stored offset at the end (`alwaysConsumeFromMaxOffset`).
    public var consumeFromMaxOffset: Bool
    public var offsetStorage: OffsetStorage
    /// `commitOffsetPeriodInMills`, 5000.
    public var commitIntervalMs: Int64
    /// `maxSize` of a fetch (the size given to `subscribe`, §5.1).
    public var fetchSizeBytes: Int32
    /// `fetchTimeoutInMills`, 10000.
    public var fetchTimeoutMs: Int64
    /// `maxDelayFetchTimeInMills`, 5000: the longest wait after an empty fetch or an error.
    public var maxFetchDelayMs: Int64
    /// Wait between claim attempts of a rebalance (`zkSyncTimeMs`, 5000).
    public var rebalanceRetryDelayMs: Int64
    /// Direct mode only: the partitions to fetch (`ConsumerConfig.partition`, §1.7).
    public var directPartitions: [BrokerPartition]
    /// `maxFetchRetries`, 5: a message the handler fails is fetched again (the partition waiting
    /// at it) until it failed this many times plus one, then handed to `rejection` (§5.2).
    public var maxFetchRetries: Int
    /// Where a message goes after its last retry (`RejectConsumptionHandler`, §5.2).
    public var rejection: RejectionPolicy
    /// `recoverMessageIntervalInMills`, 5 min: how often stored messages are handed to the
    /// handler again (the first round after at most 5 s).
    public var recoverIntervalMs: Int64
    /// Ids of handled messages kept per group and process (`metaq.consumer.message_ids.lru_cache.size`,
    /// 4096, §5.1): a message fetched again whose id is there — after a rebalance, a broker's 301
    /// back, a rollback of the messages after an ack — is skipped as handled; one in the recover
    /// store is removed unhandled. 0 disables the cache for this consumer. The consumers of one
    /// group in a client share one cache, sized by the first of them.
    public var dedupCacheSize: Int

    public init(consumerId: String? = nil, strategy: RebalanceStrategy = .default, startOffset: Int64 = 0,
                consumeFromMaxOffset: Bool = false, offsetStorage: OffsetStorage = .zooKeeper,
                commitIntervalMs: Int64 = 5000, fetchSizeBytes: Int32 = 1024 * 1024, fetchTimeoutMs: Int64 = 10_000,
                maxFetchDelayMs: Int64 = 5000, rebalanceRetryDelayMs: Int64 = 5000,
                directPartitions: [BrokerPartition] = [BrokerPartition(brokerId: 0, partition: 0)],
                maxFetchRetries: Int = 5, rejection: RejectionPolicy = .recoverLocally(path: nil),
                recoverIntervalMs: Int64 = 300_000, dedupCacheSize: Int = MessageIdCache.defaultCapacity) {
        precondition(maxFetchRetries >= 0 && recoverIntervalMs > 0, "maxFetchRetries >= 0, recoverIntervalMs > 0")
        precondition(dedupCacheSize >= 0, "dedupCacheSize must not be negative")
        self.consumerId = consumerId
        self.strategy = strategy
        self.startOffset = startOffset
        self.consumeFromMaxOffset = consumeFromMaxOffset
        self.offsetStorage = offsetStorage
        self.commitIntervalMs = commitIntervalMs
        self.fetchSizeBytes = fetchSizeBytes
        self.fetchTimeoutMs = fetchTimeoutMs
        self.maxFetchDelayMs = maxFetchDelayMs
        self.rebalanceRetryDelayMs = rebalanceRetryDelayMs
        self.directPartitions = directPartitions
        self.maxFetchRetries = maxFetchRetries
        self.rejection = rejection
        self.recoverIntervalMs = recoverIntervalMs
        self.dedupCacheSize = dedupCacheSize
    }
}

/// What a consumer does with a message its handler failed `maxFetchRetries + 1` times (§5.2).
public enum RejectionPolicy: Sendable, Equatable {
    /// Keep it durably in the local recover store, one per `<topic>@<group>` under `path` (nil:
    /// `~/.meta_recover`), and hand it to the handler again every `recoverIntervalMs` until it
    /// succeeds (a failing one is kept for the next round, MetaQ issue #111). `LocalRecoverPolicy`.
    case recoverLocally(path: String?)
    /// Log and discard it (`DropPolicy`).
    case drop
}

/// A message handed to a consumer's handler.
public struct ReceivedMessage: Sendable, Equatable {
    public var topic: String
    public var partition: BrokerPartition
    /// Where the record starts in the partition (§2.3).
    public var offset: Int64
    public var id: Int64
    public var attribute: String?
    public var data: [UInt8]

    /// The payload as UTF-8 text.
    public var text: String { String(decoding: data, as: UTF8.self) }
}

/// One member of a consumer group (§3.4, §5.1): it registers in ZooKeeper, takes its share of the
/// subscribed topics' partitions, fetches each with one request in flight (so a partition's
/// messages reach the handler in order, one at a time), and commits offsets every
/// `commitIntervalMs`, before each rebalance and on `close()`.
///
/// ```swift
/// let consumer = try client.consumer(group: "g1")
/// try consumer.subscribe("test")
/// try await consumer.run { message in print(message.text) }   // until consumer.close()
/// ```
/// A handler that throws marks the message failed: the partition does not move past it and the
/// message is fetched and handed over again after the fetch back-off, up to `maxFetchRetries`
/// times, then handed to the rejection policy (§5.2). Delivery is at least once; the dedup cache
/// (§5.1) keeps a message fetched again from reaching the handler twice within one process.
public final class MetaQConsumer: Sendable {
    let engine: ClientEngine
    let id: Int
    public let group: String
    /// `<group>_<consumerId>` as registered in ZooKeeper.
    public let consumerIdString: String

    init(engine: ClientEngine, group: String, settings: ConsumerSettings) throws {
        // The group names znodes, a wire token and the recover store's directory (§5.2).
        if let problem = MetaName.problem(with: group) {
            throw MetaQClientError(MetaName.refusal("group", group, problem))
        }
        let suffix = settings.consumerId ?? Self.defaultConsumerId()
        guard Self.isName(suffix) else {
            throw MetaQClientError("bad consumerId \"\(suffix)\": it becomes a znode name (no spaces, '/' or ',')")
        }
        self.engine = engine
        self.group = group
        consumerIdString = group + "_" + suffix
        id = engine.addConsumer(group: group, consumerId: consumerIdString, settings: settings)
    }

    static func isName(_ name: String) -> Bool { MetaZooKeeperLayout.isName(name) }

    static func defaultConsumerId() -> String {
        let ip = NetworkAddresses.firstNonLoopbackIPv4() ?? "127.0.0.1"
        var random = SystemRandomNumberGenerator()
        let tag = String(random.next() & 0xffff_ffff_ffff, radix: 16)
        return "\(ip)-\(getpid())-\(tag)"
    }

    /// Subscribes to `topic` (before `run`). A `filter` (§5.7, `ConsumerMessageFilter`) sees each
    /// message of the topic first, in the handler's task: when it returns false — or throws, which
    /// is logged — the message is skipped as handled (the committed offset moves past it).
    /// Subscribing again replaces the filter.
    ///
    /// - Throws: `MetaQClientError` when `topic` is not a valid topic name (1 to 120 ASCII
    ///   letters, digits, `.`, `_` or `-`): it names znodes and the local recover store.
    public func subscribe(_ topic: String, filter: (@Sendable (ReceivedMessage) throws -> Bool)? = nil) throws {
        if let problem = MetaName.problem(with: topic) { throw MetaQClientError(MetaName.refusal("topic", topic, problem)) }
        engine.subscribe(consumer: id, topic: topic, filter: filter)
    }

    /// Joins the group and hands every message of the owned partitions to `handler` until
    /// `close()`. Partitions are handled concurrently, each in order. A message counts as
    /// handled, and may be committed, when the handler returns.
    public func run(_ handler: @escaping @Sendable (ReceivedMessage) async throws -> Void) async throws {
        try await engine.run(consumer: id, handler: .automatic(handler))
    }

    /// `run` with manual acknowledgement (§5.3): the handler decides with its `Acknowledger`
    /// what is committed — nothing past its last `ack()` — and can `rollback` to have messages
    /// delivered again. The next batch of a partition is fetched without waiting for acks.
    /// Messages redelivered from the recover store (§5.2) count as handled when the handler
    /// returns; acknowledger calls on them do nothing.
    public func run(manualAck handler: @escaping @Sendable (ReceivedMessage, Acknowledger) async throws -> Void) async throws {
        try await engine.run(consumer: id, handler: .manual(handler))
    }

    /// Commits offsets, gives up the partitions and leaves the group; `run` returns.
    public func close() async {
        await engine.close(consumer: id)
    }

    /// The partitions this member owns now, per topic.
    public func owned() async -> [String: [BrokerPartition]] {
        await engine.owned(consumer: id)
    }
}
