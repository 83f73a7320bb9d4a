import DequeModule
import ProtocolCore

/// The log of one partition: `<dataPath>/<topic>-<n>/` holding segments named by their start
/// offset (reference §2.2), byte-compatible with MetaQ's files.
///
/// A single-owner value: the runtime touches it from one serial executor only. Syncs are split
/// into `beginSync` / `SyncBatch.perform` / `completeSync` so the fdatasync itself can run on a
/// sync thread while the owner keeps appending (group commit, §2.4).
///
/// Properties touched on every append are `@exclusivity(unchecked)`: with one owner no two
/// accesses can overlap, and the dynamic check cost a measurable share of an append.
public final class PartitionLog {
    enum State: Equatable {
        case open
        case failed(LogFailure)
        case closed
    }

    struct InFlightSync {
        var id: UInt64
        var upTo: Int64
        var appendCount: Int
        var directoryGeneration: UInt64?
    }

    public let directory: String
    public internal(set) var config: LogConfig
    let storage: any Storage
    @exclusivity(unchecked) var segments: [Segment]
    var state: State = .open
    /// Everything below this offset is durable; readers see only this far (§2.3).
    var syncedEnd: Int64
    /// Appends not yet covered by a sync (MetaQ counts appends, not records or bytes).
    @exclusivity(unchecked) var unflushedCount = 0
    var lastSyncAt: Instant
    /// Group-commit appends waiting for a sync: (ticket, end offset), in offset order.
    @exclusivity(unchecked) var waiters = Deque<(ticket: UInt64, end: Int64)>()
    var inFlight: InFlightSync?
    /// Set when a sync could not start its work (out of descriptors): no sync before this.
    var syncRetryAt: Instant?
    var nextSyncId: UInt64 = 1
    /// Bumped when a segment is created; the directory needs a sync until a batch covers it.
    var directoryGeneration: UInt64 = 0
    var directorySyncedGeneration: UInt64 = 0
    /// Damaged ranges found by recovery (sorted, absolute offsets); never served.
    public internal(set) var damagedRanges: [Range<Int64>]
    public internal(set) var recoveryReport: RecoveryReport
    /// Records appended since the log was opened (plus those recovery scanned).
    @exclusivity(unchecked) public internal(set) var recordCount: Int
    /// Whether the last record written is empty: a sync ending there writes the `SyncedMark`.
    @exclusivity(unchecked) var lastRecordIsEmpty: Bool
    var markFile: (any StorageFile)?
    /// Records staged for the last segment and not written to its file yet (its `size` counts
    /// them). `flushWrites()` writes them in one call; syncs and rolls flush first.
    @exclusivity(unchecked) var staged: [UInt8] = []
    /// Set by `requestPromptSync()` (and replicated appends): the next sync is due at once,
    /// whatever the flush policy; cleared when a sync begins.
    @exclusivity(unchecked) public internal(set) var promptSyncRequested = false
    /// Holds on the log's writes (`holdWrites`): while any is taken, staged bytes stay in memory.
    @exclusivity(unchecked) public internal(set) var writeHolds = 0
    /// Sealed segments whose file a running sync may still use; closed when it completes, as
    /// closing a descriptor under the sync thread could let a new file take its number.
    var sealedAwaitingClose: [Segment] = []

    init(directory: String, config: LogConfig, storage: any Storage, segments: [Segment],
         report: RecoveryReport, recordCount: Int, endsWithEmptyRecord: Bool, markFile: (any StorageFile)?, now: Instant) {
        self.lastRecordIsEmpty = endsWithEmptyRecord
        self.markFile = markFile
        self.directory = directory
        self.config = config
        self.storage = storage
        self.segments = segments
        self.syncedEnd = segments.last!.end
        self.lastSyncAt = now
        self.damagedRanges = report.damagedRanges
        self.recoveryReport = report
        self.recordCount = recordCount
    }

    /// The first offset still stored (start of the oldest segment).
    public var minOffset: Int64 { segments[0].start }
    /// The readable end: every byte below it is synced (MetaQ's flushed high-water mark, §2.3).
    public var maxOffset: Int64 { syncedEnd }
    /// The end of everything appended, synced or not.
    public var writtenOffset: Int64 { segments[segments.count - 1].end }
    public var segmentCount: Int { segments.count }
    /// Start offsets of the segments, oldest first.
    public var segmentStarts: [Int64] { segments.map(\.start) }
    public var isFailed: Bool { failure != nil }
    /// The write or sync that failed the log; nil while it is healthy (or closed).
    public var failure: LogFailure? { if case .failed(let failure) = state { return failure } else { return nil } }
    /// Appends waiting for a sync under group commit.
    public var pendingAcknowledgements: Int { waiters.count }

