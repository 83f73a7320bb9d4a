import Glibc

/// An exclusive advisory lock (`flock`) on a lock file, held until `release()`: a local store
/// file belongs to one consumer process at a time. `flock` locks belong to the open file, so two
/// locks on one path conflict within one process too, and a process that dies drops its locks.
/// Lock files are never deleted: a process that opened one just before it was unlinked would lock
/// a file nobody else sees.
final class FileLock {
    private var fd: Int32

    private init(fd: Int32) { self.fd = fd }

    /// The lock on `path` (created if missing), or nil when another holder has it.
    static func tryLock(_ path: String) throws -> FileLock? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw MetaQClientError("cannot open the lock file \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK { return nil }
            throw MetaQClientError("cannot lock \(path): \(String(cString: strerror(code)))")
        }
        return FileLock(fd: fd)
    }

    func release() {
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
    }

    deinit { release() }
}
