import ProtocolCore

/// Flush policy as pure decisions (reference §2.4): the log says when a sync is due and which
/// waiting appends a completed sync acknowledges; the caller runs the sync.
extension PartitionLog {
    /// Whether anything written is not yet durable (bytes, or a new segment's directory entry).
    public var hasUnsyncedData: Bool {
        writtenOffset > syncedEnd || directoryGeneration != directorySyncedGeneration
    }

    /// Whether bytes already written (not just staged) lie beyond what the last begun sync
    /// covers: false means the next write is the oldest data the next sync will make durable.
    public var hasWritesAwaitingNextSync: Bool {
        writtenOffset - Int64(stagedByteCount) > (inFlight?.upTo ?? syncedEnd)
    }

    /// Whether a sync should start now.
    ///
    /// Group commit (`unflushThreshold ≤ 0`): whenever something is unsynced — the sync thread
    /// batches whatever accumulated while the previous sync ran. Otherwise: when more than
    /// `unflushThreshold` appends are unsynced, or `unflushInterval` ms passed since the last sync.
    public func syncDue(now: Instant) -> Bool {
        guard state == .open, inFlight == nil, writeHolds == 0, hasUnsyncedData else { return false }
        if let retryAt = syncRetryAt, now < retryAt { return false }
        let policy = config.flushPolicy
        if policy.isGroupCommit || promptSyncRequested { return true }
        return unflushedCount > policy.unflushThreshold
            || now.milliseconds(since: lastSyncAt) >= policy.unflushIntervalMs
    }

    /// A reload's new `unflushThreshold`/`unflushInterval` (§8.4), taken from the next decision
    /// on: `syncDue` and `nextSyncDeadline` read it. A switch between group commit and threshold
    /// mode is refused (false): appends already answered or waiting were made under the other
    /// mode's promise, so it waits for the restart.
    public func changeFlushPolicy(to policy: FlushPolicy) -> Bool {
        guard policy.isGroupCommit == config.flushPolicy.isGroupCommit else { return false }
        config.flushPolicy = policy
        return true
    }

    /// When the interval rule will make a sync due (nil when nothing waits, or under group
    /// commit where it is due at once). The runtime arms its timer for this.
    public func nextSyncDeadline() -> Instant? {
        guard state == .open, writeHolds == 0, hasUnsyncedData else { return nil }
        if let retryAt = syncRetryAt { return retryAt }
        guard !config.flushPolicy.isGroupCommit else { return nil }
        return lastSyncAt.adding(milliseconds: config.flushPolicy.unflushIntervalMs)
    }

    /// How long a sync that could not start its work (`StorageError.isRetryable`) waits before
    /// the next attempt.
    public static let syncRetryDelayMs: Int64 = 100

    /// What `beginSync` did.
    public enum SyncStart {
        /// Nothing to sync: nothing is unsynced, a sync is already running, or the log is closed.
        case idle
        /// A sync of everything written so far; run `perform()`, then `completeSync` (or
        /// `failSync` / `postponeSync`).
        case begun(SyncBatch)
        /// The log is failed — by this call's write of the staged records, or earlier — and these
        /// waiting appends will never be acknowledged: the caller answers them with an error.
        case failed(abandoned: [UInt64])

        /// The batch when one was begun (tests and single-threaded callers).
        public var batch: SyncBatch? { if case .begun(let batch) = self { return batch } else { return nil } }
    }

    /// Starts the sync to run now. Staged records are written first; if that write fails the
    /// log is failed and the answer says which waiting appends it abandoned.
    public func beginSync() -> SyncStart {
        if case .failed = state { return .failed(abandoned: abandonPendingAppends()) }
        // A held log waits for its release (what it holds must not be synced before its commit).
        guard state == .open, inFlight == nil, writeHolds == 0, hasUnsyncedData else { return .idle }
        do { try flushWrites() } catch { return .failed(abandoned: abandonPendingAppends()) }
        // Oldest first: a segment's bytes become durable no later than those of any later segment.
        // Sealing syncs a segment (`roll`), so only the active one can hold unsynced bytes; the
        // search still walks back from the end rather than rely on that, and a closed segment
        // with unsynced bytes would be a durability hole: stop rather than skip it.
        var unsynced: [any StorageFile] = []
        for segment in segments.reversed() {
            guard segment.end > syncedEnd else { break }
            guard let file = segment.file else { preconditionFailure("\(segment.path) has unsynced bytes but is closed") }
            unsynced.append(file)
        }
        let files = Array(unsynced.reversed())
        let mark = lastRecordIsEmpty ? openMarkFile() : nil
        let needsDirectory = directoryGeneration != directorySyncedGeneration
        let batch = SyncBatch(upTo: writtenOffset, files: files, directory: needsDirectory ? directory : nil,
                              storage: storage, id: nextSyncId, markFile: mark)
        promptSyncRequested = false
        inFlight = InFlightSync(id: nextSyncId, upTo: writtenOffset, appendCount: unflushedCount,
                                directoryGeneration: needsDirectory ? directoryGeneration : nil)
        nextSyncId += 1
        return .begun(batch)
    }

