/// The coordination service as the machines see it: ZooKeeper's data model (reference §3) reduced
/// to the operations MetaQ uses, as values. A machine never calls ZooKeeper; it returns
/// `CoordinationRequest`s with a tag, and the driver hands them to a `Coordination` (the C client
/// in Runtime, the in-memory ZooKeeper in Sim). Replies, watch notifications and session changes
/// come back as `CoordinationEvent`s.

/// How a znode is created (ZooKeeper's create modes).
public enum CreateMode: Equatable, Hashable, Sendable {
    case persistent
    /// Removed when the creating session ends (expires or closes).
    case ephemeral
    /// The server appends a 10-digit, zero-padded counter of the parent to the name.
    case persistentSequential
    case ephemeralSequential

    public var isEphemeral: Bool { self == .ephemeral || self == .ephemeralSequential }
    public var isSequential: Bool { self == .persistentSequential || self == .ephemeralSequential }
}

/// Why a request failed. The first six are ZooKeeper's codes the machines act on.
public enum CoordinationError: Error, Equatable, Hashable, Sendable {
    /// ZNONODE: the node (or, for a create, its parent) does not exist.
    case noNode
    /// ZNODEEXISTS.
    case nodeExists
    /// ZNOTEMPTY: a delete of a node with children.
    case notEmpty
    /// ZCONNECTIONLOSS: the outcome is unknown; the session may still be alive.
    case connectionLoss
    /// ZSESSIONEXPIRED (or the handle is already in the expired/closed state): ephemeral nodes of
    /// this session are gone; a new session is needed.
    case sessionExpired
    /// ZOPERATIONTIMEOUT.
    case operationTimeout
    /// ZBADVERSION: a `setDataAtVersion` whose expected version is not the node's (someone else
    /// changed it since it was read).
    case badVersion
    /// Any other return code, with the client library's text.
    case other(code: Int32, message: String)
}

/// One operation. Versions are not used by MetaQ's own nodes: deletes and sets apply to any
/// version. The fencing term of failover (docs/REPLICATION.md, "Failover") needs a compare-and-set:
/// `getVersionedData` and `setDataAtVersion`.
public enum CoordinationRequest: Equatable, Hashable, Sendable {
    /// `data` nil creates a node without data (ZooKeeper's null, not an empty array): what MetaQ's
    /// clients and brokers give the persistent parents they create on the way (zkclient's
    /// `createPersistent(path, true)`, reference §3.1), and what a reader of such a node gets back.
    case create(path: String, data: [UInt8]?, mode: CreateMode)
    case delete(path: String)
    case setData(path: String, data: [UInt8])
    /// With `watch`, one `.dataChanged` or `.deleted` notification for the path follows a change.
    case getData(path: String, watch: Bool)
    /// Like `getData`, answered with `.versionedData` (the node's data version, ZooKeeper's
    /// `Stat.version`: 0 at creation, one more at each set).
    case getVersionedData(path: String, watch: Bool)
    /// Sets the data only if the node's version is still `version`; else `.failed(.badVersion)`.
    case setDataAtVersion(path: String, data: [UInt8], version: Int32)
    /// With `watch`, one `.childrenChanged` (or `.deleted`) notification follows a change.
    case getChildren(path: String, watch: Bool)
    /// With `watch`, one `.created`, `.dataChanged` or `.deleted` notification follows.
    case exists(path: String, watch: Bool)

    /// The path the request is about.
    public var path: String {
        switch self {
        case .create(let path, _, _), .delete(let path), .setData(let path, _),
             .getData(let path, _), .getChildren(let path, _), .exists(let path, _),
             .getVersionedData(let path, _), .setDataAtVersion(let path, _, _):
            return path
        }
    }
}

/// The answer to one request.
public enum CoordinationReply: Equatable, Hashable, Sendable {
    /// The created node's path (with the counter for sequential nodes).
    case created(path: String)
    case deleted
    case dataSet
    /// The node's data; nil when it has none (created with nil data), which is not the same as
    /// empty data.
    case data([UInt8]?)
    /// The answer to `getVersionedData`: the data and its version.
    case versionedData([UInt8]?, version: Int32)
    /// Child names (not paths), in the order the server gave them: sort before deciding anything.
    case children([String])
    case exists(Bool)
    case failed(CoordinationError)
}

/// The state of the session, as ZooKeeper's session watcher reports it.
public enum SessionState: Equatable, Hashable, Sendable {
    /// Connected (first time, or again within the session timeout: ephemeral nodes and
    /// outstanding watches are intact).
    case connected
    /// Disconnected, trying to reconnect; the session may still be alive.
    case connecting
    /// The session is gone: its ephemeral nodes are deleted, its watches will not fire. The
    /// owner must open a new session and re-create what it needs.
    case expired
}

/// A one-shot watch firing: one notification per change of a watched path and kind, however many
/// reads set the watch (ZooKeeper's default watcher); set it again by reading again.
public enum WatchEvent: Equatable, Hashable, Sendable {
    case created(path: String)
    case deleted(path: String)
    case dataChanged(path: String)
    case childrenChanged(path: String)

    public var path: String {
        switch self {
        case .created(let p), .deleted(let p), .dataChanged(let p), .childrenChanged(let p): return p
        }
    }
}

/// What a coordination service tells its owner.
public enum CoordinationEvent: Equatable, Hashable, Sendable {
    /// The reply to the request submitted with `tag`; exactly one per request, in submission order
    /// per session (ZooKeeper answers a session's requests in order).
    case reply(tag: UInt64, CoordinationReply)
    case watch(WatchEvent)
    case session(SessionState)
}

/// A ZooKeeper session that accepts requests without blocking. Replies, watches and session
/// changes go to the sink the implementation was created with, possibly on another thread;
/// the driver moves them to the owner of the machines.
public protocol Coordination: AnyObject, Sendable {
    /// Starts `request`; its outcome arrives as `.reply(tag:…)`. After expiry every request fails
    /// with `.sessionExpired`.
    func submit(_ request: CoordinationRequest, tag: UInt64)
}
