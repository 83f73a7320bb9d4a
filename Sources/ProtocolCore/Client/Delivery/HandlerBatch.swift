/// One batch on its way through the application's handler, message by message (reference §5.1,
/// §5.3): the driver runs the handler and reports each result here; this value says when the
/// batch ends and with which `DeliveryTracker.Event`, and which acks go out in between. Kept
/// apart from the tracker because the handler runs off the driver's owner (a task in the
/// client), while the tracker is touched only on it.
public struct HandlerBatch: Sendable {
    /// What a manual-mode handler asked for besides handling the message.
    public enum Rollback: Equatable, Sendable {
        /// `partition.rollback()`: back to the last acknowledged offset.
        case toLastAck
        /// `setRollbackOnly()`: this message and those after it come again.
        case toThisMessage
    }

    /// What the driver does after one message.
    public struct Step: Equatable, Sendable {
        /// An ack to report now (in order, before anything later of this batch).
        public var ack: DeliveryTracker.Event?
        /// The batch is over: report this and hand the handler no more of it.
        public var end: DeliveryTracker.Event?
    }

    /// Where the batch ends when every message is handled.
    public let nextOffset: Int64
    /// Handled since the last ack of this batch.
    private var handled: [Int64] = []

    public init(nextOffset: Int64) {
        self.nextOffset = nextOffset
    }

    /// The handler failed the message at `offset`: it and what follows are fetched again.
    public func failed(at offset: Int64) -> DeliveryTracker.Event {
        .processed(upTo: offset, ids: handled)
    }

    /// The handler returned for `delivery`; `ack` and `rollback` are a manual-mode handler's
    /// requests (always false and nil in automatic mode).
    public mutating func handled(_ delivery: DeliveryTracker.Delivery, ack: Bool, rollback: Rollback?) -> Step {
        handled.append(delivery.message.id)
        var step = Step()
        if ack {
            step.ack = .acknowledged(upTo: delivery.end, ids: handled)
            handled = []
        }
        switch rollback {
        case .toLastAck?: step.end = .rolledBack(to: nil, ids: [])
        case .toThisMessage?: step.end = .rolledBack(to: delivery.message.offset, ids: Array(handled.dropLast()))
        case nil: break
        }
        return step
    }

    /// Every message went through the handler (or was filtered out).
    public func finished() -> DeliveryTracker.Event {
        .processed(upTo: nextOffset, ids: handled)
    }
}
