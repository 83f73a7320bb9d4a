import ProtocolCore

/// An XA transaction an operator completed by hand (reference §4.5 item 4).
public struct TxHeuristicEntry: Equatable, Sendable {
    public enum Outcome: UInt8, Equatable, Sendable {
        case committed = 1
        case rolledBack = 2
        /// Completed by an operator without a stated outcome (MetaQ's third heuristic state).
        case completed = 3
    }

    public var transactionId: String
    public var outcome: Outcome
    /// The resource (producer) the transaction belongs to, for `RECOVER` filtering.
    public var uniqueQualifier: String?

    public init(transactionId: String, outcome: Outcome, uniqueQualifier: String?) {
        self.transactionId = transactionId
        self.outcome = outcome
        self.uniqueQualifier = uniqueQualifier
    }
}

/// `heuristic.log` in the transactions directory, in our own portable format (the original's is
/// Java serialization). Big-endian:
///
///     "MQHL" | u16 version = 1 | u32 count |
///     count × ( u8 outcome | u16 idLen | id | u8 hasQualifier | [u16 qLen | qualifier] ) |
///     u32 CRC32 of every byte before it
///
/// Saved atomically (temporary file, sync, rename, directory sync); a missing or empty file is
/// an empty list (the original leaves an empty one), anything else that does not check out is an error.
public enum TxHeuristicLog {
    public static let fileName = "heuristic.log"
    static let magic: [UInt8] = Array("MQHL".utf8)
    static let version: UInt16 = 1
    /// The most entries a file may hold (a bound on what a damaged count can make us allocate).
    public static let maxEntries = 1 << 20

    /// The file's bytes for `entries`.
    public static func encode(_ entries: [TxHeuristicEntry]) -> [UInt8] {
        precondition(entries.count <= maxEntries, "too many heuristic transactions")
        var out = magic
        appendInt(&out, UInt64(version), bytes: 2)
        appendInt(&out, UInt64(entries.count), bytes: 4)
        for entry in entries {
            out.append(entry.outcome.rawValue)
            appendString(&out, entry.transactionId)
            if let qualifier = entry.uniqueQualifier {
                out.append(1)
                appendString(&out, qualifier)
            } else {
                out.append(0)
            }
        }
        appendInt(&out, UInt64(CRC32.checksum(out)), bytes: 4)
        return out
    }

    /// Parses the file's bytes; the error says what is wrong.
    public static func decode(_ bytes: [UInt8]) throws(TxFileFormatError) -> [TxHeuristicEntry] {
        if bytes.isEmpty { return [] }
        if bytes.starts(with: [0xAC, 0xED]) {
            throw TxFileFormatError(reason: "written by the Java broker (Java serialization); move it aside after resolving its transactions")
        }
        guard bytes.count >= 14, bytes.starts(with: magic) else { throw TxFileFormatError(reason: "not a heuristic transaction log") }
        let body = bytes[0..<(bytes.count - 4)]
        var reader = ByteReader(bytes: bytes, index: 4, end: bytes.count - 4)
        let stored = UInt32(readInt(bytes, at: bytes.count - 4, bytes: 4))
        guard CRC32.checksum(body) == stored else { throw TxFileFormatError(reason: "checksum mismatch") }
        let fileVersion = try reader.int(2)
        guard fileVersion == UInt64(version) else { throw TxFileFormatError(reason: "unknown version \(fileVersion)") }
        let count = try reader.int(4)
        guard count <= UInt64(maxEntries) else { throw TxFileFormatError(reason: "\(count) entries, more than \(maxEntries)") }
        var entries: [TxHeuristicEntry] = []
        for _ in 0..<count {
            guard let outcome = TxHeuristicEntry.Outcome(rawValue: UInt8(try reader.int(1))) else {
                throw TxFileFormatError(reason: "unknown outcome")
            }
            let id = try reader.string()
            let qualifier: String?
            switch try reader.int(1) {
            case 0: qualifier = nil
            case 1: qualifier = try reader.string()
            default: throw TxFileFormatError(reason: "bad qualifier flag")
            }
            entries.append(TxHeuristicEntry(transactionId: id, outcome: outcome, uniqueQualifier: qualifier))
        }
        guard reader.index == reader.end else { throw TxFileFormatError(reason: "bytes after the last entry") }
        return entries
    }

