import ProtocolCore

/// The local recover store of one `(topic, group)` (reference §5.2): messages a consumer handed
/// off after their last retry, kept durably until a redelivery succeeds. Like the original, one
/// directory per `<topic>@<group>` under a root (`~/.meta_recover`); unlike it, not a
/// Java-serialized journal but this append-only file, `recover.log`:
///
/// - header, 8 bytes: magic `MQRC`, then the format version as a big-endian UInt32 (1);
/// - records, each `UInt32 length | UInt32 CRC32(body) | body` (big-endian, `length` counts the
///   body), the body starting with a kind byte and the 8-byte msgId:
///   - kind 1, a message: `1 | msgId | Int32 flag | UInt16 n + topic | Int32 brokerId | Int32 partition |
///     Int64 offset | UInt16 n + group | payload` (the payload as in a `put`, §1.4.1: the
///     attribute header when flag bit 0 is set, then the data);
///   - kind 2, a removal (tombstone): `2 | msgId` — the message appended before it is gone.
///
/// Every `append` and `remove` is synced before it returns. Opening replays the records in
/// order; bytes after the last whole, checksummed record are the torn tail of an interrupted
/// write and are cut, and a file with records is rewritten from the live ones, so what the store
/// reports is durable even after an earlier process's failed sync (see `replay`). Bytes that are not a record but are followed by records are damage
/// (DESIGN.md §4: never drop a record that could be kept): they are skipped, the whole file is
/// kept aside as `recover.log.damaged.<n>`, and the live records are rewritten to a clean file
/// (`damagedRanges` says where; a message whose record was damaged is lost, a removal whose
/// tombstone was damaged comes back, and is redelivered once more). The file stays
/// bounded: once removed messages and tombstones take more bytes than the live messages (and
/// at least `compactionThresholdBytes`), the live records are rewritten to a new file that
/// replaces the old atomically, so a crash leaves either file whole.
public final class RecoverStore {
    public static let fileName = "recover.log"

    /// The file of slot `n` of a store directory: `recover.log` for slot 0, `recover.<n>.log`
    /// after it. Each consumer process of a group on one machine keeps its own slot (the client
    /// holds a lock per slot), so two processes never append to one file.
    public static func fileName(slot: Int) -> String {
        precondition(slot >= 0, "slots are not negative")
        return slot == 0 ? fileName : "recover.\(slot).log"
    }

