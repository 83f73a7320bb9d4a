extension ProducerRouter {
    /// How long a send may wait for its topic's partitions, and how many may wait: the sending
    /// producer's settings (a send carries them, so producers with different settings share one
    /// router). The bound is per topic.
    public struct Wait: Equatable, Sendable {
        /// Sends already waiting for the topic's partitions beyond which a new one is refused.
        public var maxBacklog: Int
        /// How long the first waiting send of a topic waits; the whole backlog fails after it.
        public var timeoutMs: Int64

        public init(maxBacklog: Int, timeoutMs: Int64) {
            precondition(maxBacklog >= 0, "maxBacklog must not be negative")
            precondition(timeoutMs >= 0, "timeoutMs must not be negative")
            self.maxBacklog = maxBacklog
            self.timeoutMs = timeoutMs
        }
    }

    public enum Event: Equatable, Sendable {
        /// The application sends to `topic`; `id` is the caller's, echoed in `.route` or `.fail`.
        case send(id: UInt64, topic: String, wait: Wait)
        /// The publish directory reported the topic's partitions (possibly none).
        case partitionsChanged(topic: String, [PublishDirectory.Target])
        /// `publish(topic)` (§3.3): end the wait `waiter` once the topic is listed, or after
        /// `timeoutMs`, whichever comes first.
        case awaitTopic(waiter: UInt64, topic: String, timeoutMs: Int64)
        /// Time passed (answers a `.scheduleTick`).
        case tick
        /// The client shuts down: everything waiting ends, later sends fail.
        case shutDown
    }

    public enum Action: Equatable, Sendable {
        /// Ask the publish directory to follow `topic` (once per topic).
        case publish(topic: String)
        /// Send `id` now to one of `partitions` (the topic's listed partitions, sorted, never
        /// empty): the driver applies the producer's partition selector and hands the message to
        /// that broker's `ProducerMachine`.
        case route(id: UInt64, topic: String, partitions: [BrokerPartition])
        /// Send `id` will not be routed: it is certainly not stored anywhere.
        case fail(id: UInt64, topic: String, FailReason)
        /// The wait `waiter` of `.awaitTopic` is over (listed, timed out, or shut down).
        case topicWaitEnded(waiter: UInt64, topic: String)
        case scheduleTick(at: Instant)
    }

    public enum FailReason: Equatable, Sendable {
        /// The topic is listed with no partition (no broker accepts it now).
        case noPartition
        /// The topic's partitions were not discovered within the wait's timeout.
        case discoveryTimedOut(ms: Int64)
        /// `maxBacklog` sends already wait for the topic's partitions.
        case backlogFull(bound: Int)
        /// The router was shut down; `wasWaiting` when the send waited for discovery then.
        case shutDown(wasWaiting: Bool)
    }

    /// What the router did, for statistics and the simulator's report.
    public struct Counters: Equatable, Sendable {
        /// Sends handed out with `.route` (at once or after a wait).
        public var routed: UInt64 = 0
        /// Sends that waited for their topic's partitions.
        public var discoveryWaits: UInt64 = 0
        /// Waiting sends failed because discovery took longer than their wait.
        public var discoveryTimeouts: UInt64 = 0
        /// Sends refused because the topic's backlog was at its bound.
        public var backlogRefusals: UInt64 = 0

        public init() {}
    }
}
