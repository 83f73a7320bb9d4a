/// What became of one `send`: the only four answers a producer can honestly give.
public enum SendOutcome: Equatable, Sendable {
    /// `result 200` with `"<msgId> <partition> <offset>"` (reference §1.4.1): stored at `offset`.
    case acknowledged(msgId: Int64, partition: Int32, offset: Int64)
    /// The broker answered with a code other than 200 (§1.2) and its error text: it refused the put.
    case failed(code: Int32, text: String)
    /// The put was handed to the connection but its answer was lost: it may or may not be stored.
    case unknown(UnknownReason)
    /// The put never left the machine: it is certainly not stored.
    case rejected(RejectReason)

    public enum UnknownReason: Equatable, Sendable {
        /// The connection closed (or was closed by the machine) with the put in flight.
        case connectionLost
        /// No answer within the request timeout.
        case timedOut
        /// A `result 200` whose body is not `"<msgId> <partition> <offset>"`; the body text.
        case malformedAnswer(String)
    }

    public enum RejectReason: Equatable, Sendable {
        /// The wait queue was at its bound (`Settings.maxQueued`).
        case queueFull
        /// No connection or window slot within the request timeout of the send.
        case expired
        /// The request cannot be written as a `put` line (§1.4.1); says why.
        case invalidRequest(String)
    }
}

extension ProducerMachine {
    public struct Settings: Equatable, Sendable {
        /// Time from a put's frame going out to its answer, and the longest a send waits in the
        /// queue; also the longest a connection attempt may take.
        public var requestTimeoutMs: Int64
        /// Puts in flight at once on the connection (the window).
        public var maxInFlight: Int
        /// Sends waiting for a connection or a window slot; one more is rejected with `.queueFull`.
        public var maxQueued: Int
        /// Delay before connecting again after a lost connection or a failed attempt.
        public var reconnectBackoff: Backoff
        /// Timeouts in a row, with no answer between them, after which the connection is
        /// considered dead and closed (gecko closes after 3 failed heartbeats, §1.4.4).
        public var maxConsecutiveTimeouts: Int
        /// Opaques this machine uses (§1.1).
        public var opaqueRange: ClosedRange<Int32>

        /// The window, queue and reconnect figures are this project's choices, not MetaQ's.
        public init(requestTimeoutMs: Int64 = 10_000, maxInFlight: Int = 64, maxQueued: Int = 1024,
                    reconnectBackoff: Backoff = Backoff(stepMs: 100, maxMs: 5_000),
                    maxConsecutiveTimeouts: Int = 3,
                    opaqueRange: ClosedRange<Int32> = OpaqueSequence.javaRange) {
            precondition(requestTimeoutMs > 0, "requestTimeoutMs must be positive")
            precondition(maxInFlight >= 1 && maxQueued >= 0, "maxInFlight >= 1 and maxQueued >= 0")
            precondition(maxConsecutiveTimeouts >= 1, "maxConsecutiveTimeouts must be at least 1")
            self.requestTimeoutMs = requestTimeoutMs
            self.maxInFlight = maxInFlight
            self.maxQueued = maxQueued
            self.reconnectBackoff = reconnectBackoff
            self.maxConsecutiveTimeouts = maxConsecutiveTimeouts
            self.opaqueRange = opaqueRange
        }
    }

    public enum Event: Equatable, Sendable {
        /// The application publishes `payload` (already in §1.4.1's payload form, see
        /// `MessagePayload.encode`); `id` is the caller's, echoed in `.completed`.
        case send(id: UInt64, topic: String, partition: Int32, flag: Int32, payload: [UInt8])
        /// Several sends at one instant, in order: the same as a `.send` for each, in one call
        /// (a driver that drains many sends at once pays the per-event work once).
        case sendAll([Send])
        /// The connection asked for with `.connect` is open.
        case connected
        /// The connection closed, or the attempt to open it failed.
        case connectionLost
        /// A frame decoded from the broker.
        case frame(Frame)
        /// Frames decoded from one read, in order: the same as a `.frame` for each, except that
        /// frames after one that made the machine close the connection (`.disconnect`) are
        /// dropped, as a driver drops frames of a connection it closed.
        case frames([Frame])
        /// Time passed (answers a `.scheduleTick`).
        case tick
    }

    /// One send of a `.sendAll`: the fields of a `.send`, and optionally the payload's checksum.
    public struct Send: Equatable, Sendable {
        public var id: UInt64
        public var topic: String
        public var partition: Int32
        public var flag: Int32
        public var payload: [UInt8]
        /// `CRC32.metaqChecksum(payload)` when the driver computed it already (on the sending
        /// thread, off the machine's); nil and the machine computes it.
        public var checksum: Int32?

        public init(id: UInt64, topic: String, partition: Int32, flag: Int32, payload: [UInt8], checksum: Int32? = nil) {
            self.id = id
            self.topic = topic
            self.partition = partition
            self.flag = flag
            self.payload = payload
            self.checksum = checksum
        }
    }

    public enum Action: Equatable, Sendable {
        /// Open the connection; answer with `.connected` or `.connectionLost`.
        case connect
        /// Write this frame on the connection.
        case sendFrame(Frame)
        /// The outcome of the send with this id; exactly one per `.send`.
        case completed(id: UInt64, SendOutcome)
        /// Deliver `.tick` at or after this instant.
        case scheduleTick(at: Instant)
        /// Close the connection. The machine has already written it off: report no
        /// `.connectionLost` and no frames for it.
        case disconnect
    }

    /// Running totals, for statistics and simulator checkers.
    public struct Counters: Equatable, Sendable {
        public var submitted = 0
        /// Put frames emitted.
        public var sent = 0
        public var acknowledged = 0
        public var failed = 0
        public var unknown = 0
        public var rejected = 0
        /// Puts in flight whose answer did not come in time (also counted in `unknown`).
        public var timeouts = 0
        /// Answers whose opaque matches no put in flight (late, duplicate or stray); ignored.
        public var unmatchedAnswers = 0
        /// `result 200` bodies that do not parse (also counted in `unknown`).
        public var malformedAnswers = 0
        /// Frames a broker never sends to a producer (requests, `value`); the connection is closed.
        public var protocolViolations = 0
        public var connects = 0
        /// Connections lost or closed, and attempts that failed or timed out.
        public var disconnects = 0
    }
}
