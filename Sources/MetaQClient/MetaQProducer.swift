import ProtocolCore
import Synchronization

/// Producer settings. Defaults follow MetaQ's producer (§3.3: 3000 ms timeout, round robin).
public struct ProducerSettings: Sendable {
    /// Chooses a partition for each message; round robin by default.
    public var selector: any PartitionSelector
    /// From a put leaving to its answer (§3.3 default 3000 ms); also the longest a send waits for
    /// a connection or a window slot.
    public var requestTimeoutMs: Int64
    /// Puts in flight per broker connection. Under group commit a put waits for a sync (a few ms
    /// on a busy disk), so the window, not the CPU, bounds a producer below ~256 (docs/PERFORMANCE.md).
    public var maxInFlight: Int
    /// Sends waiting per broker for the window; one more fails at once (bounded memory).
    public var maxQueued: Int
    /// How long the first send of a topic waits for ZooKeeper to list its partitions.
    public var discoveryTimeoutMs: Int64

    public init(selector: any PartitionSelector = RoundRobinSelector(), requestTimeoutMs: Int64 = 3000,
                maxInFlight: Int = 256, maxQueued: Int = 4096, discoveryTimeoutMs: Int64 = 5000) {
        self.selector = selector
        self.requestTimeoutMs = requestTimeoutMs
        self.maxInFlight = maxInFlight
        self.maxQueued = maxQueued
        self.discoveryTimeoutMs = discoveryTimeoutMs
    }
}

/// Where a message was stored (reference §1.4.1's answer).
public struct SendResult: Equatable, Hashable, Sendable {
    public var msgId: Int64
    /// The broker and its partition that stored the message.
    public var partition: BrokerPartition
    /// Byte offset of the record in the partition (§2.3).
    public var offset: Int64
    /// `meta://host:port` of the broker.
    public var broker: String
}

/// A send that failed, with the broker, topic and partition it was meant for.
public struct SendError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Equatable, Sendable {
        /// No partition of the topic is available (no broker registered it, or the selector chose none).
        case noPartition
        /// The broker refused the put (its status code and text, §1.2).
        case refused(code: Int32, text: String)
        /// The answer was lost (connection closed, timeout): the message may or may not be stored.
        case unknownOutcome(String)
        /// The put never left the client: it is certainly not stored.
        case notSent(String)
    }

    public var kind: Kind
    public var topic: String
    public var partition: BrokerPartition?
    public var broker: String?

    public var description: String {
        let place = [broker.map { "broker \($0)" }, "topic \(topic)", partition.map { "partition \($0)" }]
            .compactMap { $0 }.joined(separator: ", ")
        switch kind {
        case .noPartition:
            return "no partition available for \(place): is a broker with this topic registered in ZooKeeper?"
        case .refused(let code, let text):
            return "the broker refused the message (\(place)): \(code) \(text)"
        case .unknownOutcome(let why):
            return "the outcome is unknown (\(place)): \(why); the message may have been stored — resend if duplicates are acceptable"
        case .notSent(let why):
            return "the message was not sent (\(place)): \(why)"
        }
    }
}

/// Chooses the partition of a message among a topic's partitions, sorted by (broker, partition)
/// (§3.3). Called on the client's event loop: keep it quick.
public protocol PartitionSelector: Sendable {
    /// One of `partitions` (never empty), or nil to fail the send with `.noPartition`.
    func select(topic: String, partitions: [BrokerPartition], data: [UInt8], attribute: String?) -> BrokerPartition?
}

/// Round robin over the partitions (§3.3). Unlike MetaQ's, the first message goes to the first
/// partition (the original starts its counter at 1).
public final class RoundRobinSelector: PartitionSelector {
    private let counter = Mutex<Int>(0)  // guards the position; taken once per send
    public init() {}
    public func select(topic: String, partitions: [BrokerPartition], data: [UInt8], attribute: String?) -> BrokerPartition? {
        let index = counter.withLock { value in
            defer { value &+= 1 }
            return value
        }
        return partitions[Int(UInt(bitPattern: index) % UInt(partitions.count))]
    }
}

/// A partition chosen at random for each message (§3.3 `RandomPartitionSelector`).
public struct RandomSelector: PartitionSelector {
    public init() {}
    public func select(topic: String, partitions: [BrokerPartition], data: [UInt8], attribute: String?) -> BrokerPartition? {
        partitions.randomElement()
    }
}

/// Sends messages (§3.3). Safe to share between tasks; sends of one producer to one broker share
/// its connection and window.
public final class MetaQProducer: Sendable {
    let engine: ClientEngine
    let settings: ProducerSettings
    let id: Int
    /// The session id and local transaction numbers (§4.1); held to take a number.
    let transactionSession: Mutex<TransactionSession>

    init(engine: ClientEngine, settings: ProducerSettings) {
        self.engine = engine
        self.settings = settings
        self.id = engine.newProducerId()
        let sequence = engine.sessionSequence.withLock { value in
            defer { value += 1 }
            return value
        }
        transactionSession = Mutex(TransactionSession(sessionId: "\(engine.sessionSeed)-\(sequence)"))
    }

    /// This producer's session id, `<localIP>-<startTimeMillis>-<seq>` (§4.1): the middle part of
    /// its local transaction ids and the session of its transaction commands.
    public var sessionId: String { transactionSession.withLock { $0.sessionId } }

    /// Starts following `topic`'s partitions in ZooKeeper and waits until they are known (or
    /// `discoveryTimeoutMs` passed). Returns the partitions, sorted.
    ///
    /// - Throws: `MetaQClientError` when `topic` is not a valid topic name (see `MetaName`).
    @discardableResult
    public func publish(_ topic: String) async throws -> [BrokerPartition] {
        if let problem = MetaName.problem(with: topic) { throw MetaQClientError(MetaName.refusal("topic", topic, problem)) }
        return try await engine.publish(topic, timeoutMs: settings.discoveryTimeoutMs)
    }

    /// Sends one message and waits for the broker's answer.
    ///
    /// - Throws: `SendError`; `.notSent` at once for a topic that is not a valid name (`MetaName`:
    ///   no broker accepts it, and in ZooKeeper mode it would name a znode).
    public func send(topic: String, data: [UInt8], attribute: String? = nil) async throws(SendError) -> SendResult {
        if let refusal = Self.topicRefusal(topic) { throw refusal }
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<SendResult, SendError>, Never>) in
            engine.send(producer: self, topic: topic, data: data, attribute: attribute) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Sends without waiting: `completion` runs on the client's event loop with the outcome.
    /// Sends beyond the window wait in a bounded queue (`maxQueued`); past it they fail at once.
    public func send(topic: String, data: [UInt8], attribute: String? = nil,
                     completion: @escaping @Sendable (Result<SendResult, SendError>) -> Void) {
        if let refusal = Self.topicRefusal(topic) { return completion(.failure(refusal)) }
        engine.send(producer: self, topic: topic, data: data, attribute: attribute, completion: completion)
    }

    /// The error of a send to `topic` when it is not a valid topic name.
    static func topicRefusal(_ topic: String) -> SendError? {
        MetaName.problem(with: topic).map { SendError(kind: .notSent(MetaName.refusal("topic", topic, $0)), topic: topic) }
    }

    /// The partitions last seen for `topic` (empty before `publish`).
    public func partitions(of topic: String) async -> [BrokerPartition] {
        await engine.partitions(of: topic)
    }
}
