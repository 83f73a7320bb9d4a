import ProtocolCore

/// One `redo.<n>` file.
final class TxRedoFile {
    let number: Int
    let path: String
    let handle: any StorageFile
    /// Bytes written (not necessarily durable).
    var size: Int64
    /// Bumped by every write; the file is synced when `syncedGeneration` caught up.
    var writeGeneration: UInt64 = 0
    var syncedGeneration: UInt64 = 0

    init(number: Int, path: String, handle: any StorageFile, size: Int64) {
        self.number = number
        self.path = path
        self.handle = handle
        self.size = size
    }

    var isDirty: Bool { writeGeneration != syncedGeneration }
}

/// The transaction redo log (reference §4.3–§4.5): `redo.<n>` files, checkpoints and
/// `heuristic.log` in `<dataLogPath>/transactions/`.
///
/// Single-threaded, owned by the broker node. Appends are written at once but are not durable;
/// durability comes from syncs the caller runs in three steps (`beginSync` on the owner,
/// `SyncBatch.perform` anywhere, `completeSync`/`failSync` on the owner), like `PartitionLog`.
/// A failed write or sync fails the journal for good (DESIGN.md §4).
///
/// Files roll in order and are deleted oldest first: every entry goes to the current file, so an
/// open transaction that started in `redo.<k>` may have entries in any later file, and a file can
/// go only when no open transaction started in it or before it.
public final class TxJournal {
    /// The `transactions` directory.
    public let directory: String
    let storage: any Storage
    /// The settings the journal was opened with.
    public let config: TxJournalConfig
    /// Redo files in number order; the last one is current. Never empty.
    var files: [TxRedoFile]
    var state: State = .open

    /// Position just past the last entry written.
    public internal(set) var writtenEnd: TxJournalPosition
    /// Encoded entries not yet written (`stage`), at the end of the current file.
    var staged: [UInt8] = []
    /// A put's request line while it is encoded into `staged`.
    var scratch: [UInt8] = []
    /// Everything before this position (in every file) is durable.
    public internal(set) var syncedEnd: TxJournalPosition
    /// Where the replay of this opening starts and ends.
    public let replayStart: TxJournalPosition
    let replayEnd: TxJournalPosition

    /// Open transactions by id: where their first entry is.
    var openTransactions: [String: TxJournalPosition] = [:]
    /// Open transactions per redo file they started in.
    var startedPerFile: [Int: Int] = [:]
    /// Per redo file: `writtenEnd` when the last transaction that started in it ended — the
    /// file may go only once a sync has covered that much.
    var endMarks: [Int: TxJournalPosition] = [:]
    /// Set by `recoveryFinished()`: until then refcounts are incomplete and no file is deleted.
    public internal(set) var deletesFiles = false
    /// The last error of a file deletion (it is retried after the next sync).
    public internal(set) var lastRemovalError: StorageError?

    var directoryGeneration: UInt64 = 0
    var directorySyncedGeneration: UInt64 = 0
    var inFlight: InFlightSync?
    var nextSyncId: UInt64 = 1

    /// Checkpoint numbers on disk, oldest first, and the newest position written.
    var checkpointNumbers: [Int]
    public internal(set) var lastCheckpoint: TxJournalPosition?

    enum State: Equatable {
        case open
        case failed(LogFailure)
        case closed
    }

    struct InFlightSync {
        var id: UInt64
        var upTo: TxJournalPosition
        var generations: [(file: TxRedoFile, generation: UInt64)]
        var directoryGeneration: UInt64?
    }

    init(directory: String, storage: any Storage, config: TxJournalConfig, files: [TxRedoFile],
         replayStart: TxJournalPosition, checkpointNumbers: [Int], lastCheckpoint: TxJournalPosition?) {
        precondition(!files.isEmpty, "the journal always has a current file")
        self.directory = directory
        self.storage = storage
        self.config = config
        self.files = files
        let end = TxJournalPosition(file: files[files.count - 1].number, offset: files[files.count - 1].size)
        writtenEnd = end
        syncedEnd = end
        self.replayStart = replayStart
        replayEnd = end
        self.checkpointNumbers = checkpointNumbers
        self.lastCheckpoint = lastCheckpoint
    }

    /// The `transactions` directory under a broker's `dataLogPath`.
    public static func directory(dataLogPath: String) -> String {
        StoragePath.join(dataLogPath, "transactions")
    }

    /// The redo file numbers, oldest first.
    public var fileNumbers: [Int] { files.map(\.number) }

    /// Why the journal refuses writes, if it does.
    public var failure: LogFailure? {
        if case .failed(let failure) = state { return failure }
        return nil
    }

