import ProtocolCore
import Synchronization

/// Chooses the partition of an ordered message among the *configured* partitions (reference §5.6,
/// `ConfigPartitionsAware`): the choice must not depend on which partitions are available now, so
/// a key always maps to the same partition and its messages stay in one ordered lane.
public protocol OrderedPartitionSelector: Sendable {
    /// One of `partitions` (the configured list, sorted; never empty), or nil to refuse the send.
    func select(topic: String, key: String, partitions: [BrokerPartition]) -> BrokerPartition?
}

/// The default: the CRC32 of the key's UTF-8 modulo the number of configured partitions. Stable
/// across processes and machines (unlike Swift's `hashValue`); changing the configured list moves
/// keys to other partitions.
public struct KeyHashSelector: OrderedPartitionSelector {
    public init() {}
    public func select(topic: String, key: String, partitions: [BrokerPartition]) -> BrokerPartition? {
        partitions[Int(CRC32.checksum(Array(key.utf8)) % UInt32(partitions.count))]
    }
}

/// Settings of an ordered producer (§5.6).
public struct OrderedProducerSettings: Sendable {
    /// The partitions messages may go to, whether available or not (§5.6 ConfigPartitionsAware).
    /// In direct mode (`servers:`), broker id `i` is the client's `i`-th server.
    public var partitions: [BrokerPartition]
    /// Root of the local spool; nil for `~/.meta_ordered`. One producer per root. Layout:
    /// `<root>/<topic>@<brokerId>-<partition>/spool.log` (see `OrderedSpool`).
    public var spoolPath: String?
    public var selector: any OrderedPartitionSelector
    /// From a put leaving to its answer (§3.3 default 3000 ms); also the longest a send waits for a
    /// connection before it counts as not sent (and is spooled).
    public var requestTimeoutMs: Int64
    /// Sends in flight per partition. 1 (the default) keeps the broker's copy in send order; more
    /// is faster but a failure inside the window may store its later messages twice, out of order
    /// (see `OrderedSendQueue.Settings.maxInFlightPerLane`).
    public var maxInFlightPerPartition: Int
    /// Messages waiting in memory for their turn, over all partitions; one more fails at once.
    public var maxQueued: Int
    /// Messages the spool may hold; one more fails at once.
    public var maxSpooled: Int
    /// Delay before a partition whose send or replay failed is tried again; grows by `retryStepMs`
    /// per miss up to `retryMaxMs`.
    public var retryStepMs: Int64
    public var retryMaxMs: Int64
    /// ZooKeeper mode: how long the first send of a topic waits for its partitions to be listed.
    public var discoveryTimeoutMs: Int64

    public init(partitions: [BrokerPartition], spoolPath: String? = nil,
                selector: any OrderedPartitionSelector = KeyHashSelector(), requestTimeoutMs: Int64 = 3000,
                maxInFlightPerPartition: Int = 1, maxQueued: Int = 4096, maxSpooled: Int = 1_000_000,
                retryStepMs: Int64 = 500, retryMaxMs: Int64 = 10_000, discoveryTimeoutMs: Int64 = 5000) {
        self.partitions = partitions
        self.spoolPath = spoolPath
        self.selector = selector
        self.requestTimeoutMs = requestTimeoutMs
        self.maxInFlightPerPartition = maxInFlightPerPartition
        self.maxQueued = maxQueued
        self.maxSpooled = maxSpooled
        self.retryStepMs = retryStepMs
        self.retryMaxMs = retryMaxMs
        self.discoveryTimeoutMs = discoveryTimeoutMs
    }
}

/// Where an ordered send ended.
public enum OrderedSendResult: Equatable, Sendable {
    /// The broker stored it.
    case sent(SendResult)
    /// The partition could not take it now: it is in the local spool (synced to disk) and will be
    /// sent, in order, when the partition is available again — also by a later process.
    case spooled(BrokerPartition)

    /// The partition the message went to (or will).
    public var partition: BrokerPartition {
        switch self {
        case .sent(let result): return result.partition
        case .spooled(let partition): return partition
        }
    }
}

/// A producer that keeps per-key order (reference §5.6): each key maps to one configured partition,
/// and a partition's messages reach the broker in send order. While a partition is unavailable
/// (not listed in ZooKeeper, broker unreachable, 403 closed partition, answer lost) its messages go
/// to a local spool, and are replayed from it in order when the partition is back. At least once:
/// a message whose answer was lost is sent again, so it may be stored twice.
public final class MetaQOrderedProducer: Sendable {
    let engine: ClientEngine
    let link: OrderedLink
    let settings: OrderedProducerSettings
    /// Topics already published (ZooKeeper mode); guards a set touched once per send.
    private let published = Mutex<Set<String>>([])

    init(engine: ClientEngine, settings: OrderedProducerSettings) throws {
        self.engine = engine
        self.settings = settings
        link = try engine.openOrdered(settings)
    }

    /// Sends `data` under `key`: to the partition the selector maps the key to, in order after the
    /// key's earlier messages. Returns once the broker stored it or the spool holds it (synced).
    ///
    /// - Throws: `SendError` when it is stored nowhere: refused by the broker (other than 403),
    ///   the selector chose no configured partition, the queue or the spool is full, or the spool
    ///   write failed, or the topic is not a valid name (`MetaName`: it names the spool directory).
    public func send(topic: String, key: String, data: [UInt8], attribute: String? = nil) async throws(SendError) -> OrderedSendResult {
        if let refusal = MetaQProducer.topicRefusal(topic) { throw refusal }
        let partitions = link.partitions
        guard let partition = settings.selector.select(topic: topic, key: key, partitions: partitions),
              partitions.contains(partition) else {
            throw SendError(kind: .noPartition, topic: topic)
        }
        // Every send until the topic is known waits for it (concurrent first sends too), so none
        // is spooled only because the listing had not arrived yet.
        if !engine.isDirect, !published.withLock({ $0.contains(topic) }) {
            _ = try? await engine.publish(topic, timeoutMs: settings.discoveryTimeoutMs)
            published.withLock { _ = $0.insert(topic) }
        }
        let lane = OrderedLane(topic: topic, partition: partition)
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<OrderedSendResult, SendError>, Never>) in
            engine.orderedSend(link, lane, data: data, attribute: attribute) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Messages in the spool of `topic`'s `partition`.
    public func spoolDepth(topic: String, partition: BrokerPartition) async -> Int {
        (try? await engine.onLoop { self.link.machine.spoolDepth(of: OrderedLane(topic: topic, partition: partition)) }) ?? 0
    }

    /// Messages in all spools of this producer.
    public func spoolDepth() async -> Int {
        (try? await engine.onLoop { self.link.machine.totalSpooled }) ?? 0
    }

    /// Stops sending and replaying: messages waiting or in flight are spooled (to be replayed by
    /// the next producer on this spool), and the spool is closed. `MetaQClient.shutdown()` does this too.
    public func close() async {
        try? await engine.onLoop { self.engine.closeOrdered(self.link) }
        await engine.storeQueueDrained()
    }
}
