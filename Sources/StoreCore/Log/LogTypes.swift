import ProtocolCore

/// Why a log operation was refused.
public enum LogError: Error, Equatable, CustomStringConvertible {
    /// A storage call failed.
    case storage(StorageError)
    /// An earlier write or sync failed: the log accepts no more writes until it is reopened
    /// (DESIGN.md §4 — an fsync error is never retried as if the data were safe). `PartitionLog.failure`
    /// says which.
    case failed(StorageError)
    /// Segment files do not line up (`cur.start + cur.size != next.start`) in a way recovery
    /// cannot explain by a torn tail; the original refuses to start in this case too (§2.6).
    case segmentsNotContiguous(directory: String, detail: String)
    case recordTooLarge(payloadBytes: Int, limit: Int)
    /// An append whose bytes are not whole records.
    case invalidRecords(detail: String)
    /// Group commit has this many appends waiting for a sync already.
    case tooManyPendingAppends(limit: Int)
    /// The log's writes are held (`PartitionLog.holdWrites`) and this many bytes are staged
    /// behind the hold already.
    case tooManyHeldBytes(limit: Int)

    public var description: String {
        switch self {
        case .storage(let e): return e.description
        case .failed(let e): return "the log refuses writes after a failed write or sync: \(e)"
        case .segmentsNotContiguous(let dir, let detail): return "segments of \(dir) don't validate: \(detail)"
        case .recordTooLarge(let n, let limit): return "record payload of \(n) bytes exceeds the limit of \(limit)"
        case .invalidRecords(let detail): return "invalid records: \(detail)"
        case .tooManyPendingAppends(let limit): return "\(limit) appends already wait for a sync"
        case .tooManyHeldBytes(let limit):
            return "\(limit) bytes already wait behind a transaction commit that is not durable yet"
        }
    }
}

/// Why a log refuses writes: the write or sync that failed. Neither is retried (DESIGN.md §4): after
/// a failed write what reached the file is unknown, after a failed fdatasync the kernel may have
/// dropped the dirty pages, so only a restart (recovery) makes the log usable again.
public struct LogFailure: Equatable, Sendable, CustomStringConvertible {
    public enum Operation: String, Equatable, Sendable {
        case write, sync
    }

    public var operation: Operation
    public var error: StorageError

    public init(operation: Operation, error: StorageError) {
        self.operation = operation
        self.error = error
    }

    /// `write failed: I/O error on <file>: pwrite: No space left on device (ENOSPC)`.
    public var description: String { "\(operation.rawValue) failed: \(error)" }
}

/// What an append did.
public struct AppendOutcome: Equatable, Sendable {
    /// Offset of the first appended record.
    public var offset: Int64
    /// True when the append may be acknowledged now (`unflushThreshold > 0`); false under group
    /// commit, where `completeSync` returns its ticket once a sync covers it.
    public var acknowledged: Bool
}

/// A byte range of one segment file to send to a consumer (with `sendfile` in the runtime).
public struct LogSlice: Equatable, Sendable {
    /// Partition offset of the first byte.
    public var offset: Int64
    public var segmentPath: String
    public var filePosition: Int64
    public var count: Int
}

/// The answer to `read(offset:maxBytes:)` (reference §1.4.2).
public enum LogRead: Equatable, Sendable {
    case slice(LogSlice)
    /// The offset is below the first segment (deleted by retention); `minOffset` is where data starts.
    case belowMinimum(minOffset: Int64)
    /// Nothing readable at or after the offset; `maxOffset` is the readable end (synced bytes only).
    case atOrBeyondEnd(maxOffset: Int64)
    /// The offset lies in a damaged range found by recovery; readers continue at `resumeAt`.
    case damaged(resumeAt: Int64)
}

/// What recovery found when the log was opened.
public struct RecoveryReport: Equatable, Sendable, CustomStringConvertible {
    public var segmentCount = 0
    /// Records in the scanned segments (MetaQ also counts only those, §2.6).
    public var scannedRecordCount = 0
    /// Bytes cut off torn tails.
    public var truncatedBytes: Int64 = 0
    /// Segments after a torn one, removed because none of their bytes had been synced.
    public var removedSegments: [String] = []
    /// Every damaged range of the log, kept in place and never served (absolute offsets): those
    /// found by this recovery and those recorded by earlier ones.
    public var damagedRanges: [Range<Int64>] = []
    /// The damaged ranges this recovery found that no earlier one had recorded.
    public var newDamagedRanges: [Range<Int64>] = []
    public var createdFirstSegment = false
    /// The last segment was not scanned: a clean close left a `clean-stop` mark that matched it
    /// exactly (its start and size), so every byte of it was synced by this broker and nothing
    /// wrote the file since. Known damage is still reported.
    public var lastSegmentScanSkipped = false

    public var description: String {
        var parts = ["\(segmentCount) segment(s)",
                     lastSegmentScanSkipped ? "scan skipped after a clean stop" : "\(scannedRecordCount) record(s) scanned",
                     "\(truncatedBytes) byte(s) truncated"]
        if !removedSegments.isEmpty { parts.append("removed unsynced segments \(removedSegments)") }
        if !newDamagedRanges.isEmpty {
            parts.append("NEW DAMAGE found: " + newDamagedRanges.map { "\($0.lowerBound)..<\($0.upperBound)" }.joined(separator: ", "))
        }
        if !damagedRanges.isEmpty {
            parts.append("DAMAGED ranges kept and skipped: " + damagedRanges.map { "\($0.lowerBound)..<\($0.upperBound)" }.joined(separator: ", "))
        }
        return parts.joined(separator: ", ")
    }
}

/// A sync to run: the files with unsynced bytes in log order, then the directory when a segment
/// was created. `perform()` may run on another thread (the runtime's sync thread); the result goes
/// back to the log with `completeSync` or `failSync`.
public struct SyncBatch {
    /// Every byte below this offset is durable once the batch completes.
    public let upTo: Int64
    let files: [any StorageFile]
    let directory: String?
    let storage: any Storage
    /// Distinguishes the syncs of one log (a completion names the sync it ends).
    public let id: UInt64
    /// Set when the synced range ends with an empty record (see `SyncedMark`).
    let markFile: (any StorageFile)?

    /// `perform()` with its outcome as a value, for drivers that hand it to another thread.
    public func performed() -> Result<Void, StorageError> {
        do throws(StorageError) {
            try perform()
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    public func perform() throws(StorageError) {
        do {
            for file in files { try file.sync() }
            if let directory { try storage.syncDirectory(directory) }
            if let markFile { try SyncedMark.write(upTo, to: markFile) }
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError.io(path: directory ?? "", detail: "\(error)")
        }
    }
}
