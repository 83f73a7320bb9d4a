import ProtocolCore

/// What reading the bytes at one offset of a redo file found.
enum TxScanStep {
    case record(TxJournalRecord)
    /// The offset is the end of the readable range.
    case end
    /// The range ends inside an entry (a torn tail).
    case torn(String)
    case damaged(String)
}

extension TxJournal {
    /// Decodes the entry at `offset` of `file`, reading no further than `limit`. The read window
    /// starts at `readWindowBytes` and doubles only while an entry does not fit, up to the entry bound.
    static func scan(_ handle: any StorageFile, number: Int, at offset: Int64, limit: Int64,
                     config: TxJournalConfig) throws -> TxScanStep {
        guard offset < limit else { return .end }
        let available = limit - offset
        var count = Int(min(Int64(config.readWindowBytes), available))
        while true {
            let bytes = try handle.read(at: offset, count: count)
            let endOfInput = Int64(bytes.count) >= available
            guard bytes.count == count || endOfInput else {
                return .torn("file ends at \(offset + Int64(bytes.count)), expected \(limit)")
            }
            switch TxJournalCodec.decode(bytes, endOfInput: endOfInput, maxEntryBytes: config.maxEntryBytes) {
            case .entry(let entry, let force, let size):
                let position = TxJournalPosition(file: number, offset: offset)
                return .record(TxJournalRecord(position: position, entry: entry, force: force, size: size))
            case .damaged(let reason):
                return .damaged(reason)
            case .incomplete:
                if endOfInput { return .torn("the last \(available) byte(s) are an incomplete entry") }
                guard count <= config.maxEntryBytes else {
                    return .damaged("no entry ends within the limit of \(config.maxEntryBytes) bytes")
                }
                count = Int(min(Int64(count) * 2, available))
            }
        }
    }

    /// The whole entry at `offset`, or nil when none ends before `limit`.
    func readRecord(_ file: TxRedoFile, at offset: Int64, limit: Int64) throws -> TxJournalRecord? {
        if case .record(let record) = try Self.scan(file.handle, number: file.number, at: offset, limit: limit, config: config) {
            return record
        }
        return nil
    }

    /// Streams the entries from `replayStart` to the end the journal had when it was opened, in
    /// order, one at a time (memory: one read window plus one entry). `body` may append to the
    /// journal and rewrite attachments; entries appended meanwhile are not replayed.
    public func replay(_ body: (TxJournalRecord) throws -> Void) throws {
        var position = replayStart
        while position < replayEnd {
            guard let file = file(numbered: position.file) else {
                throw TxJournalError.missingFiles(directory: directory, detail: "redo.\(position.file) vanished during the replay")
            }
            let limit = file.number == replayEnd.file ? replayEnd.offset : file.size
            switch try Self.scan(file.handle, number: file.number, at: position.offset, limit: limit, config: config) {
            case .record(let record):
                try body(record)
                position.offset += Int64(record.size)
            case .end:
                position = TxJournalPosition(file: file.number + 1, offset: 0)
            case .torn(let reason), .damaged(let reason):
                // Open validated these bytes; only a change underneath us gets here.
                throw TxJournalError.damaged(path: file.path, offset: position.offset, reason: reason)
            }
        }
    }
}
