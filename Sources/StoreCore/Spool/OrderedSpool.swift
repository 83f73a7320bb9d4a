import ProtocolCore

/// The local store of an ordered producer (reference §5.6, the original's
/// `LocalMessageStorageManager`): one `SpoolStore` per lane, each in its own directory under a
/// root (the client's default is `~/.meta_ordered`):
///
///     <root>/<topic>@<brokerId>-<partition>/spool.log
///
/// Opening the root opens every lane directory in it, so messages an earlier process spooled are
/// found again (`lanes`); other lanes are created on their first `append`. One producer (process)
/// per root: two writers on one file would corrupt it.
public final class OrderedSpool {
    public let root: String
    public let compactionThresholdBytes: Int64
    private let storage: any Storage
    private var stores: [OrderedLane: SpoolStore] = [:]

    /// The directory name of a lane: `<topic>@<brokerId>-<partition>`.
    public static func directoryName(_ lane: OrderedLane) -> String { "\(lane.topic)@\(lane.partition)" }

    /// The lane a directory name stands for; nil for any other name.
    public static func lane(directoryName name: String) -> OrderedLane? {
        guard let at = name.lastIndex(of: "@"), let partition = BrokerPartition(String(name[name.index(after: at)...])) else {
            return nil
        }
        let topic = String(name[..<at])
        return topic.isEmpty ? nil : OrderedLane(topic: topic, partition: partition)
    }

    /// Opens (creating) `root` and the lane stores in it.
    public init(storage: any Storage, root: String, compactionThresholdBytes: Int64 = 1 << 20) throws {
        self.storage = storage
        self.root = root
        self.compactionThresholdBytes = compactionThresholdBytes
        try storage.makeDirectory(root)
        // The root's own entry must be durable before a message in it is reported spooled.
        try storage.syncDirectory(StoragePath.parent(of: root))
        for name in try storage.list(root).sorted() {
            let directory = StoragePath.join(root, name)
            guard let lane = Self.lane(directoryName: name), storage.isDirectory(directory),
                  storage.fileExists(StoragePath.join(directory, SpoolStore.fileName)) else { continue }
            stores[lane] = try SpoolStore(storage: storage, directory: directory,
                                          compactionThresholdBytes: compactionThresholdBytes)
        }
    }

    /// The lanes holding messages and how many, sorted: what an earlier process left to replay.
    public var lanes: [(lane: OrderedLane, count: Int)] {
        stores.filter { $0.value.count > 0 }.map { ($0.key, $0.value.count) }.sorted { $0.lane < $1.lane }
    }

    /// Messages spooled for `lane`.
    public func depth(of lane: OrderedLane) -> Int { stores[lane]?.count ?? 0 }

    /// Appends a message to `lane`'s spool, synced before it returns; its sequence.
    ///
    /// - Throws: `MetaNameError` for a new lane whose topic is not a valid name, or a storage error.
    @discardableResult
    public func append(_ lane: OrderedLane, flag: Int32, payload: [UInt8]) throws -> UInt64 {
        try store(lane).append(flag: flag, payload: payload)
    }

    /// Up to `max` of `lane`'s oldest messages.
    public func head(_ lane: OrderedLane, max: Int) throws -> [SpooledMessage] {
        try stores[lane]?.head(max: max) ?? []
    }

    /// Removes `lane`'s messages up to `sequence`, durably.
    @discardableResult
    public func removeHead(_ lane: OrderedLane, through sequence: UInt64) throws -> Int {
        try stores[lane]?.removeHead(through: sequence) ?? 0
    }

    public func close() throws {
        for lane in stores.keys.sorted() { try stores[lane]?.close() }
        stores = [:]
    }

    private func store(_ lane: OrderedLane) throws -> SpoolStore {
        if let store = stores[lane] { return store }
        // Lanes found at open are kept whatever their name (their messages must not be lost);
        // a new one becomes a directory only under a valid name.
        try MetaName.check("topic", lane.topic)
        let store = try SpoolStore(storage: storage, directory: StoragePath.join(root, Self.directoryName(lane)),
                                   compactionThresholdBytes: compactionThresholdBytes)
        stores[lane] = store
        return store
    }
}
