// `Storage` on the real Linux file system: swift-system's FileDescriptor for open/pread/pwrite/
// ftruncate/close, Glibc for what swift-system 1.8.1 lacks (fdatasync, fsync, mmap, stat, readdir).
// No Foundation: this is the broker's hot I/O path and Foundation adds nothing it needs.
import Glibc
import StoreCore
import Synchronization
import SystemPackage

/// The local file system as `Storage`.
///
/// Stateless: every call goes straight to the kernel, so one instance may be shared by any number
/// of threads. Paths are used as given (relative paths resolve against the process's working
/// directory).
public final class FileStorage: Storage, Sendable {
    /// Permissions of created files (before the umask), as MetaQ's Java broker leaves them.
    static let filePermissions = FilePermissions(rawValue: 0o644)
    /// Permissions of created directories (before the umask).
    static let directoryMode: mode_t = 0o755

    public init() {}

    public func open(_ path: String, create: Bool) throws -> any StorageFile {
        try openFile(path, create: create)
    }

    /// Opens `path` read-write like `open(_:create:)`, returning the concrete type (for callers
    /// that need the descriptor, e.g. for `sendfile`).
    public func openFile(_ path: String, create: Bool) throws -> RealFile {
        var options: FileDescriptor.OpenOptions = [.closeOnExec]
        if create { options.insert(.create) }
        let descriptor = try SystemErrors.mapping("open", path: path) {
            try FileDescriptor.open(
                path, .readWrite, options: options, permissions: create ? Self.filePermissions : nil)
        }
        return RealFile(path: path, descriptor: descriptor)
    }

    public func list(_ directory: String) throws -> [String] {
        guard let stream = opendir(directory) else {
            throw SystemErrors.lastError(syscall: "opendir", path: directory)
        }
        defer { closedir(stream) }
        var names: [String] = []
        while true {
            // readdir returns nil both at the end and on error; only errno tells them apart.
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw SystemErrors.lastError(syscall: "readdir", path: directory) }
                return names
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
    }

    public func fileExists(_ path: String) -> Bool {
        (try? status(path)) != nil
    }

    public func isDirectory(_ path: String) -> Bool {
        guard let info = try? status(path) else { return false }
        return info.st_mode & S_IFMT == S_IFDIR
    }

    public func makeDirectory(_ path: String) throws {
        let result = SystemErrors.retryingOnInterrupt { mkdir(path, Self.directoryMode) }
        if result == 0 { return }
        let code = errno
        switch code {
        case EEXIST:
            // Also what a concurrent creator of the same directory causes: fine if it is one.
            guard isDirectory(path) else { throw StorageError.alreadyExists(path: path) }
        case ENOENT:
            let parent = StoragePath.parent(of: path)
            guard parent != path else { throw StorageError.notFound(path: path) }
            try makeDirectory(parent)
            guard SystemErrors.retryingOnInterrupt({ mkdir(path, Self.directoryMode) }) != 0 else { return }
            let again = errno
            guard again == EEXIST && isDirectory(path) else {
                throw SystemErrors.storageError(again, syscall: "mkdir", path: path)
            }
        default:
            throw SystemErrors.storageError(code, syscall: "mkdir", path: path)
        }
    }

    public func rename(_ from: String, to: String) throws {
        guard SystemErrors.retryingOnInterrupt({ Glibc.rename(from, to) }) == 0 else {
            let code = errno
            // The missing/existing path is usually `from`; name both where the detail allows.
            switch code {
            case ENOENT, ENOTDIR, EEXIST:
                throw SystemErrors.storageError(code, syscall: "rename", path: from)
            default:
                throw SystemErrors.storageError(code, syscall: "rename to \(to)", path: from)
            }
        }
    }

    public func remove(_ path: String) throws {
        if SystemErrors.retryingOnInterrupt({ unlink(path) }) == 0 { return }
        // Linux's unlink refuses directories with EISDIR (POSIX allows EPERM); those need rmdir.
        guard errno == EISDIR else { throw SystemErrors.lastError(syscall: "unlink", path: path) }
        guard SystemErrors.retryingOnInterrupt({ rmdir(path) }) == 0 else {
            throw SystemErrors.lastError(syscall: "rmdir", path: path)
        }
    }

    public func syncDirectory(_ path: String) throws {
        let directory = try SystemErrors.mapping("open", path: path) {
            try FileDescriptor.open(path, .readOnly, options: [.directory, .closeOnExec])
        }
        // Not retried, even on EINTR: a failed fsync may already have dropped the error state
        // (DESIGN.md §4), so the caller must treat it as final.
        let result = fsync(directory.rawValue)
        let code = errno
        try? directory.close()
        if result != 0 { throw SystemErrors.storageError(code, syscall: "fsync", path: path) }
    }

    public func modificationTimeMs(_ path: String) throws -> Int64 {
        let time = try status(path).st_mtim
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }

    /// `stat(2)` of `path`, following symbolic links.
    private func status(_ path: String) throws -> stat {
        var info = stat()
        guard SystemErrors.retryingOnInterrupt({ stat(path, &info) }) == 0 else {
            throw SystemErrors.lastError(syscall: "stat", path: path)
        }
        return info
    }
}

/// An open file of `FileStorage`.
///
/// Safe to share between threads: it holds only the immutable path and descriptor number plus an
/// atomic "closed" flag, and pread/pwrite/fdatasync/fstat/mmap on one descriptor are thread-safe
/// in the kernel. All stored properties are Sendable, so the conformance is checked rather than
/// `@unchecked`: the descriptor is kept as a raw `CInt` because swift-system 1.8.1's
/// `FileDescriptor` is not Sendable.
///
/// Ownership rule the type cannot check: `close()` belongs to the owner and must come after every
/// other thread is done with the file. A call racing with `close()` may see the flag still open
/// and then use a descriptor number the kernel has already handed to another file.
public final class RealFile: StorageFile, Sendable {
    public let path: String
    private let rawDescriptor: CInt
    private let closed = Atomic<Bool>(false)