    var current: TxRedoFile { files[files.count - 1] }

    static func redoName(_ number: Int) -> String { "redo.\(number)" }

    func file(numbered number: Int) -> TxRedoFile? {
        files.first { $0.number == number }
    }

    func requireOpen() throws(TxJournalError) {
        switch state {
        case .open: return
        case .failed(let failure): throw .failed(failure)
        case .closed: throw .storage(.closed(path: directory))
        }
    }

    /// Marks the journal failed (the first failure stays the cause) and returns the error to throw.
    func fail(_ operation: LogFailure.Operation, _ error: StorageError) -> TxJournalError {
        if case .open = state { state = .failed(LogFailure(operation: operation, error: error)) }
        return .failed(failure ?? LogFailure(operation: operation, error: error))
    }

    // MARK: Appending

    /// Writes `entry` at the end of the current file (starting a new file first when the current one
    /// is over `fileSizeBytes` and fully synced) and returns where it starts. Not durable until a
    /// sync covers it.
    @discardableResult
    public func append(_ entry: TxJournalEntry, force: Bool) throws(TxJournalError) -> TxJournalPosition {
        let position = try stage(entry, force: force)
        try flushWrites()
        return position
    }

    /// Encodes `entry` behind the entries staged already and returns where it will start; it is
    /// written by the next `flushWrites()` (or `append`, or a sync), so a batch of entries costs
    /// one write. Staged bytes beyond `stagingBytes` are written at once.
    @discardableResult
    public func stage(_ entry: TxJournalEntry, force: Bool) throws(TxJournalError) -> TxJournalPosition {
        try requireOpen()
        // A new file starts only between writes, so a staged run of entries stays in one file.
        if staged.isEmpty { try rollIfDue() }
        let file = current
        let start = staged.count
        let position = TxJournalPosition(file: file.number, offset: file.size + Int64(start))
        // Encoded straight into the staging buffer (one copy of the put per transactional put).
        TxJournalCodec.encode(entry, force: force, into: &staged)
        let size = staged.count - start
        guard size <= config.maxEntryBytes else {
            staged.removeLast(size)
            throw .entryTooLarge(bytes: size, limit: config.maxEntryBytes)
        }
        if staged.count >= Self.stagingBytes { try flushWrites() }
        return position
    }

    /// `stage(.appendMessage(messageId:putCommand: <put's encoding>), force: false)` without
    /// encoding the put twice: its line and body go straight into the staging buffer.
    @discardableResult
    public func stageAppendMessage(messageId: Int64, put: PutCommand) throws(TxJournalError) -> TxJournalPosition {
        try requireOpen()
        if staged.isEmpty { try rollIfDue() }
        let file = current
        let start = staged.count
        let position = TxJournalPosition(file: file.number, offset: file.size + Int64(start))
        TxJournalCodec.encodeAppendMessage(messageId: messageId, put: put, scratch: &scratch, into: &staged)
        let size = staged.count - start
        guard size <= config.maxEntryBytes else {
            staged.removeLast(size)
            throw .entryTooLarge(bytes: size, limit: config.maxEntryBytes)
        }
        if staged.count >= Self.stagingBytes { try flushWrites() }
        return position
    }

    /// Staged bytes beyond this are written at once, which bounds the buffer.
    public static let stagingBytes = 256 << 10

    /// Whether entries are staged and not yet written.
    public var hasStagedEntries: Bool { !staged.isEmpty }

    /// Writes the staged entries to the current file in one call. A failed write fails the
    /// journal (what reached the file is unknown).
    public func flushWrites() throws(TxJournalError) {
        guard !staged.isEmpty else { return }
        try requireOpen()
        let file = current
        do {
            try staged.withUnsafeBytes { try file.handle.write($0, at: file.size) }
        } catch {
            staged.removeAll()
            throw fail(.write, Self.storageError(error, path: file.path))
        }
        file.size += Int64(staged.count)
        file.writeGeneration += 1
        writtenEnd = TxJournalPosition(file: file.number, offset: file.size)
        staged.removeAll(keepingCapacity: true)
    }

    /// Starts `redo.<n+1>` when the current file is over its size and every byte of it is durable:
    /// a file that is not the newest is then always whole, so recovery can treat damage in it as
    /// damage rather than as a torn tail.
    func rollIfDue() throws(TxJournalError) {
        let file = current
        guard file.size > config.fileSizeBytes, !file.isDirty, syncedEnd == writtenEnd,
              directoryGeneration == directorySyncedGeneration else { return }
        let number = file.number + 1
        let path = StoragePath.join(directory, Self.redoName(number))
        let handle: any StorageFile
        do {
            handle = try storage.open(path, create: true)
            try handle.truncate(to: 0)
        } catch {
            let storageError = Self.storageError(error, path: path)
            if storageError.isRetryable { throw .storage(storageError) }
            throw fail(.write, storageError)
        }
        files.append(TxRedoFile(number: number, path: path, handle: handle, size: 0))
        directoryGeneration += 1
        writtenEnd = TxJournalPosition(file: number, offset: 0)
        syncedEnd = writtenEnd
    }

