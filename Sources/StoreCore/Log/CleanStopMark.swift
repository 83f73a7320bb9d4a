import ProtocolCore

/// `<partition>/clean-stop`: written by a clean close (`PartitionLog.close(clean: true)`) once
/// everything written is synced, so the next open can skip the checksum scan of the last segment
/// (issue 18: the scan reads the whole segment, ~1 s per GiB, at every start).
///
/// It vouches for exactly one state of the last segment: its start, its size, whether it ends
/// with an empty record, and the log's record count. Open trusts it only when the last segment
/// still has that start and size, and removes it — durably, before the log accepts any write —
/// whether it trusted it or not: bytes written later (a follower's truncate and re-append can
/// rebuild the same size with other bytes) are never covered by a stale mark. Anything else (no
/// file, a torn or foreign one, another segment) means a full scan, as before.
///
/// Format (76 bytes): `<20-digit start> <20-digit size> <0|1 ends empty> <20-digit record count>
/// <10-digit CRC32 of everything before it>\n`. The checksum makes a torn write decode to nil.
/// MetaQ's loader ignores files that are not `*.meta`.
struct CleanStopMark: Equatable {
    static let fileName = "clean-stop"
    static let size = 76

    /// Start offset of the last segment.
    var start: Int64
    /// Size of the last segment's file.
    var sizeBytes: Int64
    var endsWithEmptyRecord: Bool
    /// `PartitionLog.recordCount` at the close, restored when the scan that counts it is skipped.
    var recordCount: Int

    func encode() -> [UInt8] {
        precondition(start >= 0 && sizeBytes >= 0 && recordCount >= 0, "clean-stop fields are non-negative")
        let fields = [Self.digits(start), Self.digits(sizeBytes), endsWithEmptyRecord ? "1" : "0",
                      Self.digits(Int64(recordCount))].joined(separator: " ") + " "
        let body = Array(fields.utf8)
        let crc = String(CRC32.checksum(body))
        return body + Array((String(repeating: "0", count: 10 - crc.count) + crc + "\n").utf8)
    }

    static func decode(_ bytes: [UInt8]) -> CleanStopMark? {
        guard bytes.count == size, bytes[size - 1] == 0x0A else { return nil }
        let body = Array(bytes[0..<(size - 11)])
        guard let crc = UInt32(String(decoding: bytes[(size - 11)..<(size - 1)], as: UTF8.self)),
              crc == CRC32.checksum(body) else { return nil }
        let fields = String(decoding: body, as: UTF8.self).split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 5, fields[4].isEmpty, fields[2] == "0" || fields[2] == "1",
              let start = Int64(fields[0]), let sizeBytes = Int64(fields[1]), let count = Int(fields[3]) else { return nil }
        return CleanStopMark(start: start, sizeBytes: sizeBytes, endsWithEmptyRecord: fields[2] == "1", recordCount: count)
    }

    /// The mark in `directory`, or nil when it is missing, unreadable, torn or not ours.
    static func load(storage: any Storage, directory: String) -> CleanStopMark? {
        let path = StoragePath.join(directory, fileName)
        guard storage.fileExists(path), let file = try? storage.open(path, create: false) else { return nil }
        defer { try? file.close() }
        guard let fileSize = try? file.size(), fileSize == Int64(size) else { return nil }
        return (try? file.read(at: 0, count: size)).flatMap(decode)
    }

    /// Writes and syncs the mark, then syncs the directory so its entry is durable too.
    func write(storage: any Storage, directory: String) throws {
        let file = try storage.open(StoragePath.join(directory, Self.fileName), create: true)
        defer { try? file.close() }
        try file.truncate(to: 0)
        try file.write(encode(), at: 0)
        try file.sync()
        try storage.syncDirectory(directory)
    }

    /// Unlinks the mark if there is one; the caller syncs the directory before any write.
    /// Returns whether there was one.
    @discardableResult
    static func remove(storage: any Storage, directory: String) throws -> Bool {
        let path = StoragePath.join(directory, fileName)
        guard storage.fileExists(path) else { return false }
        try storage.remove(path)
        return true
    }

    private static func digits(_ value: Int64) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }
}

extension PartitionLog {
    /// Whether every byte of the log is durable and nothing can change it before the close: the
    /// only state a `CleanStopMark` may describe.
    var isQuiescentAndDurable: Bool {
        state == .open && inFlight == nil && writeHolds == 0 && staged.isEmpty && sealedAwaitingClose.isEmpty
            && !hasUnsyncedData
    }

    /// Writes the clean-stop mark when the log is quiescent and durable; returns whether it did.
    /// A failed write is dropped (best effort: a mark that is not there, or torn, only costs the
    /// next open its scan).
    func writeCleanStopMark() -> Bool {
        guard isQuiescentAndDurable else { return false }
        let last = segments[segments.count - 1]
        guard (try? activeFile.size()) == last.size else { return false }
        let mark = CleanStopMark(start: last.start, sizeBytes: last.size, endsWithEmptyRecord: lastRecordIsEmpty,
                                 recordCount: max(0, recordCount))
        do {
            try mark.write(storage: storage, directory: directory)
            return true
        } catch {
            _ = try? CleanStopMark.remove(storage: storage, directory: directory)
            return false
        }
    }
}