    /// The page size, for aligning `mmap` offsets.
    private static let pageSize: Int64 = {
        let size = sysconf(Int32(_SC_PAGESIZE))
        return size > 0 ? Int64(size) : 4096
    }()

    init(path: String, descriptor: FileDescriptor) {
        self.path = path
        self.rawDescriptor = descriptor.rawValue
    }

    deinit {
        // A leaked handle would leak the descriptor; closing here is the only safe cleanup left.
        if !closed.load(ordering: .acquiring) { try? descriptor.close() }
    }

    /// The underlying descriptor; valid until `close()`.
    public var descriptor: FileDescriptor { FileDescriptor(rawValue: rawDescriptor) }

    public func size() throws -> Int64 {
        try requireOpen()
        var info = stat()
        guard SystemErrors.retryingOnInterrupt({ fstat(rawDescriptor, &info) }) == 0 else {
            throw SystemErrors.lastError(syscall: "fstat", path: path)
        }
        return Int64(info.st_size)
    }

    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        try requireOpen()
        try validate(offset: offset, count: bytes.count, syscall: "pwrite")
        // writeAll loops over short writes and retries EINTR.
        _ = try SystemErrors.mapping("pwrite", path: path) {
            try descriptor.writeAll(toAbsoluteOffset: offset, bytes)
        }
    }

    public func read(at offset: Int64, count: Int) throws -> [UInt8] {
        try requireOpen()
        try validate(offset: offset, count: count, syscall: "pread")
        // Never allocate more than the file holds: a huge `count` must not trap on allocation.
        let wanted = Int(max(0, min(Int64(count), try size() - offset)))
        guard wanted > 0 else { return [] }
        return try [UInt8](unsafeUninitializedCapacity: wanted) { buffer, initialized in
            initialized = try read(into: UnsafeMutableRawBufferPointer(buffer), at: offset)
        }
    }

    /// Fills `buffer` from `offset`, looping over short reads; returns fewer bytes only at EOF.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        try requireOpen()
        try validate(offset: offset, count: buffer.count, syscall: "pread")
        var done = 0
        while done < buffer.count {
            let count = try SystemErrors.mapping("pread", path: path) {
                try descriptor.read(
                    fromAbsoluteOffset: offset + Int64(done),
                    into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
            }
            if count == 0 { break }
            done += count
        }
        return done
    }

    public func withBytes<R>(
        at offset: Int64, count: Int, _ body: (UnsafeRawBufferPointer) throws -> R
    ) throws -> R {
        try requireOpen()
        try validate(offset: offset, count: count, syscall: "mmap")
        // Mapping past EOF would map pages whose access raises SIGBUS: clamp to the current size.
        // (A concurrent truncate below the range can still do that; nobody truncates live data.)
        let end = min(offset + Int64(count), try size())
        guard end > offset else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        // mmap wants a page-aligned file offset; map from the page start and skip the slack.
        let mapStart = offset - offset % Self.pageSize
        let length = Int(end - mapStart)
        let mapped = mmap(nil, length, PROT_READ, MAP_SHARED, rawDescriptor, off_t(mapStart))
        guard let mapped, mapped != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw SystemErrors.lastError(syscall: "mmap", path: path)
        }
        defer { munmap(mapped, length) }
        let slack = Int(offset - mapStart)
        return try body(UnsafeRawBufferPointer(start: mapped + slack, count: Int(end - offset)))
    }

    public func sync() throws {
        try requireOpen()
        // Never retried, not even on EINTR: after a failed fdatasync the kernel may have marked
        // the dirty pages clean, so a second call could succeed without the data being safe.
        guard fdatasync(rawDescriptor) == 0 else {
            throw SystemErrors.lastError(syscall: "fdatasync", path: path)
        }
    }

    public func truncate(to size: Int64) throws {
        try requireOpen()
        guard size >= 0 else {
            throw SystemErrors.invalidArgument("ftruncate", path: path, "negative size \(size)")
        }
        try SystemErrors.mapping("ftruncate", path: path) { try descriptor.resize(to: size) }
    }

    /// Closes the descriptor. A second call throws `.closed`.
    /// Hands the descriptor to a new owner (NIO's `FileRegion` for sendfile, which closes it
    /// when the send ends): this handle counts as closed from now on and never closes it itself.
    /// Nil when the handle is closed already.
    public func takeDescriptor() -> CInt? {
        guard closed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            return nil
        }
        return rawDescriptor
    }

    public func close() throws {
        guard closed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing)
            .exchanged
        else { throw StorageError.closed(path: path) }
        // Linux releases the descriptor even when close fails, so it is never retried.
        try SystemErrors.mapping("close", path: path) { try descriptor.close() }
    }

    private func requireOpen() throws {
        if closed.load(ordering: .acquiring) { throw StorageError.closed(path: path) }
    }

    private func validate(offset: Int64, count: Int, syscall: String) throws {
        guard offset >= 0, count >= 0 else {
            throw SystemErrors.invalidArgument(
                syscall, path: path, "negative offset or count (offset \(offset), count \(count))")
        }
        guard offset <= Int64.max - Int64(count) else {
            throw SystemErrors.invalidArgument(
                syscall, path: path, "range overflows (offset \(offset), count \(count))")
        }
    }
}
