import ProtocolCore

/// When appended bytes are synced (reference §2.4).
public struct FlushPolicy: Equatable, Sendable {
    /// More than this many unsynced appends trigger a sync; `≤ 0` selects group commit.
    public var unflushThreshold: Int
    /// A sync is due once this many ms passed since the last one with appends pending.
    public var unflushIntervalMs: Int64

    public init(unflushThreshold: Int, unflushIntervalMs: Int64) {
        self.unflushThreshold = unflushThreshold
        self.unflushIntervalMs = unflushIntervalMs
    }

    /// Group commit: every append is acknowledged only after a sync covers it.
    public var isGroupCommit: Bool { unflushThreshold <= 0 }

    public static let groupCommit = FlushPolicy(unflushThreshold: 0, unflushIntervalMs: 10_000)
    /// MetaQ's class defaults (§8.1).
    public static let metaqDefault = FlushPolicy(unflushThreshold: 1000, unflushIntervalMs: 10_000)
}

/// The settings of one partition log.
public struct LogConfig: Equatable, Sendable {
    /// A segment rolls once it holds at least this many bytes (§2.5; MetaQ's default 1 GiB).
    public var maxSegmentSize: Int64
    public var flushPolicy: FlushPolicy
    /// The largest record payload accepted on append and believed during recovery; a header
    /// claiming more is treated as damage.
    public var maxRecordPayloadBytes: Int
    /// Bound on group-commit appends waiting for a sync; beyond it appends are refused
    /// (the disk is not keeping up, and memory must stay bounded).
    public var maxPendingAppends: Int
    /// Simulation canary (DESIGN.md §6), false in production: open keeps the clean-stop mark
    /// and trusts it whatever the last segment now is — a stale mark, which the sweep must catch.
    public var canaryTrustsStaleCleanStopMark = false

    public init(maxSegmentSize: Int64 = 1 << 30, flushPolicy: FlushPolicy = .metaqDefault,
                maxRecordPayloadBytes: Int = 64 << 20, maxPendingAppends: Int = 100_000) {
        precondition(maxSegmentSize > 0, "maxSegmentSize must be positive")
        precondition(maxPendingAppends > 0, "maxPendingAppends must be positive")
        self.maxSegmentSize = maxSegmentSize
        self.flushPolicy = flushPolicy
        self.maxRecordPayloadBytes = maxRecordPayloadBytes
        self.maxPendingAppends = maxPendingAppends
    }
}
