/// Refusals counted in episodes, so that a refusal is logged when an episode starts and once more
/// when it ends, with how many there were, never once per refusal: a broker out of descriptors
/// or at its connection limit may refuse thousands a second, and a log line each would bury
/// everything else (and fill the disk).
public struct RefusalEpisode: Sendable {
    /// Refusals since the episode started; 0 when none is under way.
    public private(set) var refusedCount = 0

    public init() {}

    public var isActive: Bool { refusedCount > 0 }

    /// Records a refusal; true when it starts an episode (log it).
    public mutating func refused() -> Bool {
        refusedCount += 1
        return refusedCount == 1
    }

    /// Records that things work again; the episode's refusal count when this ends one (log it),
    /// nil otherwise.
    public mutating func succeeded() -> Int? {
        guard refusedCount > 0 else { return nil }
        defer { refusedCount = 0 }
        return refusedCount
    }
}