    /// Appends whole records (one record, or a batch written contiguously, §2.4) and writes them
    /// to the segment file before returning (with anything staged before them).
    ///
    /// - Parameter ticket: returned by `completeSync` once this append is durable (group commit).
    public func append(records: [UInt8], ticket: UInt64 = 0, now: Instant) throws(LogError) -> AppendOutcome {
        try requireOpen()
        let (recordsInBatch, endsEmpty) = try validateRecords(records)
        try admitAppend()
        staged.append(contentsOf: records)
        return try finishAppend(records: recordsInBatch, bytes: records.count, endsEmpty: endsEmpty, ticket: ticket, writeNow: true)
    }

    /// Stages whole, encoded records as one batch with one ticket (a committed transaction's
    /// messages for this partition, §4.3): like `stage`, written at the next `flushWrites()`.
    public func stage(records: [UInt8], ticket: UInt64) throws(LogError) -> AppendOutcome {
        try requireOpen()
        let (recordsInBatch, endsEmpty) = try validateRecords(records)
        try admitAppend()
        staged.append(contentsOf: records)
        return try finishAppend(records: recordsInBatch, bytes: records.count, endsEmpty: endsEmpty, ticket: ticket,
                                writeNow: staged.count >= Self.stagingBytes)
    }

    /// Stages a master's whole records as they are (replication, issue 17): they must start at
    /// this log's end (`at`), and every record's checksum is verified, so a slave never stores
    /// bytes its master did not. No append waits for them (the caller learns what is durable
    /// from `maxOffset` after a sync); a sync is requested at once, whatever the flush policy.
    ///
    /// - Returns: the log's end after them.
    @discardableResult
    public func stageReplicated(records: [UInt8], at offset: Int64) throws(LogError) -> Int64 {
        try requireOpen()
        let end = segments[segments.count - 1].end
        guard offset == end else {
            throw .invalidRecords(detail: "replicated records start at \(offset), the log of \(directory) ends at \(end)")
        }
        let (count, lastIsEmpty) = try validateRecords(records)
        let limit = config.maxRecordPayloadBytes
        let damage: String? = records.withUnsafeBytes { raw in
            var position = 0
            while position < raw.count {
                switch Record.parse(raw, at: position, maxPayloadBytes: limit) {
                case .record(let header, let payloadStart): position = payloadStart + Int(header.length)
                case .incomplete: return "a cut record at \(offset + Int64(position))"
                case .damaged(let why): return "\(why) at \(offset + Int64(position))"
                }
            }
            return nil
        }
        if let damage { throw .invalidRecords(detail: damage) }
        try admitAppend()
        staged.append(contentsOf: records)
        promptSyncRequested = true
        _ = try finishAppend(records: count, bytes: records.count, endsEmpty: lastIsEmpty, ticket: 0,
                             writeNow: staged.count >= Self.stagingBytes, waits: false)
        return segments[segments.count - 1].end
    }

    /// Makes the next sync due at once (a synchronous master's puts wait for it).
    public func requestPromptSync() {
        promptSyncRequested = true
    }

    /// Takes back what was staged from `offset` on — a transaction's batch whose commit could
    /// not go ahead, staged in this same turn behind a hold, so none of it reached the file —
    /// and the waiter `ticket` it added.
    public func unstage(from offset: Int64, ticket: UInt64) {
        let last = segments[segments.count - 1]
        let count = last.end - offset
        precondition(count >= 0 && count <= Int64(staged.count), "only staged bytes of \(directory) can be taken back")
        guard count > 0 else { return }
        let removed = Array(staged[(staged.count - Int(count))...])
        var records = 0
        removed.withUnsafeBytes { raw in
            var position = 0
            while case .record(let header, let payloadStart) = Record.parse(raw, at: position) {
                records += 1
                position = payloadStart + Int(header.length)
            }
        }
        staged.removeLast(Int(count))
        last.size -= count
        recordCount -= records
        unflushedCount = max(0, unflushedCount - 1)
        if let index = waiters.lastIndex(where: { $0.ticket == ticket }) { waiters.remove(at: index) }
    }

