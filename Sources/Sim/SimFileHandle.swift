// An open file on a SimDisk. It holds the inode, not the name: like a POSIX descriptor it keeps
// working after the file is renamed or removed, until it is closed or its process dies.
import StoreCore

final class SimFileHandle: StorageFile {
    let path: String
    private let inode: SimInode
    // Strong on purpose: the disk never points back at its handles, so there is no cycle.
    private let disk: SimDisk
    private let epoch: Int
    private var isClosed = false

    init(path: String, inode: SimInode, disk: SimDisk) {
        self.path = path
        self.inode = inode
        self.disk = disk
        self.epoch = disk.epoch
    }

    func size() throws -> Int64 {
        Int64(try liveInode().current.count)
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        let inode = try liveInode()
        let start = try checkedOffset(offset)
        guard start + bytes.count <= disk.maxFileSizeBytes else {
            throw StorageError.io(path: path, detail: "file too large")
        }
        if let failure = disk.failNextWrite {
            // A short write, then the error (EIO, ENOSPC): what reached the page cache is unknown
            // to the writer.
            disk.failNextWrite = nil
            disk.stats.writeFailuresInjected += 1
            let kept = min(max(0, failure.writtenPrefix), bytes.count)
            if kept > 0 { inode.write(UnsafeRawBufferPointer(rebasing: bytes[0..<kept]), at: start) }
            throw StorageError.io(path: path, detail: failure.detail)
        }
        inode.write(bytes, at: start)
        inode.modificationTimeMs = disk.nowMs
    }

    func read(at offset: Int64, count: Int) throws -> [UInt8] {
        let inode = try liveInode()
        let range = try clampedRange(offset: offset, count: count, size: inode.current.count)
        return Array(inode.current[range])
    }

    /// Like `read`, the range is cut at end of file.
    func withBytes<R>(at offset: Int64, count: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let inode = try liveInode()
        let range = try clampedRange(offset: offset, count: count, size: inode.current.count)
        // A local reference (no copy) keeps the buffer alive and unchanged even if `body` writes to
        // the file: that write copies the array instead of moving bytes under the pointer.
        let bytes = inode.current
        return try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    /// A failed sync leaves the durable state as it was: the caller must treat the data as lost.
    func sync() throws {
        let inode = try liveInode()
        if disk.failNextSync {
            disk.failNextSync = false
            disk.stats.syncFailuresInjected += 1
            throw StorageError.io(path: path, detail: "injected fsync failure")
        }
        inode.sync()
    }

    func truncate(to size: Int64) throws {
        let inode = try liveInode()
        let newSize = try checkedOffset(size)
        guard newSize <= disk.maxFileSizeBytes else {
            throw StorageError.io(path: path, detail: "file too large")
        }
        inode.truncate(to: newSize)
        inode.modificationTimeMs = disk.nowMs
    }

    func close() throws {
        _ = try liveInode()
        isClosed = true
    }

    private func liveInode() throws -> SimInode {
        guard !isClosed, epoch == disk.epoch else { throw StorageError.closed(path: path) }
        return inode
    }

    private func checkedOffset(_ offset: Int64) throws -> Int {
        guard offset >= 0, offset <= Int64(disk.maxFileSizeBytes) else {
            throw StorageError.io(path: path, detail: "invalid offset \(offset)")
        }
        return Int(offset)
    }

    private func clampedRange(offset: Int64, count: Int, size: Int) throws -> Range<Int> {
        guard offset >= 0, count >= 0 else {
            throw StorageError.io(path: path, detail: "invalid range \(offset), \(count)")
        }
        let start = Int(min(offset, Int64(size)))
        return start..<start + min(count, size - start)
    }
}
