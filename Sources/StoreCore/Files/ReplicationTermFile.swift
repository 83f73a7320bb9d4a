import ProtocolCore

/// The term a broker's logs are consistent with (failover, docs/REPLICATION.md):
/// `<dataPath>/replication-term`, a `CheckedNumber`. Written when the broker starts leading a term
/// and when, following a leader, it has cut its logs back to that leader's history; read at start.
/// An unreadable file counts as none (the follower then checks its copy as a stranger would).
public enum ReplicationTermFile {
    public static let fileName = "replication-term"

    public static func load(storage: any Storage, dataPath: String) -> Int64? {
        CheckedNumber.load(storage: storage, path: StoragePath.join(dataPath, fileName))
    }

    public static func save(_ term: Int64, storage: any Storage, dataPath: String) throws(StorageError) {
        try CheckedNumber.save(term, storage: storage, directory: dataPath, name: fileName)
    }

    /// `<dataPath>/replication-copying`: 1 while a follower copies a partition again (its logs
    /// then lack what they had, so it must not take over), 0 once it has reached its leader's end
    /// everywhere. Written before the copy starts; an unreadable file counts as copying when the
    /// term file exists (the safe reading), as complete when neither does.
    public static let copyingFileName = "replication-copying"

    public static func loadCopying(storage: any Storage, dataPath: String) -> Bool {
        switch CheckedNumber.load(storage: storage, path: StoragePath.join(dataPath, copyingFileName)) {
        case .some(let value): return value != 0
        case .none: return storage.fileExists(StoragePath.join(dataPath, copyingFileName))
        }
    }

    public static func saveCopying(_ copying: Bool, storage: any Storage, dataPath: String) throws(StorageError) {
        try CheckedNumber.save(copying ? 1 : 0, storage: storage, directory: dataPath, name: copyingFileName)
    }
}