    /// The synced-through mark's file, created on first use (its entry is then synced with the
    /// batch's directory sync). Nil if it cannot be created: the batch then goes without a mark,
    /// and a torn write after a synced empty record could cost that record at recovery.
    private func openMarkFile() -> (any StorageFile)? {
        if let markFile { return markFile }
        let file = try? storage.open(StoragePath.join(directory, SyncedMark.fileName), create: true)
        if file != nil { directoryGeneration += 1 }
        markFile = file
        return file
    }

    /// Records a finished sync; returns the tickets of the group-commit appends it made durable.
    public func completeSync(_ batch: SyncBatch, now: Instant) -> [UInt64] {
        guard let sync = inFlight, sync.id == batch.id else { return [] }
        inFlight = nil
        closeSealedSegments()
        guard state == .open else { return [] }
        precondition(sync.upTo <= writtenOffset, "a sync cannot cover bytes that were never written")
        syncRetryAt = nil
        syncedEnd = max(syncedEnd, sync.upTo)
        if let generation = sync.directoryGeneration {
            directorySyncedGeneration = max(directorySyncedGeneration, generation)
        }
        unflushedCount -= sync.appendCount
        lastSyncAt = now
        var acknowledged: [UInt64] = []
        while let first = waiters.first, first.end <= syncedEnd {
            acknowledged.append(first.ticket)
            waiters.removeFirst()
        }
        checkInvariants()
        return acknowledged
    }

    /// Records a sync that did nothing because a file or directory could not be opened for want of
    /// descriptors or memory (`error.isRetryable`): unlike a failed sync, no data's fate is
    /// unknown, so the log stays open, its waiting appends keep waiting, and the next sync is due
    /// `syncRetryDelayMs` later (`nextSyncDeadline`). Any other error fails the log (`failSync`).
    public func postponeSync(_ batch: SyncBatch, error: StorageError, now: Instant) {
        precondition(error.isRetryable, "only a sync that could not start is postponed: \(error)")
        guard let sync = inFlight, sync.id == batch.id else { return }
        inFlight = nil
        closeSealedSegments()
        syncRetryAt = now.adding(milliseconds: Self.syncRetryDelayMs)
    }

    /// Records a failed sync. The log is failed from now on (DESIGN.md §4): it refuses writes, and
    /// every waiting append is returned so the caller can answer it with an error. A log that a
    /// write failed meanwhile keeps that first failure as its cause.
    public func failSync(_ batch: SyncBatch, error: StorageError) -> [UInt64] {
        guard let sync = inFlight, sync.id == batch.id else { return [] }
        inFlight = nil
        closeSealedSegments()
        if failure == nil { state = .failed(LogFailure(operation: .sync, error: error)) }
        return abandonPendingAppends()
    }

    /// Syncs on the calling thread (tests, shutdown, single-threaded drivers).
    /// Returns the acknowledged tickets; throws and fails the log if the sync fails.
    @discardableResult
    public func syncNow(now: Instant) throws(LogError) -> [UInt64] {
        try requireOpen()
        try flushWrites()
        guard case .begun(let batch) = beginSync() else { return [] }
        do {
            try batch.perform()
        } catch {
            _ = failSync(batch, error: error)
            throw .failed(error)
        }
        return completeSync(batch, now: now)
    }
}

extension PartitionLog {
    /// The paired invariants of the log (DESIGN.md §3): what is durable was written, the first
    /// waiting append is not yet durable, and waiters are in offset order. The cheap ones are
    /// preconditions (they protect what is acknowledged); the walk over every waiter is a debug
    /// assertion.
    func checkInvariants() {
        precondition(syncedEnd <= writtenOffset, "synced end \(syncedEnd) beyond written end \(writtenOffset) in \(directory)")
        if let first = waiters.first {
            precondition(first.end > syncedEnd, "a durable append still waits for a sync in \(directory)")
        }
        assert(zip(waiters, waiters.dropFirst()).allSatisfy { $0.end <= $1.end }, "waiters out of offset order in \(directory)")
    }
}
