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
}
