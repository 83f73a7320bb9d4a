// An in-memory file system that knows, for every file and directory entry, what is durable, and
// can lose power (FoundationDB's non-durable file is the model). It never touches the real disk.
import StoreCore

/// A simulated disk implementing `Storage`.
///
/// Durability model:
/// - A file's bytes become durable at `sync()` of a handle on it; writes and truncates only change
///   what reads see.
/// - A file's directory entry (create, rename, remove) becomes durable at `syncDirectory` of its
///   parent directory.
/// - Directories themselves are simpler: `makeDirectory`, and `remove`/`rename` of a directory, are
///   durable at once. Real file systems need a sync of the parent for that too, but the store only
///   creates its directories at startup, so modelling it would add states nobody tests.
///
/// `powerLoss(using:)` resolves every unsynced change at random; `crash()` only kills handles.
/// Paths are POSIX strings; relative paths are taken from `/`. The class is used from one thread
/// at a time (the simulator's), so it has no locks and is not `Sendable`.
public final class SimDisk: Storage {
    /// The time stamped on files and directories as they change (set by the simulator's clock).
    public var nowMs: Int64 = 0
    /// When true, the next `sync()` on any handle throws `StorageError.io` and makes nothing
    /// durable (as after an fsync EIO); the flag then resets.
    public var failNextSync = false
    /// When set, the next `syncDirectory` throws this error without syncing anything (e.g.
    /// `.exhausted`: the directory could not be opened for want of descriptors); then it resets.
    public var failNextDirectorySync: StorageError?
    /// When set, the next write on any handle stores only `writtenPrefix` of its bytes and then
    /// throws `StorageError.io` with `detail` (a pwrite that hit EIO or a full disk); then it resets.
    public var failNextWrite: (detail: String, writtenPrefix: Int)?
    /// Writes or truncates past this size throw `StorageError.io` (EFBIG) instead of exhausting
    /// memory when a bug computes a wild offset.
    public var maxFileSizeBytes = 1 << 32
    /// How `powerLoss(using:)` chooses between unsynced and durable states.
    public var powerLossPolicy: PowerLossPolicy
    /// What the fault injection has done so far.
    public internal(set) var stats = SimDiskStats()

    let root: SimDirectory
    /// Bumped by every crash and power loss; a handle from an older epoch is dead.
    private(set) var epoch = 0
    private var nextInodeID = 0

    /// Creates an empty disk holding only `/`.
    public init(powerLossPolicy: PowerLossPolicy = PowerLossPolicy()) {
        self.powerLossPolicy = powerLossPolicy
        root = SimDirectory(modificationTimeMs: 0)
    }

    /// A process crash without power loss: open handles die, but the page cache (all current data
    /// and entries) survives.
    public func crash() {
        epoch += 1
        stats.crashes += 1
    }

    func killHandles() {
        epoch += 1
    }

    // MARK: Storage

    public func open(_ path: String, create: Bool) throws -> any StorageFile {
        let (directory, name) = try parentAndName(of: path)
        switch directory.current[name] {
        case .file(let inode)?:
            return SimFileHandle(path: path, inode: inode, disk: self)
        case .directory?:
            throw StorageError.io(path: path, detail: "is a directory")
        case nil:
            guard create else { throw StorageError.notFound(path: path) }
            let inode = SimInode(id: nextInodeID, modificationTimeMs: nowMs)
            nextInodeID += 1
            directory.current[name] = .file(inode)
            directory.modificationTimeMs = nowMs
            return SimFileHandle(path: path, inode: inode, disk: self)
        }
    }

    /// Names in `directory`, sorted (so callers that forget to sort stay deterministic).
    public func list(_ directory: String) throws -> [String] {
        try directoryNode(directory).current.keys.sorted()
    }

    /// True for files and directories alike.
    public func fileExists(_ path: String) -> Bool {
        node(at: path) != nil
    }

    public func isDirectory(_ path: String) -> Bool {
        if case .directory? = node(at: path) { return true }
        return false
    }

    public func makeDirectory(_ path: String) throws {
        var directory = root
        var walked: [String] = []
        let names = Self.components(of: path)
        for (index, name) in names.enumerated() {
            walked.append(name)
            switch directory.current[name] {
            case .directory(let child)?:
                directory = child
            case .file?:
                if index == names.count - 1 { throw StorageError.alreadyExists(path: path) }
                throw StorageError.notADirectory(path: Self.path(of: walked))
            case nil:
                let child = SimDirectory(modificationTimeMs: nowMs)
                directory.bindDurably(name, to: .directory(child))
                directory.modificationTimeMs = nowMs
                directory = child
            }
        }
    }

