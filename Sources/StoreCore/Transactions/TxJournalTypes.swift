import ProtocolCore

/// Settings of the transaction redo log.
public struct TxJournalConfig: Sendable, Equatable {
    /// A new `redo.<n>` is started once the current file exceeds this many bytes and all of it
    /// is synced (reference §4.3: `meta.tx_journal_file_size`, 64 MiB).
    public var fileSizeBytes: Int64 = 67_108_864
    /// Checkpoint files kept, newest first (`maxCheckpoints`, §4.4).
    public var maxCheckpoints = 3
    /// The largest entry accepted on append and on replay.
    public var maxEntryBytes = TxJournalCodec.defaultMaxEntryBytes
    /// The first read window of a replay; it grows only for a larger entry. Together with one
    /// entry this is what a replay holds in memory.
    public var readWindowBytes = 1 << 20

    public init(fileSizeBytes: Int64 = 67_108_864, maxCheckpoints: Int = 3,
                maxEntryBytes: Int = TxJournalCodec.defaultMaxEntryBytes, readWindowBytes: Int = 1 << 20) {
        precondition(fileSizeBytes > 0 && maxCheckpoints > 0 && maxEntryBytes > 4 && readWindowBytes > 0,
                      "transaction journal limits must be positive")
        self.fileSizeBytes = fileSizeBytes
        self.maxCheckpoints = maxCheckpoints
        self.maxEntryBytes = maxEntryBytes
        self.readWindowBytes = readWindowBytes
    }
}

/// Why the transaction journal refused an operation or a start.
public enum TxJournalError: Error, Equatable, CustomStringConvertible {
    /// A storage call failed; nothing that was durable is in doubt.
    case storage(StorageError)
    /// An earlier write or sync failed: the journal refuses every append until the broker restarts
    /// and recovers (DESIGN.md §4).
    case failed(LogFailure)
    /// Bytes that recovery cannot read where it cannot truncate: inside a redo file that is not the
    /// newest, or at a checkpoint's position. Starting would silently lose transactions.
    case damaged(path: String, offset: Int64, reason: String)
    /// The redo files do not form one run `redo.<a>…redo.<b>`, or a checkpoint points past them.
    case missingFiles(directory: String, detail: String)
    /// A file in the journal directory whose name looks like ours but does not parse.
    case badFileName(path: String)
    /// A checkpoint file that does not hold `{"number":<n>,"offset":<o>}`.
    case badCheckpoint(path: String, reason: String)
    /// `heuristic.log` is damaged or not ours.
    case badHeuristicLog(path: String, reason: String)
    /// An entry larger than `TxJournalConfig.maxEntryBytes`.
    case entryTooLarge(bytes: Int, limit: Int)
    /// `rewriteAttachment` was pointed at something it cannot rewrite in place.
    case cannotRewrite(position: TxJournalPosition, reason: String)

    public var description: String {
        switch self {
        case .storage(let error): return error.description
        case .failed(let failure):
            return "the transaction journal refuses writes after a failed write or sync (\(failure)); restart the broker to recover it"
        case .damaged(let path, let offset, let reason):
            return "transaction journal \(path) is damaged at byte \(offset) (\(reason)); refusing to start rather than drop transactions — inspect or move the file aside"
        case .missingFiles(let directory, let detail): return "transaction journal \(directory): \(detail)"
        case .badFileName(let path): return "\(path): not a valid transaction journal file name"
        case .badCheckpoint(let path, let reason): return "checkpoint \(path): \(reason)"
        case .badHeuristicLog(let path, let reason): return "\(path): \(reason)"
        case .entryTooLarge(let bytes, let limit): return "transaction journal entry of \(bytes) bytes exceeds the limit of \(limit)"
        case .cannotRewrite(let position, let reason):
            return "cannot rewrite the attachment at redo.\(position.file):\(position.offset): \(reason)"
        }
    }
}

/// One entry handed out by a replay.
public struct TxJournalRecord: Equatable, Sendable {
    /// Where the entry starts.
    public var position: TxJournalPosition
    public var entry: TxJournalEntry
    /// The entry's protobuf `force` flag.
    public var force: Bool
    /// Bytes the entry takes on disk.
    public var size: Int
}

/// What opening the journal found and did.
public struct TxJournalOpenReport: Equatable, Sendable, CustomStringConvertible {
    /// Redo file numbers present after recovery, oldest first.
    public var files: [Int] = []
    /// The checkpoint the replay starts from (nil: from the first redo file).
    public var checkpoint: TxJournalPosition?
    /// Where the replay starts.
    public var replayStart = TxJournalPosition(file: 1, offset: 0)
    /// Entries between the replay start and the end.
    public var entryCount = 0
    /// The newest file's torn or damaged tail that was cut off, and why.
    public var truncatedFile: String?
    public var truncatedBytes: Int64 = 0
    public var truncationReason: String?
    /// Checkpoint files that were empty or unreadable and skipped for an older one.
    public var skippedCheckpoints: [String] = []
    /// Leftover `*.tmp` files of interrupted atomic saves, removed.
    public var removedTemporaryFiles: [String] = []
    public var createdFirstFile = false

    public var description: String {
        var parts = ["redo files \(files)", "replay from redo.\(replayStart.file):\(replayStart.offset)", "\(entryCount) entries"]
        if let truncatedFile {
            parts.append("\(truncatedBytes) byte(s) truncated from \(truncatedFile) (\(truncationReason ?? "torn tail"))")
        }
        if !skippedCheckpoints.isEmpty { parts.append("skipped unreadable checkpoints \(skippedCheckpoints)") }
        return parts.joined(separator: ", ")
    }
}

/// What `checkpoint(oldestOpen:)` did.
public enum TxCheckpointOutcome: Equatable, Sendable {
    /// `checkpoint.<number>` now holds `position`.
    case written(number: Int, position: TxJournalPosition)
    /// No open transaction, or the position is not newer than the last checkpoint.
    case unchanged
    /// Written bytes are not all durable yet: sync, then call again (a checkpoint may only pass
    /// entries, such as commits and rollbacks, that a power loss can no longer take back).
    case needsSync
}

/// What `TxJournal.beginSync()` decided.
public enum TxJournalSyncStart {
    /// Nothing unsynced, a sync already runs, or the journal is closed.
    case idle
    /// A sync of every byte and directory entry written so far: `perform()` it anywhere, then
    /// `completeSync` or `failSync` on the owner.
    case begun(SyncBatch)
    /// The journal failed earlier; nothing written since the last completed sync will become durable.
    case failed(LogFailure)

    /// The batch when one was begun (tests and single-threaded callers).
    public var batch: SyncBatch? { if case .begun(let batch) = self { return batch } else { return nil } }
}