    /// Fails the log on purpose, dropping what is staged: a held batch whose commit entry's fate
    /// is unknown (the journal failed) must never reach the file, and nothing may be appended
    /// after it. Like any failed log it refuses writes until the broker restarts; its waiting
    /// appends are collected with `abandonPendingAppends()`.
    public func fail(_ operation: LogFailure.Operation, _ error: StorageError) {
        guard state == .open else { return }
        let dropped = Int64(staged.count)
        staged.removeAll()
        let last = segments[segments.count - 1]
        last.size -= dropped
        state = .failed(LogFailure(operation: operation, error: error))
    }

    /// Encodes and appends one message record, written to the file before returning.
    public func append(msgId: Int64, flag: Int32, payload: [UInt8], ticket: UInt64 = 0,
                       now: Instant) throws(LogError) -> AppendOutcome {
        try stage(msgId: msgId, flag: flag, payload: payload, ticket: ticket, writeNow: true)
    }

    /// Encodes one message record into the staging buffer (no system call unless the buffer is
    /// full). The caller batches: many `stage` calls, then one `flushWrites()`.
    ///
    /// An outcome that is `acknowledged` (`unflushThreshold > 0`) may be answered only after the
    /// next `flushWrites()` succeeds: until then the bytes live in this process only. Under group
    /// commit the ticket comes back from `completeSync` as usual (a sync flushes first).
    ///
    /// - Parameter checksum: `CRC32.metaqChecksum(payload)` when the caller already has it.
    public func stage(msgId: Int64, flag: Int32, payload: [UInt8], checksum: Int32? = nil,
                      ticket: UInt64 = 0) throws(LogError) -> AppendOutcome {
        try stage(msgId: msgId, flag: flag, payload: payload, checksum: checksum, ticket: ticket, writeNow: false)
    }

    private func stage(msgId: Int64, flag: Int32, payload: [UInt8], checksum: Int32? = nil, ticket: UInt64,
                       writeNow: Bool) throws(LogError) -> AppendOutcome {
        try requireOpen()
        guard payload.count <= config.maxRecordPayloadBytes else {
            throw .recordTooLarge(payloadBytes: payload.count, limit: config.maxRecordPayloadBytes)
        }
        try admitAppend()
        if staged.capacity == 0 { staged.reserveCapacity(Self.retainedStagingBytes) }
        Record.append(to: &staged, msgId: msgId, flag: flag, payload: payload,
                      checksum: checksum ?? CRC32.metaqChecksum(payload))
        return try finishAppend(records: 1, bytes: Record.size(payloadCount: payload.count), endsEmpty: payload.isEmpty,
                                ticket: ticket, writeNow: writeNow || staged.count >= Self.stagingBytes)
    }

    /// Staged bytes beyond this are written at once, which bounds the buffer.
    static let stagingBytes = 256 << 10
    /// A log starts its staging buffer at this size and keeps it between writes (up to twice it,
    /// for the allocator's rounding); a busy tick grows it towards `stagingBytes`, and a buffer
    /// grown beyond twice this is given back once written.
    static let retainedStagingBytes = 64 << 10

    /// The staging buffer's capacity (for tests of the memory it keeps).
    var stagingCapacity: Int { staged.capacity }

    /// Checks that an append may start, and rolls the segment first when it is full.
    private func admitAppend() throws(LogError) {
        if config.flushPolicy.isGroupCommit && waiters.count >= config.maxPendingAppends {
            throw .tooManyPendingAppends(limit: config.maxPendingAppends)
        }
        if writeHolds > 0 {
            // A held log cannot roll (the roll writes and syncs what is staged): the segment
            // grows past `maxSegmentSize` by what waits behind the hold, which is bounded here.
            guard staged.count < Self.maxHeldBytes else { throw .tooManyHeldBytes(limit: Self.maxHeldBytes) }
            return
        }
        if segments[segments.count - 1].size >= config.maxSegmentSize { try roll() }
    }

    /// Staged bytes a held log accepts (the transaction's own batch, and the puts behind it
    /// while its commit record becomes durable).
    public static let maxHeldBytes = 64 << 20

    /// Keeps what is staged out of the file until `releaseWrites()`: a transaction's batch may
    /// reach the disk only after the journal entry that commits it is durable, or a power loss
    /// could leave the batch without its commit (reference §4.5). Records staged before the hold
    /// wait with it (one journal sync; writing them first would cost a write per commit). Held
    /// records are not synced and their appends not acknowledged; a log can be held more than
    /// once (one hold per committing transaction).
    public func holdWrites() throws(LogError) {
        try requireOpen()
        writeHolds += 1
    }

