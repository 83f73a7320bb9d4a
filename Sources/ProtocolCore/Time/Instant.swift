/// A point on a monotonic clock, in nanoseconds from an arbitrary origin. Machines never read a
/// clock: the runtime or the simulator passes `now` in (DESIGN.md §3).
public struct Instant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = Instant(nanoseconds: 0)

    public static func milliseconds(_ ms: Int64) -> Instant { Instant(nanoseconds: ms * 1_000_000) }

    public func adding(milliseconds ms: Int64) -> Instant { Instant(nanoseconds: nanoseconds + ms * 1_000_000) }

    /// Milliseconds from `earlier` to `self` (negative if `earlier` is later).
    public func milliseconds(since earlier: Instant) -> Int64 { (nanoseconds - earlier.nanoseconds) / 1_000_000 }

    public static func < (a: Instant, b: Instant) -> Bool { a.nanoseconds < b.nanoseconds }

    public var description: String { "\(nanoseconds / 1_000_000)ms" }
}