    /// Reads `heuristic.log` in `directory`; missing means none.
    public static func load(storage: any Storage, directory: String) throws(TxJournalError) -> [TxHeuristicEntry] {
        let path = StoragePath.join(directory, fileName)
        guard storage.fileExists(path) else { return [] }
        let bytes = try TxJournal.readWholeFile(storage: storage, path: path, maxBytes: 64 << 20) { size in
            .badHeuristicLog(path: path, reason: "\(size) bytes is too large")
        }
        do throws(TxFileFormatError) {
            return try decode(bytes)
        } catch {
            throw .badHeuristicLog(path: path, reason: error.reason)
        }
    }

    /// Replaces `heuristic.log` in `directory` with `entries`, atomically.
    public static func save(_ entries: [TxHeuristicEntry], storage: any Storage, directory: String) throws(TxJournalError) {
        let path = StoragePath.join(directory, fileName)
        do {
            try storage.replaceAtomically(path, with: encode(entries))
        } catch {
            throw .storage(TxJournal.storageError(error, path: path))
        }
    }

    private static func appendString(_ out: inout [UInt8], _ string: String) {
        let bytes = Array(string.utf8)
        precondition(bytes.count <= Int(UInt16.max), "heuristic log strings are at most 65535 bytes")
        appendInt(&out, UInt64(bytes.count), bytes: 2)
        out.append(contentsOf: bytes)
    }

    private static func appendInt(_ out: inout [UInt8], _ value: UInt64, bytes: Int) {
        for shift in stride(from: (bytes - 1) * 8, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    static func readInt(_ bytes: [UInt8], at index: Int, bytes count: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<count { value = value << 8 | UInt64(bytes[index + i]) }
        return value
    }

    struct ByteReader {
        let bytes: [UInt8]
        var index: Int
        let end: Int

        mutating func int(_ count: Int) throws(TxFileFormatError) -> UInt64 {
            guard end - index >= count else { throw TxFileFormatError(reason: "truncated") }
            defer { index += count }
            return TxHeuristicLog.readInt(bytes, at: index, bytes: count)
        }

        mutating func string() throws(TxFileFormatError) -> String {
            let count = Int(try int(2))
            guard end - index >= count else { throw TxFileFormatError(reason: "truncated") }
            defer { index += count }
            guard let string = String(validating: bytes[index..<(index + count)], as: UTF8.self) else {
                throw TxFileFormatError(reason: "string is not UTF-8")
            }
            return string
        }
    }
}

/// The transaction machine's heuristic records (`ProtocolCore.TxHeuristicRecord`) as this file
/// stores them, both ways in one place.
extension TxHeuristicLog {
    /// Saves `records` (an atomic rewrite, as `save(_:storage:directory:)`).
    public static func save(records: [TxHeuristicRecord], storage: any Storage, directory: String) throws(TxJournalError) {
        let entries = records.map { record in
            let outcome: TxHeuristicEntry.Outcome
            switch record.outcome {
            case .committed: outcome = .committed
            case .rolledBack: outcome = .rolledBack
            case .completed: outcome = .completed
            }
            return TxHeuristicEntry(transactionId: record.id.key, outcome: outcome, uniqueQualifier: record.id.uniqueQualifier)
        }
        try save(entries, storage: storage, directory: directory)
    }

    /// The records of the file, and the ids that are not transaction ids (skipped).
    public static func loadRecords(storage: any Storage, directory: String,
                                   maxKeyBytes: Int) throws(TxJournalError) -> (records: [TxHeuristicRecord], skipped: [String]) {
        var records: [TxHeuristicRecord] = []
        var skipped: [String] = []
        for entry in try load(storage: storage, directory: directory) {
            guard let id = try? TransactionId.parse(entry.transactionId, maxKeyBytes: maxKeyBytes) else {
                skipped.append(entry.transactionId)
                continue
            }
            let outcome: TxHeuristicRecord.Outcome
            switch entry.outcome {
            case .committed: outcome = .committed
            case .rolledBack: outcome = .rolledBack
            case .completed: outcome = .completed
            }
            records.append(TxHeuristicRecord(id: id, outcome: outcome))
        }
        return (records, skipped)
    }
}
