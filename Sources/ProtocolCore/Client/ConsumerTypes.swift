extension ConsumerMachine {
    public struct Settings: Equatable, Sendable {
        public var topic: String
        public var group: String
        /// Partition inside the broker.
        public var partition: Int32
        /// Absolute byte offset of the first fetch (§2.3); must be a record boundary.
        public var startOffset: Int64
        /// `maxSize` of a `get` (§1.4.2; the size given to `subscribe`, §5.1).
        public var maxSizeBytes: Int32
        /// The adaptive fetch size doubles up to this for a record larger than `maxSizeBytes`
        /// (§5.1). The default fits a 2 MiB payload, the Java client's read limit (§1.5, §11 #12).
        public var maxMaxSizeBytes: Int32
        /// No answer to a `get` within this is a timeout (`fetchTimeoutInMills`, §5.1); also the
        /// longest a connection attempt may take.
        public var requestTimeoutMs: Int64
        /// Delay before the next `get` after an empty fetch, a refusal, damage or a timeout
        /// (`maxDelayFetchTimeInMills` 5 s in steps of a tenth, §5.1).
        public var fetchBackoff: Backoff
        /// Delay before connecting again after a lost connection or a failed attempt.
        public var reconnectBackoff: Backoff
        /// Timeouts in a row after which the connection is closed and opened again (gecko closes
        /// after 3 failed heartbeats, §1.4.4; a consumer that only ever times out never recovers,
        /// §11 issue #108).
        public var maxConsecutiveTimeouts: Int
        /// Opaques this machine uses (§1.1).
        public var opaqueRange: ClosedRange<Int32>
        /// Hold the next `get` until the application reports `.processed` for the last delivery
        /// (§5.1: a fetch is queued again only after its messages were processed). Off, the next
        /// `get` follows each delivery at once.
        public var awaitsProcessing: Bool
        /// What happens to a message the application keeps failing (§5.2); nil: it is fetched
        /// again after the back-off for ever, the partition never moving past it. Needs
        /// `awaitsProcessing`.
        public var retry: RetryPolicy?
        /// The application acknowledges (§5.3, `partition.setAutoAck(false)`): `acknowledged` then
        /// moves only with `.ack(upTo:)` (and past a message handed off right at it), while the
        /// fetch offset moves on with `.processed`. Off, `acknowledged` follows `.processed`.
        public var manualAck: Bool
        /// Simulation only, never set in production: a deliberately broken variant the
        /// simulator's checkers must catch (DESIGN.md §6).
        public var canary: Canary?

        public init(topic: String, group: String, partition: Int32, startOffset: Int64,
                    maxSizeBytes: Int32 = 1024 * 1024,
                    maxMaxSizeBytes: Int32 = 2 * 1024 * 1024 + Int32(Record.headerSize),
                    requestTimeoutMs: Int64 = 10_000,
                    fetchBackoff: Backoff = Backoff(stepMs: 500, maxMs: 5_000),
                    reconnectBackoff: Backoff = Backoff(stepMs: 500, maxMs: 5_000),
                    maxConsecutiveTimeouts: Int = 3,
                    opaqueRange: ClosedRange<Int32> = OpaqueSequence.javaRange,
                    awaitsProcessing: Bool = false,
                    retry: RetryPolicy? = nil, manualAck: Bool = false, canary: Canary? = nil) {
            precondition(isWireToken(topic) && isWireToken(group), "topic and group must be single wire tokens")
            precondition(partition >= 0 && startOffset >= 0, "partition and startOffset must not be negative")
            precondition(maxSizeBytes > 0 && maxMaxSizeBytes >= maxSizeBytes, "need 0 < maxSizeBytes <= maxMaxSizeBytes")
            precondition(requestTimeoutMs > 0 && maxConsecutiveTimeouts >= 1, "timeouts must be positive")
            precondition(retry == nil || awaitsProcessing, "retries need awaitsProcessing")
            self.topic = topic
            self.group = group
            self.partition = partition
            self.startOffset = startOffset
            self.maxSizeBytes = maxSizeBytes
            self.maxMaxSizeBytes = maxMaxSizeBytes
            self.requestTimeoutMs = requestTimeoutMs
            self.fetchBackoff = fetchBackoff
            self.reconnectBackoff = reconnectBackoff
            self.maxConsecutiveTimeouts = maxConsecutiveTimeouts
            self.opaqueRange = opaqueRange
            self.awaitsProcessing = awaitsProcessing
            self.retry = retry
            self.manualAck = manualAck
            self.canary = canary
        }
    }

    /// The broken variants (simulation only).
    public enum Canary: Equatable, Sendable {
        /// With `manualAck`, `.processed` moves `acknowledged` as in automatic mode (the mode
        /// check lost): commits pass messages the application never acknowledged.
        case processedAcknowledgesInManualMode
    }

    public enum Event: Equatable, Sendable {
        /// Begin: connect and fetch from `startOffset`. Everything before it is ignored.
        case start
        /// The connection asked for with `.connect` is open.
        case connected
        /// The connection closed, or the attempt to open it failed.
        case connectionLost
        /// A frame decoded from the broker (`value`, or `result` 301/400/403/404/500).
        case frame(Frame)
        /// With `awaitsProcessing`: the application handled the last delivery up to `nextOffset`
        /// (its end, or the offset of a message that failed and must be fetched again).
        case processed(nextOffset: Int64)
        /// The message of the last `.recover` is kept by the rejection policy (or dropped by
        /// choice): the next `get` may go out, and an offset past it may be committed.
        case handedOff
        /// The rejection policy could not keep the message of the last `.recover` (a recover
        /// store write failed): the machine holds the partition at it and asks again with
        /// `.recover` after the fetch back-off, so it is never skipped unkept.
        case handOffFailed
        /// With `manualAck`: the application acknowledges every message before `upTo`, a record
        /// boundary of what was delivered (§5.3 `partition.ack()`; it may come in the middle of a
        /// delivery). `acknowledged` moves there; an ack at or before it, past `offset` (not
        /// delivered, or at or after a failed message), or without `manualAck` is ignored.
        case ack(upTo: Int64)
        /// The application wants messages again (§5.3): from the last acknowledged offset (`to:
        /// nil`, `partition.rollback()`), or from the message at `to` (`setRollbackOnly()`),
        /// clamped to `acknowledged.offset...offset`. The unprocessed delivery is void (report no
        /// `.processed` for it), the answer to a `get` in flight is ignored, the retry count of a
        /// failing message is cleared, and the next `get` (from there) goes out after one step of
        /// the fetch back-off. Without `manualAck` the messages before `to` count as processed. A
        /// pending hand-off stays pending: the message is either kept by the rejection policy or
        /// fetched again, never lost.
        case rollback(to: Int64?)
        /// Time passed (answers a `.scheduleTick`).
        case tick
    }

    public enum Action: Equatable, Sendable {
        /// Open the connection; answer with `.connected` or `.connectionLost`.
        case connect
        /// Write this frame (a `get`) on the connection.
        case sendFrame(Frame)
        /// Whole, checksum-verified messages in partition order, each with its offset; the
        /// machine's offset is now `nextOffset` (where the next record starts).
        case deliver([Message], nextOffset: Int64)
        /// The broker moved the offset with a 301 (§1.4.2); the only way it can go backwards.
        case offsetChanged(Int64)
        /// The bytes at `offset` are not a valid record. Nothing at or after it was delivered;
        /// the machine backs off and fetches `offset` again (it never skips on its own).
        case reportDamage(offset: Int64, RecordDamage)
        /// The record at `offset` does not fit a fetch: `maxMaxSizeBytes` is reached, or the broker
        /// served only `fetchedBytes` (its `maxTransferSize`, §1.4.2). `recordBytes` is the size its
        /// header announces when the header arrived. The machine backs off and fetches `offset`
        /// again; skipping (a new machine starting at `offset + recordBytes`) is the application's call.
        case reportRecordTooLarge(offset: Int64, recordBytes: Int?, fetchedBytes: Int)
        /// An answer other than value/301/403/404 (400, 500, …, or a 301 without a usable
        /// offset); the machine backs off and fetches the same offset again.
        case reportBrokerError(code: Int32, text: String)
        /// Deliver `.tick` at or after this instant.
        case scheduleTick(at: Instant)
        /// Close the connection. The machine has already written it off: report no
        /// `.connectionLost` and no frames for it.
        case disconnect
        /// With a `RetryPolicy`: `message` failed `attempts` times (`maxFetchRetries + 1`, §5.2).
        /// The driver hands it to its rejection policy (the recover store, or drop) and answers
        /// `.handedOff` — only then does the machine fetch past it, and only then may an offset
        /// past it be committed — or `.handOffFailed`.
        case recover(Message, attempts: Int)
    }

    /// Running totals, for statistics and simulator checkers.
    public struct Counters: Equatable, Sendable {
        /// `get` frames emitted.
        public var fetches = 0
        public var deliveredMessages = 0
        /// 404 answers and empty `value`s: nothing new at the offset.
        public var emptyFetches = 0
        /// 403 answers: the partition is closed (§1.4.2).
        public var partitionClosed = 0
        /// 301 answers that moved the offset.
        public var moves = 0
        public var timeouts = 0
        /// Fetches that stopped at damaged bytes.
        public var damaged = 0
        /// Fetches that stopped at a record too large to fetch.
        public var tooLarge = 0
        /// Times the fetch size doubled.
        public var sizeIncreases = 0
        public var brokerErrors = 0
        /// Deliveries the application reported only partly processed (a message failed).
        public var processingFailures = 0
        /// With a `RetryPolicy`: failed attempts of a message that were followed by another attempt.
        public var retries = 0
        /// With a `RetryPolicy`: messages handed off with `.recover` after their last attempt.
        public var handOffs = 0
        /// `.handOffFailed` answers: the hand-off is asked for again after a back-off.
        public var handOffFailures = 0
        /// `.ack` events that moved `acknowledged`.
        public var acks = 0
        /// `.ack` events ignored (not forward, past what was delivered, or without `manualAck`).
        public var ignoredAcks = 0
        /// `.rollback` events.
        public var rollbacks = 0
        /// Answers whose opaque is not the fetch in flight (late, duplicate or stray); ignored.
        public var staleAnswers = 0
        /// Frames a broker never sends to a consumer (requests); the connection is closed.
        public var protocolViolations = 0
        public var connects = 0
        /// Connections lost or closed, and attempts that failed or timed out.
        public var disconnects = 0
    }
}

/// How a consumer treats a message its application fails (reference §5.2): it is fetched again
/// after a back-off that grows with its failures, the partition not moving past it (order is
/// kept), until it has failed `maxFetchRetries + 1` times; then it is handed off and skipped.
public struct RetryPolicy: Equatable, Sendable {
    /// Retries after the first failure (`maxFetchRetries`, default 5: §5.2's `retries >
    /// maxFetchRetries` hands off, so a message is attempted 6 times).
    public var maxFetchRetries: Int

    public init(maxFetchRetries: Int = 5) {
        precondition(maxFetchRetries >= 0, "maxFetchRetries must not be negative")
        self.maxFetchRetries = maxFetchRetries
    }
}
