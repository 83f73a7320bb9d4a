import CZooKeeper
import ProtocolCore

/// Translations between the C library's numbers and the coordination values (reference §3).
enum ZooKeeperCodes {
    /// The error for a C return code other than ZOK. `ZINVALIDSTATE` is what calls on an expired
    /// handle return (toolchain.md §2), and `ZCLOSING` what the requests still queued in a handle
    /// get when it is closed: for the caller both mean the session is gone.
    static func error(_ rc: Int32) -> CoordinationError {
        switch rc {
        case ZNONODE.rawValue: return .noNode
        case ZNODEEXISTS.rawValue: return .nodeExists
        case ZNOTEMPTY.rawValue: return .notEmpty
        case ZCONNECTIONLOSS.rawValue: return .connectionLoss
        case ZSESSIONEXPIRED.rawValue, ZINVALIDSTATE.rawValue, ZCLOSING.rawValue: return .sessionExpired
        case ZOPERATIONTIMEOUT.rawValue: return .operationTimeout
        case ZBADVERSION.rawValue: return .badVersion
        default: return .other(code: rc, message: String(cString: zerror(rc)))
        }
    }

    /// The `zoo_acreate` flags of a create mode.
    static func flags(_ mode: CreateMode) -> Int32 {
        switch mode {
        case .persistent: return ZOO_PERSISTENT
        case .ephemeral: return ZOO_EPHEMERAL
        case .persistentSequential: return ZOO_PERSISTENT_SEQUENTIAL
        case .ephemeralSequential: return ZOO_EPHEMERAL_SEQUENTIAL
        }
    }

    /// The watch notification of a non-session watcher event; nil for the ones MetaQ does not
    /// act on (`ZOO_NOTWATCHING_EVENT`, sent when a watch is removed).
    static func watchEvent(type: Int32, path: String) -> WatchEvent? {
        switch type {
        case ZOO_CREATED_EVENT: return .created(path: path)
        case ZOO_DELETED_EVENT: return .deleted(path: path)
        case ZOO_CHANGED_EVENT: return .dataChanged(path: path)
        case ZOO_CHILD_EVENT: return .childrenChanged(path: path)
        default: return nil
        }
    }

    /// A readable name of a session state, for log lines.
    static func stateName(_ state: Int32) -> String {
        switch state {
        case ZOO_CONNECTED_STATE: return "connected"
        case ZOO_CONNECTING_STATE: return "connecting"
        case ZOO_ASSOCIATING_STATE: return "associating"
        case ZOO_EXPIRED_SESSION_STATE: return "expired"
        case ZOO_AUTH_FAILED_STATE: return "auth-failed"
        case ZOO_READONLY_STATE: return "read-only"
        case ZOO_NOTCONNECTED_STATE: return "not-connected"
        default: return "state \(state)"
        }
    }

    /// A session id as ZooKeeper's own logs and four-letter words print it.
    static func hex(_ sessionId: Int64) -> String {
        "0x" + String(UInt64(bitPattern: sessionId), radix: 16)
    }
}
