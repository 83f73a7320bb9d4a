/// Bounds what connections may hold of frames they have not finished sending: memory, through a
/// shared `PartialFrameBudget`, and time, by closing a connection that stops sending in the middle
/// of a frame (`maxPartialFrameBytes`, `partialFrameTimeoutMs`, DESIGN.md §8).
///
/// The runtime tells it, after each read that leaves part of a frame (or ends one that was
/// partial), what the connection's decoder holds; it answers which connections to stop reading,
/// read again, or close. A connection between frames is never closed, however long it is idle:
/// MetaQ's server has no idle timeout, and its clients heartbeat with `version` (reference §1.4.4).
/// A connection stopped for the budget is not timed out while stopped: the wait is the broker's,
/// not the client's. Time is an input; one value, one owner.
public struct PartialFrameGuard: Sendable {
    public enum Action: Equatable, Sendable {
        /// Stop reading the connection: its frame waits for budget.
        case pause(ConnectionID)
        /// Read the connection again: its frame got its budget, or no longer needs it.
        case resume(ConnectionID)
        /// Close the connection: it sent no byte for `timeoutMs` in the middle of a frame.
        case close(ConnectionID)
    }

    public private(set) var budget: PartialFrameBudget
    public let timeoutMs: Int64
    /// Connections holding part of a frame and being read, with when their last byte came.
    private var lastByteAt: [ConnectionID: Instant] = [:]

    public init(budgetBytes: Int, timeoutMs: Int64) {
        precondition(timeoutMs > 0, "a partial-frame timeout must be positive")
        budget = PartialFrameBudget(capacityBytes: budgetBytes)
        self.timeoutMs = timeoutMs
    }

    /// Connections holding part of a frame and being read (those a timeout can close).
    public var timedConnectionCount: Int { lastByteAt.count }

    /// After a read of `connection`: `completedFrames` frames were decoded from it, and its
    /// decoder now holds `partial`. Nothing is tracked for a connection left holding `.none`, so
    /// the runtime may skip the call when it held nothing before either.
    public mutating func afterRead(_ connection: ConnectionID, completedFrames: Int, partial: FrameDecoder.PartialFrame,
                                   now: Instant, into actions: inout [Action]) {
        let wasWaiting = budget.isWaiting(connection)
        if completedFrames > 0 {
            // The frame that held the reservation (or waited for one) is complete.
            resume(budget.release(connection), now: now, into: &actions)
        }
        switch partial {
        case .none:
            lastByteAt[connection] = nil
        case .line:
            lastByteAt[connection] = now
        case .body(let length):
            if budget.reservation(of: connection) == nil && !budget.isWaiting(connection) {
                _ = budget.reserve(length, for: connection)
            }
            lastByteAt[connection] = budget.isWaiting(connection) ? nil : now
        }
        let isWaiting = budget.isWaiting(connection)
        if isWaiting && !wasWaiting { actions.append(.pause(connection)) }
        if wasWaiting && !isWaiting { actions.append(.resume(connection)) }
    }

    /// The connection closed: its reservation or place in line goes to the next in line.
    public mutating func closed(_ connection: ConnectionID, now: Instant, into actions: inout [Action]) {
        lastByteAt[connection] = nil
        resume(budget.release(connection), now: now, into: &actions)
    }

    /// When the next timeout can fire, nil when no connection holds part of a frame.
    public func nextDeadline() -> Instant? {
        lastByteAt.values.min().map { $0.adding(milliseconds: timeoutMs) }
    }

    /// Closes, in connection order, every connection whose last byte in the middle of a frame
    /// came `timeoutMs` or longer before `now`. Their budget is released when `closed` reports them.
    public mutating func expire(now: Instant, into actions: inout [Action]) {
        let expired = lastByteAt.filter { now.milliseconds(since: $0.value) >= timeoutMs }.keys.sorted()
        for connection in expired {
            lastByteAt[connection] = nil
            actions.append(.close(connection))
        }
    }

    /// Connections granted budget are read again; their timeout counts from now.
    private mutating func resume(_ granted: [ConnectionID], now: Instant, into actions: inout [Action]) {
        for connection in granted {
            lastByteAt[connection] = now
            actions.append(.resume(connection))
        }
    }
}