    /// The slot of a store file name, or nil when the name is not a store file (a damaged copy,
    /// a temporary, a lock).
    public static func slot(ofFileName name: String) -> Int? {
        if name == fileName { return 0 }
        guard name.hasPrefix("recover."), name.hasSuffix(".log") else { return nil }
        let digits = name.dropFirst("recover.".count).dropLast(".log".count)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), digits.first != "0",
              let slot = Int(digits) else { return nil }
        return slot
    }

    /// The path of the file this store writes.
    public var path: String { file.path }

    public let topic: String
    public let group: String
    /// The store's directory, `<root>/<topic>@<group>`.
    public let directory: String
    /// Dead bytes below this never trigger a rewrite.
    public let compactionThresholdBytes: Int64

    private let storage: any Storage
    private var file: any StorageFile
    /// Where the next record goes: the end of the last whole record.
    private var end: Int64
    /// Live messages by msgId, with their append sequence (the order of `pending()`) and size.
    private var live: [Int64: (sequence: Int, size: Int64, recovered: RecoveredMessage)] = [:]
    private var nextSequence = 0
    /// Bytes of removed messages and of tombstones.
    private var deadBytes: Int64 = 0
    /// A write or sync failed: the file's state is unknown, so nothing more is accepted (DESIGN.md §4).
    private var failed = false
    /// Byte ranges of the file skipped as damage when it was opened (empty normally).
    public private(set) var damagedRanges: [Range<Int64>] = []
    /// Where the damaged file was kept aside when it was opened, if it was.
    public private(set) var damagedCopyPath: String?

    /// The directory name of a `(topic, group)` store (§5.2).
    public static func directoryName(topic: String, group: String) -> String { "\(topic)@\(group)" }

    /// Opens (creating if needed) the store of `topic`/`group` under `root` — the file of `slot`
    /// (`fileName(slot:)`) — dropping a torn tail. The caller makes sure no other process has the
    /// same slot open (the client locks it).
    ///
    /// - Throws: `MetaNameError` when the topic or group is not a valid name (`MetaName`: they
    ///   become the directory name), a storage error, or `.io` when `recover.log` is not a
    ///   recover store file.
    public init(storage: any Storage, root: String, topic: String, group: String, slot: Int = 0,
                compactionThresholdBytes: Int64 = 1 << 20) throws {
        try MetaName.check("topic", topic)
        try MetaName.check("group", group)
        self.storage = storage
        self.topic = topic
        self.group = group
        self.directory = StoragePath.join(root, Self.directoryName(topic: topic, group: group))
        self.compactionThresholdBytes = compactionThresholdBytes
        let path = StoragePath.join(directory, Self.fileName(slot: slot))
        try storage.makeDirectory(directory)
        if storage.fileExists(path + ".tmp") { try storage.remove(path + ".tmp") }
        let opened = try Self.openFile(storage, path)
        file = opened.file
        end = opened.end
        try replay()
    }

    /// Opens the file, writing the header when it is new or its header never became durable.
    private static func openFile(_ storage: any Storage, _ path: String) throws -> (file: any StorageFile, end: Int64) {
        let file = try storage.open(path, create: true)
        let size = try file.size()
        let header = try file.read(at: 0, count: RecoverRecord.headerSize)
        if header == RecoverRecord.header() { return (file, Int64(RecoverRecord.headerSize)) }
        guard size <= Int64(RecoverRecord.headerSize) else {
            try? file.close()
            throw StorageError.io(path: path, detail: "not a recover store file (bad header)")
        }
        try file.truncate(to: 0)
        try file.write(RecoverRecord.header(), at: 0)
        try file.sync()
        try storage.syncDirectory(StoragePath.parent(of: path))
        try storage.syncDirectory(StoragePath.parent(of: StoragePath.parent(of: path)))
        return (file, Int64(RecoverRecord.headerSize))
    }

    /// Rebuilds the live set from the records, isolates damage, then makes what it read durable.
    /// The records read may be ones an earlier process wrote but failed to sync (they survive a
    /// crash in the page cache), and what the store reports — `append` then skips a message as
    /// already stored, `remove` as already removed — must survive a power loss. Syncing the old
    /// file again proves nothing after a failed fsync (Linux may have dropped the dirty pages
    /// while the cache still shows them), so a file with records is rewritten from memory to a
    /// fresh file that replaces it atomically; the torn tail goes with the rewrite.
    private func replay() throws {
        let size = try file.size()
        let bytes = try file.read(at: 0, count: Int(size))
        let scanned = RecoverRecord.scan(bytes)
        for (decoded, recordSize) in scanned.records { apply(decoded, size: Int64(recordSize)) }
        end = Int64(scanned.end)
        if !scanned.damaged.isEmpty {
            damagedRanges = scanned.damaged.map { Int64($0.lowerBound)..<Int64($0.upperBound) }
            var n = 1
            while storage.fileExists(file.path + ".damaged.\(n)") { n += 1 }
            let copy = file.path + ".damaged.\(n)"
            try storage.replaceAtomically(copy, with: bytes)
            damagedCopyPath = copy
        }
        if scanned.records.isEmpty {
            if end < size { try file.truncate(to: end) }
            try file.sync()
        } else {
            try compact()
        }
    }

    private func apply(_ decoded: RecoverRecord.Decoded, size: Int64) {
        switch decoded {
        case .message(let recovered):
            if live[recovered.message.id] != nil {
                deadBytes += size
            } else {
                live[recovered.message.id] = (nextSequence, size, recovered)
                nextSequence += 1
            }
        case .removal(let msgId):
            deadBytes += size
            if let removed = live.removeValue(forKey: msgId) { deadBytes += removed.size }
        }
    }

    /// The stored messages, oldest first.
    public func pending() -> [RecoveredMessage] {
        live.values.sorted { $0.sequence < $1.sequence }.map(\.recovered)
    }

    /// Number of stored messages.
    public var count: Int { live.count }

    /// Bytes of the file (header and records).
    public var fileSizeBytes: Int64 { end }

    /// Stores `message` (of `brokerId`-`partition` of this store's topic) durably: synced before it returns.
    /// A message already stored (same msgId, e.g. handed off again after a crash before the
    /// offset commit) is kept once.
    ///
    /// - Returns: false when the message was already stored.
    @discardableResult
    public func append(_ message: Message, brokerId: Int32 = 0, partition: Int32) throws -> Bool {
        guard live[message.id] == nil else { return false }
        let recovered = RecoveredMessage(topic: topic, group: group, brokerId: brokerId, partition: partition, message: message)
        let record = RecoverRecord.encode(recovered)
        try write(record)
        live[message.id] = (nextSequence, Int64(record.count), recovered)
        nextSequence += 1
        return true
    }

    /// Removes the message with `msgId` durably (a redelivery succeeded); compacts the file when
    /// dead records dominate.
    ///
    /// - Returns: false when no such message is stored.
    @discardableResult
    public func remove(msgId: Int64) throws -> Bool {
        guard let removed = live[msgId] else { return false }
        let record = RecoverRecord.encodeRemoval(msgId: msgId)
        try write(record)
        live[msgId] = nil
        deadBytes += removed.size + Int64(record.count)
        if deadBytes >= compactionThresholdBytes && deadBytes > end - deadBytes { try compact() }
        return true
    }

    public func close() throws {
        try file.close()
    }

    private func write(_ record: [UInt8]) throws {
        try file.appendSynced(record, end: &end, failed: &failed)
    }

    /// Rewrites the live records to a new file that atomically replaces the old one.
    private func compact() throws {
        var bytes = RecoverRecord.header()
        for entry in live.values.sorted(by: { $0.sequence < $1.sequence }) {
            bytes += RecoverRecord.encode(entry.recovered)
        }
        let path = file.path
        do {
            try file.close()
            try storage.replaceAtomically(path, with: bytes)
            file = try storage.open(path, create: false)
        } catch {
            failed = true
            throw error
        }
        end = Int64(bytes.count)
        deadBytes = 0
    }
}