    /// Gives back one `holdWrites()`; with none left, the staged records are written at the next
    /// `flushWrites()` (the caller's end of tick).
    public func releaseWrites() {
        precondition(writeHolds > 0, "writes of \(directory) released more often than held")
        writeHolds -= 1
    }

    /// Whether records are staged behind a hold.
    public var isHoldingWrites: Bool { writeHolds > 0 }

    /// Bookkeeping once an append's `bytes` are at the end of `staged`.
    private func finishAppend(records: Int, bytes: Int, endsEmpty: Bool, ticket: UInt64,
                              writeNow: Bool, waits: Bool = true) throws(LogError) -> AppendOutcome {
        let last = segments[segments.count - 1]
        let offset = last.end
        last.size += Int64(bytes)
        lastRecordIsEmpty = endsEmpty
        unflushedCount += 1
        recordCount += records
        if config.flushPolicy.isGroupCommit && waits {
            precondition(waiters.last.map { $0.end <= last.end } ?? true, "waiters must stay in offset order")
            waiters.append((ticket, last.end))
        }
        if writeNow { try flushWrites() }
        return AppendOutcome(offset: offset, acknowledged: !config.flushPolicy.isGroupCommit)
    }

    /// Writes the staged records to the last segment in one call. On failure the log is failed
    /// (what reached the file is unknown, so nothing more may be appended after it); the caller
    /// answers the appends it staged with an error and collects `abandonPendingAppends()`.
    public func flushWrites() throws(LogError) {
        guard !staged.isEmpty, writeHolds == 0 else { return }
        try requireOpen()
        let last = segments[segments.count - 1]
        let position = last.size - Int64(staged.count)
        do {
            let file = activeFile
            try staged.withUnsafeBytes { try file.write($0, at: position) }
        } catch {
            let failure = Self.storageError(error, path: last.path)
            state = .failed(LogFailure(operation: .write, error: failure))
            throw .failed(failure)
        }
        // A tick's worth of small puts keeps its buffer; a larger one gives it back, so a broker
        // with many partitions does not hold `stagingBytes` for each of them for good (1,000
        // partitions of 16 KiB messages held 250 MiB that way).
        if staged.capacity > 2 * Self.retainedStagingBytes { staged = [] } else { staged.removeAll(keepingCapacity: true) }
    }

    /// Bytes staged and not yet written.
    public var stagedByteCount: Int { staged.count }

    /// Closes every segment file. The log is unusable afterwards.
    ///
    /// - Parameter clean: the graceful stop's close. If the log is healthy and everything
    ///   written is durable (no sync running, nothing staged or held, nothing unsynced), it leaves
    ///   a `CleanStopMark` first, so the next open can skip scanning the last segment.
    /// - Returns: whether that mark was written.
    @discardableResult
    public func close(clean: Bool = false) -> Bool {
        if state == .open { try? flushWrites() }
        let marked = clean && writeCleanStopMark()
        for segment in sealedAwaitingClose + segments { closeFile(of: segment) }
        sealedAwaitingClose.removeAll()
        try? markFile?.close()
        state = .closed
        return marked
    }

    /// The active segment's file, open for as long as the log is.
    var activeFile: any StorageFile {
        let last = segments[segments.count - 1]
        guard let file = last.file else { preconditionFailure("the active segment \(last.path) is closed") }
        return file
    }

    /// Calls `body` with the segment's file: its open one, or a sealed segment's opened for this
    /// call only.
    func withFile<R>(_ segment: Segment, _ body: (any StorageFile) throws -> R) throws -> R {
        if let file = segment.file { return try body(file) }
        let file = try storage.open(segment.path, create: false)
        defer { try? file.close() }
        return try body(file)
    }

    func closeFile(of segment: Segment) {
        try? segment.file?.close()
        segment.file = nil
    }

    /// Closes the sealed segments no running sync can use any more.
    func closeSealedSegments() {
        guard inFlight == nil, !sealedAwaitingClose.isEmpty else { return }
        for segment in sealedAwaitingClose {
            // Sealing synced it (`roll`): a closed segment never holds bytes a sync still needs.
            precondition(segment.end <= syncedEnd, "closing \(segment.path) with unsynced bytes")
            closeFile(of: segment)
        }
        sealedAwaitingClose.removeAll()
    }

