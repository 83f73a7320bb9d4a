import ProtocolCore

/// A checkpoint file's content (reference §4.4): `{"number":<redo file>,"offset":<byte offset>}`.
/// Hand-written JSON for exactly this shape: whitespace between tokens is accepted, the two keys in
/// either order, each once, with non-negative integer values; anything else is refused.
public enum TxCheckpointFile {
    /// The largest checkpoint file read.
    public static let maxBytes = 1024

    /// The JSON text of a checkpoint at `position`.
    public static func encode(_ position: TxJournalPosition) -> [UInt8] {
        Array("{\"number\":\(position.file),\"offset\":\(position.offset)}".utf8)
    }

    /// Reads the checkpoint at `path`; an empty file is an error ("empty") like any other.
    static func read(storage: any Storage, path: String) throws(TxJournalError) -> TxJournalPosition {
        let bytes = try TxJournal.readWholeFile(storage: storage, path: path, maxBytes: maxBytes) { size in
            .badCheckpoint(path: path, reason: "\(size) bytes, more than \(maxBytes)")
        }
        do throws(TxFileFormatError) {
            return try parse(bytes)
        } catch {
            throw .badCheckpoint(path: path, reason: error.reason)
        }
    }

    /// Parses the JSON text of a checkpoint.
    public static func parse(_ bytes: [UInt8]) throws(TxFileFormatError) -> TxJournalPosition {
        var parser = Parser(bytes: bytes)
        guard !bytes.isEmpty else { throw TxFileFormatError(reason: "empty") }
        try parser.expect(UInt8(ascii: "{"))
        var number: Int64?
        var offset: Int64?
        for index in 0..<2 {
            if index == 1 { try parser.expect(UInt8(ascii: ",")) }
            let key = try parser.key()
            try parser.expect(UInt8(ascii: ":"))
            let value = try parser.integer()
            switch key {
            case "number" where number == nil: number = value
            case "offset" where offset == nil: offset = value
            default: throw TxFileFormatError(reason: "unexpected or repeated key \"\(key)\"")
            }
        }
        try parser.expect(UInt8(ascii: "}"))
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw TxFileFormatError(reason: "text after the object") }
        guard let number, let offset else { throw TxFileFormatError(reason: "needs both number and offset") }
        guard number >= 1, number <= Int64(Int32.max) else { throw TxFileFormatError(reason: "redo file number \(number) out of range") }
        return TxJournalPosition(file: Int(number), offset: offset)
    }

    struct Parser {
        let bytes: [UInt8]
        var index = 0

        mutating func skipWhitespace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func expect(_ byte: UInt8) throws(TxFileFormatError) {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == byte else {
                throw TxFileFormatError(reason: "expected '\(Character(Unicode.Scalar(byte)))' at byte \(index)")
            }
            index += 1
        }

        /// A quoted key of plain ASCII letters (no escapes: our keys have none).
        mutating func key() throws(TxFileFormatError) -> String {
            try expect(UInt8(ascii: "\""))
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                guard bytes[index] >= 0x61, bytes[index] <= 0x7A else { throw TxFileFormatError(reason: "unexpected key at byte \(start)") }
                index += 1
            }
            guard index < bytes.count, index - start <= 16 else { throw TxFileFormatError(reason: "unterminated key at byte \(start)") }
            let key = String(decoding: bytes[start..<index], as: UTF8.self)
            index += 1
            return key
        }

        /// A non-negative decimal integer without leading zeros, fraction or exponent.
        mutating func integer() throws(TxFileFormatError) -> Int64 {
            skipWhitespace()
            let start = index
            var value: Int64 = 0
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times.addingReportingOverflow(Int64(bytes[index] - 0x30))
                guard !overflow1, !overflow2 else { throw TxFileFormatError(reason: "number at byte \(start) overflows") }
                value = sum
                index += 1
            }
            guard index > start else { throw TxFileFormatError(reason: "expected a non-negative integer at byte \(start)") }
            guard bytes[start] != UInt8(ascii: "0") || index - start == 1 else {
                throw TxFileFormatError(reason: "leading zero at byte \(start)")
            }
            return value
        }
    }
}

/// Why the bytes of a checkpoint file or `heuristic.log` were refused.
public struct TxFileFormatError: Error, Equatable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

extension TxJournal {
    /// Writes `checkpoint.<n>` for the first entry of the oldest open transaction (§4.4), so the
    /// next recovery starts there: temporary file, sync, rename, directory sync; then deletes the
    /// oldest checkpoint files beyond `maxCheckpoints`. Nothing is written when no transaction is
    /// open or the position is not newer than the last checkpoint, and none while written bytes
    /// are not all durable (`.needsSync`). The caller must only pass commits whose partition
    /// batches are durable. A failure leaves the previous checkpoint in force; it does not fail
    /// the journal.
    public func checkpoint(oldestOpen: TxJournalPosition?) throws(TxJournalError) -> TxCheckpointOutcome {
        try requireOpen()
        guard let position = oldestOpen else { return .unchanged }
        if let lastCheckpoint, lastCheckpoint >= position { return .unchanged }
        // Only entry bytes matter here; a deleted file's directory entry may still be unsynced.
        guard staged.isEmpty, writtenEnd == syncedEnd, !files.contains(where: { $0.isDirty }), inFlight == nil else {
            return .needsSync
        }
        precondition(position <= writtenEnd, "a checkpoint cannot point past the written end")
        let number = (checkpointNumbers.last ?? 0) + 1
        let path = StoragePath.join(directory, "checkpoint.\(number)")
        do {
            try storage.replaceAtomically(path, with: TxCheckpointFile.encode(position))
        } catch {
            throw .storage(Self.storageError(error, path: path))
        }
        checkpointNumbers.append(number)
        lastCheckpoint = position
        try removeOldCheckpoints()
        return .written(number: number, position: position)
    }

    private func removeOldCheckpoints() throws(TxJournalError) {
        guard checkpointNumbers.count > config.maxCheckpoints else { return }
        do {
            while checkpointNumbers.count > config.maxCheckpoints {
                try storage.remove(StoragePath.join(directory, "checkpoint.\(checkpointNumbers[0])"))
                checkpointNumbers.removeFirst()
            }
            try storage.syncDirectory(directory)
        } catch {
            throw .storage(Self.storageError(error, path: directory))
        }
    }
}
