import Logging
import ProtocolCore
import StoreCore

/// Where a sync cycle's time goes, recorded for every sync the broker runs (bounded memory:
/// fixed-size histograms). Logged when the broker stops; an `fdatasync` slower than
/// `slowSyncWarning` is logged when it happens. Touched on the event loop only.
struct SyncCycleStats {
    static let slowSyncWarningNanoseconds: UInt64 = 1_000_000_000

    /// First write after the previous sync of the partition began → this sync began: how long the
    /// oldest bytes of a batch waited for the sync in flight.
    var waitForSync = DurationHistogram()
    /// Sync began on the loop → `fdatasync` started on the sync thread.
    var handOff = DurationHistogram()
    /// The sync itself (`fdatasync` of the batch's files; directory and mark when needed).
    var fsync = DurationHistogram()
    /// `fdatasync` returned → the loop took the completion.
    var handBack = DurationHistogram()
    /// The loop took the completion → the answers were handed to the sockets.
    var answer = DurationHistogram()
    /// First write of a batch → its answers handed to the sockets, counted once per put answered:
    /// per put, an upper bound of the time it spent in the broker after its bytes were written
    /// (so big batches — those after a slow sync — weigh as much as the puts they hold).
    var batch = DurationHistogram()

    /// One log line's worth: counts, and `p50/p99/max` of each stage in microseconds.
    func metadata() -> Logger.Metadata {
        func stage(_ histogram: DurationHistogram) -> Logger.MetadataValue {
            let us = { (ns: UInt64) in ns / 1_000 }
            return "\(us(histogram.value(atQuantile: 0.5)))/\(us(histogram.value(atQuantile: 0.99)))/\(us(histogram.maxNanoseconds))"
        }
        return [
            "syncs": "\(fsync.count)",
            "puts_answered": "\(batch.count)",
            "fsync_total_ms": "\(fsync.totalNanoseconds / 1_000_000)",
            "fsync_over_1ms": "\(fsync.countAbove(nanoseconds: 1_000_000))",
            "fsync_us": stage(fsync),
            "wait_for_sync_us": stage(waitForSync),
            "hand_off_us": stage(handOff),
            "hand_back_us": stage(handBack),
            "answer_us": stage(answer),
            "batch_us": stage(batch),
        ]
    }
}

/// Carries a sync batch to the sync thread and its timings back. `SyncBatch` holds
/// `any StorageFile`, which is not Sendable; here every file is a `RealFile` (Sendable:
/// pread/pwrite/fdatasync on one descriptor are thread-safe) and the loop does not touch the
/// batch until the sync thread hands it back.
struct SyncWork: @unchecked Sendable {
    let batch: SyncBatch
    /// When the loop began the sync, and when the oldest bytes it covers were written.
    let begunAt: Instant
    let firstWriteAt: Instant
    var startedAt = Instant.zero
    var endedAt = Instant.zero
    /// When the result was back on the loop.
    var arrivedAt = Instant.zero
}
