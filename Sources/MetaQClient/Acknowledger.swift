import Synchronization

/// What a manual-ack handler (`MetaQConsumer.run(manualAck:)`) decides for the message it is
/// handling and its partition (reference §5.3: `partition.setAutoAck(false)`, `ack()`,
/// `rollback()`, `message.setRollbackOnly()`).
///
/// A consumer in manual mode commits (to ZooKeeper or the offset file) nothing past the last ack:
/// messages handled but not acknowledged are delivered again after a restart or a rebalance. The
/// calls take effect when the handler returns; a handler that throws fails the message (it is
/// retried, §5.2) and its calls are ignored, as are calls after the handler returned.
///
/// ```swift
/// try await consumer.run(manualAck: { message, ack in
///     try store(message)
///     if message.offset % 3 == 0 { ack.ack() }
/// })
/// ```
public final class Acknowledger: Sendable {
    /// Where a rollback delivers from.
    public enum RollbackPoint: Sendable, Equatable {
        /// The message after the last ack of this partition (`partition.rollback()`).
        case lastAck
        /// This message (`message.setRollbackOnly()`): the messages before it stay handled but
        /// unacknowledged, so a later ack covers them.
        case thisMessage
    }

    struct Request: Equatable {
        var ack = false
        var rollback: RollbackPoint?
        /// The handler returned: later calls are ignored.
        var isClosed = false
    }

    private let request: Mutex<Request>

    /// Handed where calls have nothing to act on (automatic mode, recover-store redeliveries).
    static let inert = Acknowledger(closed: true)

    init(closed: Bool = false) {
        request = Mutex(Request(isClosed: closed))
    }

    /// Commits this message and every earlier one of its partition: the next offset commit
    /// stores the position after this message, and its id enters the dedup cache (§5.1).
    public func ack() {
        request.withLock { if !$0.isClosed { $0.ack = true } }
    }

    /// Delivers messages of this partition again, from `point`, after a short pause (one step of
    /// the fetch back-off); the rest of the current batch is not handed over. Rolled-back messages
    /// never count as handled, so the dedup cache does not hide them. After an `ack()` in the same
    /// call, both points mean the message after this one.
    public func rollback(to point: RollbackPoint = .lastAck) {
        request.withLock { if !$0.isClosed { $0.rollback = point } }
    }

    /// The handler's decision; closes the acknowledger.
    func take() -> Request {
        request.withLock { request in
            defer { request = Request(isClosed: true) }
            return request
        }
    }
}