    /// Overwrites the attachment of the commit entry at `position` with `locations`, which must
    /// encode to the same size (same descriptions, in the same order). Recovery uses it when a
    /// committed batch had to be appended again (§4.5). Not durable until a sync covers it.
    public func rewriteAttachment(at position: TxJournalPosition, locations: [TxPartitionLocation]) throws(TxJournalError) {
        try requireOpen()
        guard let file = file(numbered: position.file), position.offset >= 0, position.offset < file.size else {
            throw .cannotRewrite(position: position, reason: "no entry there")
        }
        let record: TxJournalRecord
        do {
            guard let read = try readRecord(file, at: position.offset, limit: file.size) else {
                throw TxJournalError.cannotRewrite(position: position, reason: "no whole entry there")
            }
            record = read
        } catch let error as TxJournalError {
            throw error
        } catch {
            throw .storage(Self.storageError(error, path: file.path))
        }
        guard case .operation(let type, _, _, let old) = record.entry, type.isCommit else {
            throw .cannotRewrite(position: position, reason: "not a commit entry")
        }
        let oldSize = TxJournalCodec.encodeAttachment(old).count
        let bytes = TxJournalCodec.encodeAttachment(locations)
        guard bytes.count == oldSize else {
            throw .cannotRewrite(position: position, reason: "attachment of \(bytes.count) bytes replaces one of \(oldSize)")
        }
        do {
            try file.handle.write(bytes, at: position.offset + Int64(record.size - oldSize))
        } catch {
            throw fail(.write, Self.storageError(error, path: file.path))
        }
        file.writeGeneration += 1
    }

    // MARK: Reference counts

    /// Records that transaction `id` wrote its first entry at `position` (idempotent). Its redo
    /// file, and every later one, is kept while it is open.
    public func transactionStarted(id: String, at position: TxJournalPosition) {
        guard openTransactions[id] == nil else { return }
        openTransactions[id] = position
        startedPerFile[position.file, default: 0] += 1
    }

    /// Records that transaction `id` ended; call it after appending its commit or rollback entry.
    /// Its redo file may be deleted once a sync covers everything written so far; returns the
    /// files deleted now (when that is already the case).
    @discardableResult
    public func transactionEnded(id: String) -> [String] {
        guard let start = openTransactions.removeValue(forKey: id) else { return [] }
        let left = startedPerFile[start.file, default: 1] - 1
        startedPerFile[start.file] = left > 0 ? left : nil
        endMarks[start.file] = max(endMarks[start.file] ?? writtenEnd, writtenEnd)
        return removeUnusedFiles()
    }

    /// How many open transactions started in `redo.<file>` (its reference count).
    public func referenceCount(file: Int) -> Int { startedPerFile[file] ?? 0 }

    /// Call once the replay is done and the transactions it left open are registered with
    /// `transactionStarted`: from then on unused files are deleted (now, after each completed
    /// sync, and when a transaction ends); returns the files deleted now.
    @discardableResult
    public func recoveryFinished() -> [String] {
        deletesFiles = true
        return removeUnusedFiles()
    }

    /// Closes every file. Nothing is synced: run a last sync first for a clean stop.
    public func close() {
        if case .open = state { try? flushWrites() }
        for file in files { try? file.handle.close() }
        if case .open = state { state = .closed }
    }

    /// The whole of a small file of the journal's directory (a checkpoint, `heuristic.log`), or
    /// `tooLarge(size)` when it is beyond `maxBytes` (never read into memory then).
    static func readWholeFile(storage: any Storage, path: String, maxBytes: Int,
                              tooLarge: (Int64) -> TxJournalError) throws(TxJournalError) -> [UInt8] {
        do {
            let file = try storage.open(path, create: false)
            defer { try? file.close() }
            let size = try file.size()
            guard size <= Int64(maxBytes) else { throw tooLarge(size) }
            return try file.read(at: 0, count: Int(size))
        } catch let error as TxJournalError {
            throw error
        } catch {
            throw .storage(storageError(error, path: path))
        }
    }

    static func storageError(_ error: any Error, path: String) -> StorageError {
        if let error = error as? StorageError { return error }
        return .io(path: path, detail: "\(error)")
    }
}
