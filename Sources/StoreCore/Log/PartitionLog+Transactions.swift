import ProtocolCore

/// What the transaction journal's recovery needs of a partition (reference §4.5): whether a
/// committed transaction's batch is where its commit entry says, and cutting a torn batch off
/// before it is appended again.
extension PartitionLog {
    /// Whether `length` bytes at `offset` are on disk and their `CRC32 & 0x7FFFFFFF` is
    /// `checksum`: the check recovery runs for every partition a replayed commit wrote.
    public func holdsBatch(at offset: Int64, length: Int32, checksum: Int32) throws(LogError) -> Bool {
        guard length >= 0, offset >= minOffset, offset + Int64(length) <= writtenOffset - Int64(stagedByteCount) else {
            return false
        }
        guard let bytes = try readBytes(offset: offset, maxBytes: Int(length)), bytes.count == Int(length) else { return false }
        return CRC32.metaqChecksum(bytes) == checksum
    }

    /// Cuts the log back to `offset`, durably, before a committed batch found torn at `offset` is
    /// appended again (so its first records cannot be there twice), before a slave copies again
    /// what follows damage in its copy, or before a follower drops the tail a new leader's term
    /// never had. Never while appends or a sync are in progress. An `offset` before the last
    /// segment removes the later segments first (newest first, so whatever a power loss leaves
    /// is a contiguous prefix recovery accepts) and makes the one holding `offset` the active
    /// segment. Damage recorded beyond `offset` goes with the bytes: what is appended there later
    /// is new.
    public func truncate(to offset: Int64) throws(LogError) {
        try requireOpen()
        guard staged.isEmpty, inFlight == nil, writeHolds == 0 else {
            throw .invalidRecords(detail: "cannot truncate \(directory) while appends are in progress")
        }
        if offset < segments[segments.count - 1].start, offset >= minOffset { try dropSegments(after: offset) }
        let last = segments[segments.count - 1]
        guard offset >= last.start, offset <= last.end else {
            throw .invalidRecords(detail: "cannot truncate \(directory) to \(offset): outside its last segment "
                                  + "\(last.start)..<\(last.end)")
        }
        guard offset < last.end else { return }
        // The whole records being cut off, for the message count of `stats`.
        var removedRecords = 0
        if let removed = try? readBytes(offset: offset, maxBytes: Int(last.end - offset)) {
            removed.withUnsafeBytes { raw in
                var position = 0
                while case .record(let header, let payloadStart) = Record.parse(raw, at: position) {
                    removedRecords += 1
                    position = payloadStart + Int(header.length)
                }
            }
        }
        let remaining = damagedRanges.compactMap { range -> Range<Int64>? in
            range.lowerBound < offset ? range.lowerBound..<min(range.upperBound, offset) : nil
        }
        do {
            try activeFile.truncate(to: offset - last.start)
            try activeFile.sync()
            if remaining != damagedRanges {
                try DamageRegistry.save(remaining, storage: storage, directory: directory)
                damagedRanges = remaining
            }
        } catch {
            let failure = Self.storageError(error, path: last.path)
            state = .failed(LogFailure(operation: .write, error: failure))
            throw .failed(failure)
        }
        last.size = offset - last.start
        syncedEnd = min(syncedEnd, offset)
        recordCount = max(0, recordCount - removedRecords)
        lastRecordIsEmpty = false
    }
}

extension PartitionLog {
    /// Removes every segment after the one holding `offset` (a segment starting exactly at
    /// `offset` stays, to be emptied) and reopens that one as the active segment.
    func dropSegments(after offset: Int64) throws(LogError) {
        guard let keep = segments.lastIndex(where: { $0.start <= offset }), keep < segments.count - 1 else { return }
        closeSealedSegments()
        let removed = Array(segments[(keep + 1)...])
        let kept = segments[keep]
        do {
            if kept.file == nil { kept.file = try storage.open(kept.path, create: false) }
        } catch {
            throw .storage(Self.storageError(error, path: kept.path))
        }
        for segment in removed.reversed() {
            closeFile(of: segment)
            do {
                try storage.remove(segment.path)
            } catch {
                let failure = Self.storageError(error, path: segment.path)
                state = .failed(LogFailure(operation: .write, error: failure))
                throw .failed(failure)
            }
            segments.removeLast()
        }
        sealedAwaitingClose.removeAll { seg in removed.contains { $0 === seg } || seg === kept }
        do {
            try storage.syncDirectory(directory)
        } catch {
            let failure = Self.storageError(error, path: directory)
            state = .failed(LogFailure(operation: .sync, error: failure))
            throw .failed(failure)
        }
        syncedEnd = min(syncedEnd, kept.end)
        directoryGeneration += 1
        directorySyncedGeneration = directoryGeneration
    }
}
