/// One ordered stream of an ordered producer (reference §5.6): a topic and one of its configured
/// partitions. Order is kept per lane; lanes are independent.
public struct OrderedLane: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var topic: String
    public var partition: BrokerPartition

    public init(topic: String, partition: BrokerPartition) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)@\(partition)" }

    public static func < (a: OrderedLane, b: OrderedLane) -> Bool {
        (a.topic, a.partition) < (b.topic, b.partition)
    }
}

/// A message read back from a lane's spool (oldest first); `sequence` names it for removal.
public struct SpooledMessage: Equatable, Sendable {
    /// Increasing within the lane's spool; `.unspool(through:)` removes up to it.
    public var sequence: UInt64
    public var flag: Int32
    /// The payload as in a `put` (§1.4.1, see `MessagePayload.encode`).
    public var payload: [UInt8]

    public init(sequence: UInt64, flag: Int32, payload: [UInt8]) {
        self.sequence = sequence
        self.flag = flag
        self.payload = payload
    }
}

/// What became of one ordered send (§5.6): stored by the broker, or kept locally to be replayed in
/// order, or neither (and then the application knows).
public enum OrderedSendOutcome: Equatable, Sendable {
    /// The broker stored it: §1.4.1's answer.
    case sent(msgId: Int64, partition: Int32, offset: Int64)
    /// Durably written to the lane's spool (synced); it will be sent, in order, when the partition
    /// is available again.
    case spooled
    /// The broker refused it with a code other than 403 (a closed partition spools instead); it is
    /// stored nowhere.
    case refused(code: Int32, text: String)
    /// Not taken: stored nowhere.
    case notAccepted(NotAccepted)

    public enum NotAccepted: Equatable, Sendable {
        /// `maxWaiting` messages already wait for a window slot or for the sends ahead of them.
        case queueFull
        /// The spools already hold `maxSpooled` messages.
        case spoolFull
        /// The spool write failed (the store reports why to the driver).
        case spoolWriteFailed
        /// The message cannot be written as a `put` (§1.4.1); says why.
        case invalidRequest(String)
    }
}

extension OrderedSendQueue {
    public struct Settings: Equatable, Sendable {
        /// Sends in flight per lane, live or replayed. With 1 (the default) a lane's messages reach
        /// the broker in send order, a message with an unknown outcome at most twice in a row. A
        /// larger window is faster, but a failure inside it makes the later messages of the window
        /// go through the spool too, so they may be stored twice and out of order (their last copies
        /// are in order).
        public var maxInFlightPerLane: Int
        /// Messages accepted but neither sent nor spooled yet, over all lanes (bounded memory).
        public var maxWaiting: Int
        /// Messages in all spools, written or being written; one more is `.spoolFull`.
        public var maxSpooled: Int
        /// Delay before a lane whose send or replay failed is tried again (grows with misses).
        public var retryBackoff: Backoff

        public init(maxInFlightPerLane: Int = 1, maxWaiting: Int = 4096, maxSpooled: Int = 1_000_000,
                    retryBackoff: Backoff = Backoff(stepMs: 500, maxMs: 10_000)) {
            precondition(maxInFlightPerLane >= 1 && maxWaiting >= 0 && maxSpooled >= 0,
                         "maxInFlightPerLane >= 1, maxWaiting >= 0, maxSpooled >= 0")
            self.maxInFlightPerLane = maxInFlightPerLane
            self.maxWaiting = maxWaiting
            self.maxSpooled = maxSpooled
            self.retryBackoff = retryBackoff
        }
    }

    public enum Event: Equatable, Sendable {
        /// The application sends a message to `lane` (the selector already chose its partition
        /// among the configured ones); `id` is the caller's, echoed in `.completed`.
        case send(id: UInt64, lane: OrderedLane, flag: Int32, payload: [UInt8])
        /// The partitions a directory lists for `topic` now (ZooKeeper mode, §3.3). A topic never
        /// listed counts as available: its sends are tried and their outcomes decide.
        case partitionsListed(topic: String, [BrokerPartition])
        /// The outcome of a `.transmit` with this token.
        case transmitted(token: UInt64, SendOutcome)
        /// The `.spool` with this token was written and synced (true) or failed (false).
        case spoolWritten(token: UInt64, succeeded: Bool)
        /// The answer to `.readSpool`: the lane's oldest spooled messages (fewer than asked, or
        /// none, when the spool holds fewer).
        case spoolRead(lane: OrderedLane, [SpooledMessage])
        /// The answer to `.readSpool` when the spool could not be read (never answer `[]` then:
        /// that says the spool is empty). The lane keeps its count and is tried again later.
        case spoolReadFailed(lane: OrderedLane)
        /// The answer to `.unspool`: the removal was written and synced (true) or failed (false:
        /// its messages are still spooled and will be sent again).
        case unspooled(lane: OrderedLane, through: UInt64, succeeded: Bool)
        /// A spool found at start (an earlier process's) holds `count` messages of `lane`.
        case recovered(lane: OrderedLane, count: Int)
        /// The producer closes: nothing more is sent or replayed; what waits is spooled as its
        /// sends in flight resolve.
        case close
        /// Time passed (answers a `.scheduleTick`).
        case tick
    }

    public enum Action: Equatable, Sendable {
        /// Send this put to the lane's partition; answer with `.transmitted(token:)`.
        case transmit(token: UInt64, lane: OrderedLane, flag: Int32, payload: [UInt8])
        /// Append to the lane's spool and sync; answer with `.spoolWritten(token:)`, in order.
        case spool(token: UInt64, lane: OrderedLane, flag: Int32, payload: [UInt8])
        /// Read up to `count` of the lane's oldest spooled messages; answer with `.spoolRead`.
        case readSpool(lane: OrderedLane, count: Int)
        /// Remove the lane's spooled messages up to `sequence` (the broker acknowledged them),
        /// durably; answer with `.unspooled`, in order.
        case unspool(lane: OrderedLane, through: UInt64)
        /// The outcome of the send with this id; exactly one per `.send`.
        case completed(id: UInt64, OrderedSendOutcome)
        /// Deliver `.tick` at or after this instant.
        case scheduleTick(at: Instant)
    }

    /// Running totals, for statistics and tests.
    public struct Counters: Equatable, Sendable {
        public var submitted = 0
        /// Live sends the broker acknowledged.
        public var sent = 0
        /// Messages written to a spool.
        public var spooled = 0
        /// Spooled messages the broker acknowledged (and that were removed from the spool).
        public var replayed = 0
        /// Replay windows stopped by a failure.
        public var replayFailures = 0
        /// Spool reads that failed (the lane was tried again later).
        public var spoolReadFailures = 0
        /// Removals of replayed messages that failed (the messages were sent again).
        public var unspoolFailures = 0
        /// Messages that went to the spool although the broker had acknowledged them, because an
        /// earlier message of their lane had failed (windows above 1): they will be stored twice.
        public var resentAfterAcknowledgement = 0
        public var refused = 0
        public var notAccepted = 0
    }
}
