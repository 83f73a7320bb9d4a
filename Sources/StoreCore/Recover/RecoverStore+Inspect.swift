import ProtocolCore

/// What a recover store directory holds, read without writing (for `metaq recover`).
public struct RecoverStoreContents: Equatable, Sendable {
    public var topic: String
    public var group: String
    /// The `recover.log` file read.
    public var path: String
    /// The stored messages, oldest first.
    public var pending: [RecoveredMessage]
    /// Bytes after the last whole record: a torn tail the next writer cuts, or damage (§5.2 store).
    public var unreadableTailBytes: Int64
    /// Bytes between records that are not records (damage the next writer sets aside).
    public var damagedBytes: Int64
}

extension RecoverStore {
    /// Reads every store file (`<topic>@<group>/recover.log`, `recover.<n>.log`: one per consumer
    /// process) under `root` without changing anything, so it is safe while consumers have them
    /// open (they may append meanwhile: the listing is a snapshot). Sorted by topic, group, then
    /// slot; a missing `root` has none.
    ///
    /// - Throws: a storage error, or `.io` for a `recover.log` that is not a recover store file.
    public static func inspect(storage: any Storage, root: String) throws -> [RecoverStoreContents] {
        guard storage.isDirectory(root) else { return [] }
        var stores: [RecoverStoreContents] = []
        for name in try storage.list(root).sorted() {
            guard let at = name.lastIndex(of: "@") else { continue }
            let directory = StoragePath.join(root, name)
            guard storage.isDirectory(directory) else { continue }
            let files = try storage.list(directory).compactMap { file in slot(ofFileName: file).map { (slot: $0, name: file) } }
            for file in files.sorted(by: { $0.slot < $1.slot }) {
                var contents = try read(storage: storage, path: StoragePath.join(directory, file.name))
                // Names may hold '@', so the records say best which topic and group it is; an empty
                // store is named by the directory, split at its last '@'.
                contents.topic = contents.pending.first?.topic ?? String(name[..<at])
                contents.group = contents.pending.first?.group ?? String(name[name.index(after: at)...])
                stores.append(contents)
            }
        }
        // Stable: a directory's files keep their slot order.
        return stores.enumerated().sorted { ($0.element.topic, $0.element.group, $0.offset) < ($1.element.topic, $1.element.group, $1.offset) }
            .map(\.element)
    }

    /// The live messages of one `recover.log`, replayed as opening the store would, without
    /// cutting anything.
    static func read(storage: any Storage, path: String) throws -> RecoverStoreContents {
        let file = try storage.open(path, create: false)
        defer { try? file.close() }
        let size = try file.size()
        let bytes = try file.read(at: 0, count: Int(size))
        guard bytes.count >= RecoverRecord.headerSize, Array(bytes[0..<RecoverRecord.headerSize]) == RecoverRecord.header() else {
            guard bytes.count <= RecoverRecord.headerSize else {
                throw StorageError.io(path: path, detail: "not a recover store file (bad header)")
            }
            return RecoverStoreContents(topic: "", group: "", path: path, pending: [], unreadableTailBytes: 0, damagedBytes: 0)
        }
        var live: [Int64: (sequence: Int, recovered: RecoveredMessage)] = [:]
        var sequence = 0
        let scanned = RecoverRecord.scan(bytes)
        for (decoded, _) in scanned.records {
            switch decoded {
            case .message(let recovered) where live[recovered.message.id] == nil:
                live[recovered.message.id] = (sequence, recovered)
                sequence += 1
            case .message:
                break
            case .removal(let msgId):
                live[msgId] = nil
            }
        }
        let pending = live.values.sorted { $0.sequence < $1.sequence }.map(\.recovered)
        return RecoverStoreContents(topic: "", group: "", path: path, pending: pending,
                                    unreadableTailBytes: Int64(bytes.count - scanned.end),
                                    damagedBytes: Int64(scanned.damaged.reduce(0) { $0 + $1.count }))
    }
}
