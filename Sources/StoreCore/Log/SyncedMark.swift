import ProtocolCore

/// `<partition>/synced-through`: "everything below this offset was synced", written only when a
/// sync ends right after an empty record.
///
/// Why: an empty record's header is covered by no checksum (CRC32 of nothing is 0), so recovery
/// believes a run of empty records only when a checksummed record follows it or it ends the file
/// (see `SegmentScanner`). A synced empty record followed by a torn unsynced one would then be
/// dropped — an acknowledged message lost. The mark vouches for it. Workloads without empty
/// messages never write it. The content is checksummed and rewritten in place: a torn mark only
/// affects the sync that was writing it, which was never acknowledged.
///
/// Format: 32 bytes, `<20-digit offset> <10-digit CRC32 of those digits>\n`.
enum SyncedMark {
    static let fileName = "synced-through"

    static func encode(_ offset: Int64) -> [UInt8] {
        let digits = Array(SegmentName.name(forStart: offset).utf8.prefix(20))
        let crc = String(CRC32.checksum(digits))
        return digits + [0x20] + Array((String(repeating: "0", count: 10 - crc.count) + crc).utf8) + [0x0A]
    }

    static func decode(_ bytes: [UInt8]) -> Int64? {
        guard bytes.count >= 32, bytes[20] == 0x20, bytes[31] == 0x0A else { return nil }
        let digits = Array(bytes[0..<20])
        guard let offset = Int64(String(decoding: digits, as: UTF8.self)),
              let crc = UInt32(String(decoding: bytes[21..<31], as: UTF8.self)),
              crc == CRC32.checksum(digits) else { return nil }
        return offset
    }

    static func load(storage: any Storage, directory: String) -> Int64? {
        let path = StoragePath.join(directory, fileName)
        guard storage.fileExists(path), let file = try? storage.open(path, create: false) else { return nil }
        defer { try? file.close() }
        return (try? file.read(at: 0, count: 32)).flatMap(decode)
    }

    /// Writes and syncs the mark (the file's directory entry must be made durable by the caller).
    static func write(_ offset: Int64, to file: any StorageFile) throws {
        try file.write(encode(offset), at: 0)
        try file.sync()
    }
}
