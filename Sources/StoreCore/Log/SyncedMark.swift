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
/// Format: a `CheckedNumber` (32 bytes, value and checksum).
enum SyncedMark {
    static let fileName = "synced-through"

    static func encode(_ offset: Int64) -> [UInt8] { CheckedNumber.encode(offset) }

    static func decode(_ bytes: [UInt8]) -> Int64? { CheckedNumber.decode(bytes) }

    static func load(storage: any Storage, directory: String) -> Int64? {
        CheckedNumber.load(storage: storage, path: StoragePath.join(directory, fileName))
    }

    /// Writes and syncs the mark (the file's directory entry must be made durable by the caller).
    static func write(_ offset: Int64, to file: any StorageFile) throws {
        try file.write(encode(offset), at: 0)
        try file.sync()
    }
}