    func requireOpen() throws(LogError) {
        switch state {
        case .open: return
        case .failed(let failure): throw .failed(failure.error)
        case .closed: throw .storage(.closed(path: directory))
        }
    }

    /// Counts the records of an append and checks that their headers chain exactly to its end;
    /// also says whether the last one is empty. Checksums are not recomputed: the broker builds
    /// records itself.
    private func validateRecords(_ records: [UInt8]) throws(LogError) -> (count: Int, lastIsEmpty: Bool) {
        guard !records.isEmpty else { throw .invalidRecords(detail: "empty append") }
        let limit = config.maxRecordPayloadBytes
        let checked: Result<(count: Int, lastIsEmpty: Bool), LogError> = records.withUnsafeBytes { raw in
            var pos = 0
            var count = 0
            var lastIsEmpty = false
            while pos < raw.count {
                guard raw.count - pos >= Record.headerSize else {
                    return .failure(.invalidRecords(detail: "cut header at byte \(pos)"))
                }
                let length = Int(Int32(bigEndian: raw.loadUnaligned(fromByteOffset: pos, as: Int32.self)))
                guard length >= 0 else { return .failure(.invalidRecords(detail: "negative length at byte \(pos)")) }
                guard length <= limit else { return .failure(.recordTooLarge(payloadBytes: length, limit: limit)) }
                pos += Record.headerSize + length
                count += 1
                lastIsEmpty = length == 0
            }
            guard pos == raw.count else {
                return .failure(.invalidRecords(detail: "last record passes the end of the append"))
            }
            return .success((count, lastIsEmpty))
        }
        return try checked.get()
    }

    /// Starts a new segment at the end of the last one (§2.5), after sealing the old one.
    ///
    /// Sealing (sync of the full segment, and of the directory if its entry is not durable yet)
    /// is what MetaQ does too, and it is what makes recovery sound: only the last segment can ever
    /// hold unsynced bytes, and recovery scans the last segment. It costs one fdatasync per
    /// `maxSegmentSize` bytes, on the owner; under group commit the sync thread has usually synced
    /// almost all of it already. Group-commit appends it covers are acknowledged by the next
    /// `completeSync`, which the append that caused the roll makes due.
    private func roll() throws(LogError) {
        try flushWrites()
        let last = segments[segments.count - 1]
        if last.end > syncedEnd || directoryGeneration != directorySyncedGeneration {
            do {
                try activeFile.sync()
            } catch {
                let failure = Self.storageError(error, path: last.path)
                state = .failed(LogFailure(operation: .sync, error: failure))
                throw .failed(failure)
            }
            do {
                try storage.syncDirectory(directory)
            } catch {
                let failure = Self.storageError(error, path: directory)
                // The directory could not even be opened (out of descriptors): nothing is lost,
                // the append is refused and the next one tries the roll again.
                if failure.isRetryable { throw .storage(failure) }
                state = .failed(LogFailure(operation: .sync, error: failure))
                throw .failed(failure)
            }
            syncedEnd = last.end
            directorySyncedGeneration = directoryGeneration
        }
        let start = last.end
        // Segments are contiguous: each starts where the previous one ends (§2.5).
        precondition(segments.count < 2 || segments[segments.count - 2].end == last.start,
                     "segments of \(directory) are not contiguous")
        let path = StoragePath.join(directory, SegmentName.name(forStart: start))
        do {
            let file = try storage.open(path, create: true)
            segments.append(Segment(start: start, path: path, file: file, size: 0))
            directoryGeneration += 1
        } catch {
            throw .storage(Self.storageError(error, path: path))
        }
        // Sealed: only readers need it from now on, and they open it on demand.
        sealedAwaitingClose.append(last)
        closeSealedSegments()
    }

    /// Once the log has failed (a write or sync error), the group-commit appends that will never be
    /// acknowledged; the caller answers them with an error. Empty while the log is healthy.
    public func abandonPendingAppends() -> [UInt64] {
        guard case .failed = state else { return [] }
        let abandoned = waiters.map(\.ticket)
        waiters.removeAll()
        return abandoned
    }

    static func storageError(_ error: any Error, path: String) -> StorageError {
        (error as? StorageError) ?? .io(path: path, detail: "\(error)")
    }
}
