// The storage interface: every byte StoreCore reads or writes goes through these two protocols.
// `Runtime.FileStorage` implements them on real files; `Sim.SimDisk` in memory, with power loss.
// StoreCore itself performs no syscalls (DESIGN.md §2, §4).

/// Why a storage operation failed. Implementations map their native errors onto these cases.
public enum StorageError: Error, Equatable, CustomStringConvertible {
    case notFound(path: String)
    case alreadyExists(path: String)
    case notADirectory(path: String)
    /// A read or write went wrong at the device (EIO and friends), or the handle died with its process.
    case io(path: String, detail: String)
    /// The handle was closed or belongs to a process that lost power.
    case closed(path: String)
    /// A file or directory could not be opened for want of descriptors or kernel memory
    /// (EMFILE, ENFILE, ENOMEM on open): nothing was done to it, so trying again later can
    /// succeed — unlike a failed write or sync, which is final (DESIGN.md §4).
    case exhausted(path: String, detail: String)

    /// Whether the operation never touched the data and may simply be tried again later.
    public var isRetryable: Bool {
        if case .exhausted = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .notFound(let path): return "no such file or directory: \(path)"
        case .alreadyExists(let path): return "already exists: \(path)"
        case .notADirectory(let path): return "not a directory: \(path)"
        case .io(let path, let detail): return "I/O error on \(path): \(detail)"
        case .closed(let path): return "file handle closed: \(path)"
        case .exhausted(let path, let detail): return "cannot open \(path) now: \(detail)"
        }
    }
}

/// An open file. Offsets are absolute byte positions in the file (pread/pwrite style).
public protocol StorageFile: AnyObject {
    /// The path the file was opened with.
    var path: String { get }
    /// Current size in bytes, including writes that are not yet synced.
    func size() throws -> Int64
    /// Writes all of `bytes` at `offset` (extending the file when needed).
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws
    /// Reads up to `count` bytes at `offset`; fewer only at end of file.
    func read(at offset: Int64, count: Int) throws -> [UInt8]
    /// Calls `body` with the bytes of `offset ..< offset+count`, clamped at end of file (the
    /// buffer's count says how many there were), mapped read-only where the implementation can;
    /// the pointer is valid only inside `body`.
    func withBytes<R>(at offset: Int64, count: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R
    /// Makes every write so far durable (fdatasync). A failure is final for the data (DESIGN.md §4).
    func sync() throws
    /// Cuts or extends the file to `size` bytes. Not durable until `sync()`.
    func truncate(to size: Int64) throws
    func close() throws
}

/// A file system: directories of files, with explicit durability of directory entries.
public protocol Storage: AnyObject {
    /// Opens an existing file, or creates it when `create` is true. A created entry is durable
    /// only after `syncDirectory` of its parent.
    func open(_ path: String, create: Bool) throws -> any StorageFile
    /// Names (not paths) in `directory`, in no particular order.
    func list(_ directory: String) throws -> [String]
    func fileExists(_ path: String) -> Bool
    func isDirectory(_ path: String) -> Bool
    /// Creates `path` and any missing parents; succeeds if it already exists.
    func makeDirectory(_ path: String) throws
    func rename(_ from: String, to: String) throws
    func remove(_ path: String) throws
    /// Makes the directory's entries (creates, renames, removes) durable.
    func syncDirectory(_ path: String) throws
    /// Last modification time in milliseconds since the Unix epoch (retention by age, §2.7).
    func modificationTimeMs(_ path: String) throws -> Int64
}

extension StorageFile {
    /// Writes all of `bytes` at `offset`.
    public func write(_ bytes: [UInt8], at offset: Int64) throws {
        try bytes.withUnsafeBytes { try write($0, at: offset) }
    }
}

extension Storage {
    /// Replaces the file at `path` with `bytes` so that a crash or power loss leaves either the old
    /// content or the new, never a mix: temporary file, sync, rename, directory sync.
    ///
    /// When writing or renaming the temporary file fails, it is removed (best effort: on a failing
    /// disk the removal may fail too), so a failed save leaves no `<name>.tmp` behind.
    public func replaceAtomically(_ path: String, with bytes: [UInt8]) throws {
        let temporary = path + ".tmp"
        let file = try open(temporary, create: true)
        do {
            try file.truncate(to: 0)
            try file.write(bytes, at: 0)
            try file.sync()
        } catch {
            try? file.close()
            try? remove(temporary)
            throw error
        }
        do {
            try file.close()
            try rename(temporary, to: path)
        } catch {
            try? remove(temporary)
            throw error
        }
        try syncDirectory(StoragePath.parent(of: path))
    }
}

/// Path helpers (POSIX separators; StoreCore builds every path through these).
public enum StoragePath {
    public static func join(_ directory: String, _ name: String) -> String {
        if directory.isEmpty { return name }
        return directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    public static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    public static func lastComponent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}
