// Client machines — the producer and consumer sides of MetaQ's protocol as pure values (DESIGN.md §3).
//
// Owns: what a client sends and when, how it reads answers, its timeouts, back-off and bounds.
// Must never: perform I/O, read a clock, draw randomness, or resend a put on its own (a resent put
// may be stored twice; whether to retry an unknown outcome is the application's decision). The one
// exception is `OrderedSendQueue` (§5.6): an application that picks the ordered producer has chosen
// at least once, and its unknown outcomes are spooled and sent again.

/// A delay that grows linearly with consecutive misses up to a cap — the shape of the Java client's
/// fetch delay (reference §5.1: the delay grows by `maxDelayFetchTimeInMills / 10` up to the max).
public struct Backoff: Equatable, Sendable {
    /// Added per consecutive miss.
    public var stepMs: Int64
    /// The delay never exceeds this.
    public var maxMs: Int64

    public init(stepMs: Int64, maxMs: Int64) {
        precondition(stepMs >= 0 && maxMs >= stepMs, "back-off needs 0 <= stepMs <= maxMs")
        self.stepMs = stepMs
        self.maxMs = maxMs
    }

    /// The delay after `misses` consecutive misses (1 = the first miss; 0 = no delay).
    public func delayMs(afterMisses misses: Int) -> Int64 {
        guard misses > 0, stepMs > 0 else { return 0 }
        // Clamp first so a long run of misses cannot overflow the multiplication.
        let steps = min(Int64(misses), maxMs / stepMs + 1)
        return min(stepMs * steps, maxMs)
    }
}

/// Request opaques (reference §1.1): increasing from the start of `range`, back to its start after
/// the end. The default range is the Java client's (from `Int32.min`, reset before `Int32.max - 10`),
/// so real-world opaques are negative. A driver that multiplexes several machines over one
/// connection (§1.7) gives each a disjoint range, so answers can be routed by opaque alone.
public struct OpaqueSequence: Equatable, Sendable {
    /// Java's generator; see reference §1.1.
    public static let javaRange: ClosedRange<Int32> = Int32.min...(Int32.max - 11)
    /// The fewest opaques a range may hold: a late answer to a timed-out request must not find a
    /// new request with the same opaque, which a quickly wrapping range would make likely.
    public static let minimumRangeCount: Int64 = 1 << 16

    public let range: ClosedRange<Int32>
    /// The opaque `take()` returns next.
    public private(set) var next: Int32

    public init(range: ClosedRange<Int32> = javaRange) {
        precondition(Int64(range.upperBound) - Int64(range.lowerBound) + 1 >= Self.minimumRangeCount,
                     "an opaque range needs at least \(Self.minimumRangeCount) values")
        self.range = range
        self.next = range.lowerBound
    }

    /// The next opaque.
    public mutating func take() -> Int32 {
        let value = next
        next = value == range.upperBound ? range.lowerBound : value + 1
        return value
    }
}

/// The one wake-up a machine has asked its driver for. Drivers answer every `scheduleTick(at:)` with
/// a `.tick` at or after that instant; extra or late ticks are harmless because machines compare
/// deadlines with `now` on every event. This only avoids asking twice for the same instant.
struct WakeUp: Sendable {
    private var pending: Instant?

    /// The instant to ask for, or nil when an earlier (or equal) request still covers `deadline`.
    mutating func request(_ deadline: Instant?, now: Instant) -> Instant? {
        if let p = pending, p <= now { pending = nil }
        guard let deadline else { return nil }
        if let p = pending, p <= deadline { return nil }
        pending = deadline
        return deadline
    }
}

/// Whether `s` can travel as one token of a command line (§1.1: tokens are split on single spaces,
/// the line ends at CR LF).
func isWireToken(_ s: String) -> Bool {
    !s.isEmpty && !s.utf8.contains { $0 == 0x20 || $0 == 0x0D || $0 == 0x0A }
}
