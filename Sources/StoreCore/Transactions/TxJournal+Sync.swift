import ProtocolCore

/// Durability in three steps, like `PartitionLog`: begin on the owner, perform anywhere, complete
/// on the owner. File deletion rides on completed syncs.
extension TxJournal {
    /// Whether anything written (bytes, a rewritten attachment, a created or deleted file's
    /// directory entry) is not yet durable.
    public var hasUnsyncedData: Bool {
        writtenEnd != syncedEnd || files.contains { $0.isDirty } || directoryGeneration != directorySyncedGeneration
    }

    /// Whether a sync is running (begun and neither completed nor failed).
    public var isSyncing: Bool { inFlight != nil }

    /// Starts a sync of everything written so far: the files with unsynced bytes oldest first,
    /// then the directory when an entry changed. The batch's `upTo` is the offset in the current
    /// file; `syncedEnd` is the position once it completes.
    public func beginSync() -> TxJournalSyncStart {
        if case .failed(let failure) = state { return .failed(failure) }
        do { try flushWrites() } catch {
            if case .failed(let failure) = state { return .failed(failure) }
            return .idle
        }
        guard state == .open, inFlight == nil, hasUnsyncedData else { return .idle }
        let dirty = files.filter { $0.isDirty }
        let needsDirectory = directoryGeneration != directorySyncedGeneration
        let batch = SyncBatch(upTo: writtenEnd.offset, files: dirty.map(\.handle),
                              directory: needsDirectory ? directory : nil,
                              storage: storage, id: nextSyncId, markFile: nil)
        inFlight = InFlightSync(id: nextSyncId, upTo: writtenEnd,
                                generations: dirty.map { ($0, $0.writeGeneration) },
                                directoryGeneration: needsDirectory ? directoryGeneration : nil)
        nextSyncId += 1
        return .begun(batch)
    }

    /// Records a finished sync: everything written before `beginSync` is durable. Then deletes
    /// the files no open transaction needs (once `recoveryFinished()` was called) and returns
    /// their names; their directory entries become durable with the next sync.
    @discardableResult
    public func completeSync(_ batch: SyncBatch) -> [String] {
        guard let sync = inFlight, sync.id == batch.id else { return [] }
        inFlight = nil
        guard state == .open else { return [] }
        precondition(sync.upTo <= writtenEnd, "a sync cannot cover bytes that were never written")
        syncedEnd = max(syncedEnd, sync.upTo)
        for (file, generation) in sync.generations {
            file.syncedGeneration = max(file.syncedGeneration, generation)
        }
        if let generation = sync.directoryGeneration {
            directorySyncedGeneration = max(directorySyncedGeneration, generation)
        }
        return removeUnusedFiles()
    }

    /// Records a failed sync: the journal is failed from now on (DESIGN.md §4).
    public func failSync(_ batch: SyncBatch, error: StorageError) {
        guard let sync = inFlight, sync.id == batch.id else { return }
        inFlight = nil
        _ = fail(.sync, error)
    }

    /// Begins, performs and completes a sync on the calling thread (tests, shutdown). Throws and
    /// fails the journal when the sync fails.
    @discardableResult
    public func syncNow() throws(TxJournalError) -> [String] {
        switch beginSync() {
        case .idle:
            try requireOpen()
            return []
        case .failed(let failure):
            throw .failed(failure)
        case .begun(let batch):
            do {
                try batch.perform()
            } catch {
                failSync(batch, error: error)
                throw .failed(failure ?? LogFailure(operation: .sync, error: error))
            }
            return completeSync(batch)
        }
    }

    /// Deletes the oldest redo file when it is not the current file, no open transaction started
    /// in it, nothing in it awaits a sync, and the entries that ended its transactions are durable.
    /// Oldest first because an open transaction's entries can be in any file from its first one
    /// on. One file per directory sync: the removal becomes durable with the next `SyncBatch`
    /// before the next file goes, so a power loss can bring back only the oldest removed file
    /// and the files on disk always form one unbroken run.
    func removeUnusedFiles() -> [String] {
        guard deletesFiles, inFlight == nil, state == .open, files.count > 1,
              directoryGeneration == directorySyncedGeneration else { return [] }
        let file = files[0]
        guard startedPerFile[file.number] == nil, !file.isDirty,
              (endMarks[file.number] ?? syncedEnd) <= syncedEnd else { return [] }
        do {
            try storage.remove(file.path)
        } catch {
            lastRemovalError = Self.storageError(error, path: file.path)
            return []
        }
        try? file.handle.close()
        files.removeFirst()
        endMarks[file.number] = nil
        directoryGeneration += 1
        return [Self.redoName(file.number)]
    }
}
