import ProtocolCore

/// Opening and recovery (reference §4.5 step 1, the file side): find the files, pick the newest
/// readable checkpoint, validate every entry from there, cut a torn tail off the newest file, and
/// refuse to start on damage anywhere else.
extension TxJournal {
    /// Opens (creating when needed) the journal in `directory` (see `directory(dataLogPath:)`).
    /// Afterwards, `replay` streams the entries to rebuild the transactions.
    public static func open(storage: any Storage, directory: String,
                            config: TxJournalConfig = TxJournalConfig()) throws(TxJournalError) -> (TxJournal, TxJournalOpenReport) {
        var report = TxJournalOpenReport()
        let names = try listing(storage: storage, directory: directory, report: &report)
        let checkpoint = newestCheckpoint(storage: storage, directory: directory, numbers: names.checkpoints, report: &report)
        var numbers = names.redo
        if numbers.isEmpty {
            if let checkpoint {
                throw .missingFiles(directory: directory, detail: "a checkpoint points at redo.\(checkpoint.file) but there is no redo file")
            }
            try createFirstFile(storage: storage, directory: directory)
            numbers = [1]
            report.createdFirstFile = true
        }
        let start = try replayStart(checkpoint: checkpoint, numbers: numbers, directory: directory)
        var files: [TxRedoFile] = []
        do {
            for number in numbers {
                let path = StoragePath.join(directory, redoName(number))
                let handle = try storage.open(path, create: false)
                files.append(TxRedoFile(number: number, path: path, handle: handle, size: try handle.size()))
            }
        } catch {
            for file in files { try? file.handle.close() }
            throw .storage(storageError(error, path: directory))
        }
        do {
            try validate(files, from: start, config: config, report: &report)
            // After a crash without power loss the page cache may still hold unsynced bytes: make
            // what the replay will see durable before anything is built on it.
            for file in files { try file.handle.sync() }
            try storage.syncDirectory(directory)
        } catch {
            for file in files { try? file.handle.close() }
            if let error = error as? TxJournalError { throw error }
            throw .storage(storageError(error, path: directory))
        }
        report.files = numbers
        report.checkpoint = checkpoint
        report.replayStart = start
        let journal = TxJournal(directory: directory, storage: storage, config: config, files: files,
                                replayStart: start, checkpointNumbers: names.checkpoints, lastCheckpoint: checkpoint)
        return (journal, report)
    }

    struct Listing {
        var redo: [Int] = []
        var checkpoints: [Int] = []
    }

    /// Redo and checkpoint numbers, sorted; removes leftover temporary files.
    static func listing(storage: any Storage, directory: String,
                        report: inout TxJournalOpenReport) throws(TxJournalError) -> Listing {
        var listing = Listing()
        do {
            try storage.makeDirectory(directory)
            for name in try storage.list(directory).sorted() {
                let path = StoragePath.join(directory, name)
                if name.hasSuffix(".tmp") {
                    try storage.remove(path)
                    report.removedTemporaryFiles.append(name)
                } else if name.hasPrefix("redo.") {
                    guard let number = fileNumber(name, prefix: "redo.") else { throw TxJournalError.badFileName(path: path) }
                    listing.redo.append(number)
                } else if name.hasPrefix("checkpoint.") {
                    guard let number = fileNumber(name, prefix: "checkpoint.") else { throw TxJournalError.badFileName(path: path) }
                    listing.checkpoints.append(number)
                }
            }
        } catch let error as TxJournalError {
            throw error
        } catch {
            throw .storage(storageError(error, path: directory))
        }
        listing.redo.sort()
        listing.checkpoints.sort()
        for (previous, next) in zip(listing.redo, listing.redo.dropFirst()) where next != previous + 1 {
            throw .missingFiles(directory: directory, detail: "redo.\(previous + 1) is missing between redo.\(previous) and redo.\(next)")
        }
        return listing
    }

    /// `<prefix><n>` with n a positive decimal number without sign or leading zero.
    static func fileNumber(_ name: String, prefix: String) -> Int? {
        let digits = name.utf8.dropFirst(prefix.utf8.count)
        guard !digits.isEmpty, digits.count <= 9, digits.first != UInt8(ascii: "0"),
              digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(Substring(digits))
    }

    /// The newest checkpoint that reads; empty ones (the original leaves an empty `checkpoint.1`
    /// before its first checkpoint) and unreadable ones are skipped for an older one, which is
    /// always safe: replay then starts earlier.
    static func newestCheckpoint(storage: any Storage, directory: String, numbers: [Int],
                                 report: inout TxJournalOpenReport) -> TxJournalPosition? {
        for number in numbers.reversed() {
            let path = StoragePath.join(directory, "checkpoint.\(number)")
            do {
                return try TxCheckpointFile.read(storage: storage, path: path)
            } catch {
                report.skippedCheckpoints.append("checkpoint.\(number): \(error)")
            }
        }
        return nil
    }

    static func createFirstFile(storage: any Storage, directory: String) throws(TxJournalError) {
        do {
            let handle = try storage.open(StoragePath.join(directory, redoName(1)), create: true)
            try handle.close()
            try storage.syncDirectory(directory)
        } catch {
            throw .storage(storageError(error, path: directory))
        }
    }

    static func replayStart(checkpoint: TxJournalPosition?, numbers: [Int], directory: String) throws(TxJournalError) -> TxJournalPosition {
        let first = numbers[0]
        let last = numbers[numbers.count - 1]
        guard let checkpoint else { return TxJournalPosition(file: first, offset: 0) }
        guard checkpoint.file <= last else {
            throw .missingFiles(directory: directory, detail: "the checkpoint points at redo.\(checkpoint.file), the newest file is redo.\(last)")
        }
        // Files below the first one were deleted because every transaction in them had ended.
        if checkpoint.file < first { return TxJournalPosition(file: first, offset: 0) }
        return checkpoint
    }

    /// Reads every entry from `start`; truncates a torn or damaged tail of the newest file and
    /// throws on anything unreadable before it.
    static func validate(_ files: [TxRedoFile], from start: TxJournalPosition, config: TxJournalConfig,
                         report: inout TxJournalOpenReport) throws {
        for file in files where file.number >= start.file {
            let isNewest = file === files[files.count - 1]
            var offset = file.number == start.file ? start.offset : 0
            guard offset <= file.size else {
                throw TxJournalError.damaged(path: file.path, offset: offset, reason: "the checkpoint points past the end of the file (\(file.size) bytes)")
            }
            scanning: while true {
                switch try scan(file.handle, number: file.number, at: offset, limit: file.size, config: config) {
                case .record(let record):
                    report.entryCount += 1
                    offset += Int64(record.size)
                case .end:
                    break scanning
                case .torn(let reason), .damaged(let reason):
                    guard isNewest else { throw TxJournalError.damaged(path: file.path, offset: offset, reason: reason) }
                    report.truncatedFile = StoragePath.lastComponent(of: file.path)
                    report.truncatedBytes = file.size - offset
                    report.truncationReason = reason
                    try file.handle.truncate(to: offset)
                    file.size = offset
                    break scanning
                }
            }
        }
    }
}