    public func rename(_ from: String, to: String) throws {
        let (fromDirectory, fromName) = try parentAndName(of: from)
        guard let moving = fromDirectory.current[fromName] else { throw StorageError.notFound(path: from) }
        let (toDirectory, toName) = try parentAndName(of: to)
        let existing = toDirectory.current[toName]
        if SimNode.same(existing, moving) { return }
        if case .directory? = existing { throw StorageError.alreadyExists(path: to) }
        if case .directory = moving {
            if existing != nil { throw StorageError.alreadyExists(path: to) }
            let fromNames = Self.components(of: from)
            if Array(Self.components(of: to).prefix(fromNames.count)) == fromNames {
                throw StorageError.io(path: to, detail: "cannot move a directory into itself")
            }
            fromDirectory.bindDurably(fromName, to: nil)
            toDirectory.bindDurably(toName, to: moving)
        } else {
            fromDirectory.current[fromName] = nil
            toDirectory.current[toName] = moving
        }
        fromDirectory.modificationTimeMs = nowMs
        toDirectory.modificationTimeMs = nowMs
    }

    public func remove(_ path: String) throws {
        let (directory, name) = try parentAndName(of: path)
        switch directory.current[name] {
        case nil:
            throw StorageError.notFound(path: path)
        case .file?:
            directory.current[name] = nil
        case .directory(let child)?:
            guard child.current.isEmpty else {
                throw StorageError.io(path: path, detail: "directory not empty")
            }
            directory.bindDurably(name, to: nil)
        }
        directory.modificationTimeMs = nowMs
    }

    public func syncDirectory(_ path: String) throws {
        if let failure = failNextDirectorySync {
            failNextDirectorySync = nil
            throw failure
        }
        let directory = try directoryNode(path)
        directory.durable = directory.current
    }

    public func modificationTimeMs(_ path: String) throws -> Int64 {
        switch node(at: path) {
        case .file(let inode)?: return inode.modificationTimeMs
        case .directory(let directory)?: return directory.modificationTimeMs
        case nil: throw StorageError.notFound(path: path)
        }
    }

    // MARK: Paths

    /// Path components, with empty and `.` components dropped and `..` applied.
    static func components(of path: String) -> [String] {
        var names: [String] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..": _ = names.popLast()
            default: names.append(String(part))
            }
        }
        return names
    }

    static func path(of names: [String]) -> String {
        "/" + names.joined(separator: "/")
    }

    func node(at path: String) -> SimNode? {
        var node = SimNode.directory(root)
        for name in Self.components(of: path) {
            guard case .directory(let directory) = node, let child = directory.current[name] else { return nil }
            node = child
        }
        return node
    }

    private func directoryNode(_ path: String) throws -> SimDirectory {
        switch node(at: path) {
        case .directory(let directory)?: return directory
        case .file?: throw StorageError.notADirectory(path: path)
        case nil: throw StorageError.notFound(path: path)
        }
    }

    /// The existing parent directory of `path` and the last component (which may not exist yet).
    private func parentAndName(of path: String) throws -> (SimDirectory, String) {
        var names = Self.components(of: path)
        guard let name = names.popLast() else {
            throw StorageError.io(path: path, detail: "the root directory cannot be used as a file")
        }
        let parent = try directoryNode(Self.path(of: names))
        return (parent, name)
    }
}

/// What a directory entry points at. Compared by identity, never by content.
enum SimNode {
    case file(SimInode)
    case directory(SimDirectory)

    static func same(_ a: SimNode?, _ b: SimNode?) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case (.file(let x)?, .file(let y)?): return x === y
        case (.directory(let x)?, .directory(let y)?): return x === y
        default: return false
        }
    }
}

/// A directory: the entries reads see, and the entries its last `syncDirectory` made durable.
final class SimDirectory {
    var current: [String: SimNode] = [:]
    var durable: [String: SimNode] = [:]
    var modificationTimeMs: Int64

    init(modificationTimeMs: Int64) {
        self.modificationTimeMs = modificationTimeMs
    }

    /// Changes an entry in both views: directory entries are durable at once (see `SimDisk`).
    func bindDurably(_ name: String, to node: SimNode?) {
        current[name] = node
        durable[name] = node
    }
}
