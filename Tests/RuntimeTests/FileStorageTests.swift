import Foundation
import Runtime
import StoreCore
import Testing

@Suite struct FileStorageTests {
    let storage = FileStorage()

    @Test func writeReadSizeSyncClose() throws {
        try withTemporaryDirectory { dir in
            let path = StoragePath.join(dir, "00000000000000000000.meta")
            let file = try storage.open(path, create: true)
            #expect(file.path == path)
            #expect(try file.size() == 0)
            try file.write(Array("hello".utf8), at: 0)
            try file.write(Array("world".utf8), at: 5)
            try file.write(Array("W".utf8), at: 5)
            #expect(try file.size() == 10)
            #expect(try file.read(at: 0, count: 10) == Array("helloWorld".utf8))
            #expect(try file.read(at: 3, count: 4) == Array("loWo".utf8))
            // Short reads only at EOF, and none past it.
            #expect(try file.read(at: 7, count: 100) == Array("rld".utf8))
            #expect(try file.read(at: 10, count: 5) == [])
            #expect(try file.read(at: 1000, count: 5) == [])
            #expect(try file.read(at: 2, count: 0) == [])
            try file.sync()
            try file.close()

            // Reopening (with or without create) keeps the contents: no O_TRUNC.
            let again = try storage.open(path, create: true)
            #expect(try again.read(at: 0, count: Int.max) == Array("helloWorld".utf8))
            try again.close()
        }
    }

    @Test func createdFilesAreRegularWithoutExecuteBits() throws {
        try withTemporaryDirectory { dir in
            let path = StoragePath.join(dir, "f")
            try storage.open(path, create: true).close()
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            let mode = try #require(attributes[.posixPermissions] as? Int)
            // 0o644 minus whatever the umask removes.
            #expect(mode & ~0o644 == 0)
            #expect(mode & 0o600 == 0o600)
        }
    }

    @Test func writingPastTheEndLeavesAZeroGap() throws {
        try withTemporaryDirectory { dir in
            let file = try storage.open(StoragePath.join(dir, "gap"), create: true)
            defer { try? file.close() }
            try file.write([1, 2, 3], at: 0)
            try file.write([9, 9], at: 100)
            #expect(try file.size() == 102)
            let all = try file.read(at: 0, count: 102)
            #expect(all[0..<3] == [1, 2, 3])
            #expect(all[3..<100].allSatisfy { $0 == 0 })
            #expect(all[100...] == [9, 9])
        }
    }

    @Test func truncateShrinksAndExtends() throws {
        try withTemporaryDirectory { dir in
            let file = try storage.open(StoragePath.join(dir, "t"), create: true)
            defer { try? file.close() }
            try file.write(Array(repeating: 7, count: 1000), at: 0)
            try file.truncate(to: 10)
            #expect(try file.size() == 10)
            #expect(try file.read(at: 0, count: 1000) == Array(repeating: 7, count: 10))
            try file.truncate(to: 20)
            #expect(try file.read(at: 0, count: 1000) == Array(repeating: 7, count: 10) + Array(repeating: 0, count: 10))
            try file.sync()
        }
    }

    @Test func openingAMissingFileWithoutCreateIsNotFound() throws {
        try withTemporaryDirectory { dir in
            let path = StoragePath.join(dir, "missing")
            #expect(throws: StorageError.notFound(path: path)) { try storage.open(path, create: false) }
            let nested = StoragePath.join(dir, "no/such/dir/file")
            #expect(throws: StorageError.notFound(path: nested)) { try storage.open(nested, create: true) }
            #expect(!storage.fileExists(path))
        }
    }

    @Test func listNamesEntriesWithoutDots() throws {
        try withTemporaryDirectory { dir in
            #expect(try storage.list(dir) == [])
            for name in ["a.meta", "b.meta", "ünïcode"] {
                try storage.open(StoragePath.join(dir, name), create: true).close()
            }
            try storage.makeDirectory(StoragePath.join(dir, "sub"))
            #expect(Set(try storage.list(dir)) == ["a.meta", "b.meta", "ünïcode", "sub"])

            let missing = StoragePath.join(dir, "missing")
            #expect(throws: StorageError.notFound(path: missing)) { try storage.list(missing) }
            let file = StoragePath.join(dir, "a.meta")
            #expect(throws: StorageError.notADirectory(path: file)) { try storage.list(file) }
        }
    }

    @Test func renameMovesAndReplaces() throws {
        try withTemporaryDirectory { dir in
            let from = StoragePath.join(dir, "from")
            let to = StoragePath.join(dir, "to")
            let file = try storage.open(from, create: true)
            try file.write([1, 2, 3], at: 0)
            try file.close()
            try storage.open(to, create: true).close()

            try storage.rename(from, to: to)
            #expect(!storage.fileExists(from))
            let moved = try storage.open(to, create: false)
            #expect(try moved.read(at: 0, count: 3) == [1, 2, 3])
            try moved.close()
            #expect(throws: StorageError.notFound(path: from)) { try storage.rename(from, to: to) }
        }
    }

    @Test func removeDeletesFilesAndEmptyDirectories() throws {
        try withTemporaryDirectory { dir in
            let file = StoragePath.join(dir, "f")
            let sub = StoragePath.join(dir, "sub")
            try storage.open(file, create: true).close()
            try storage.makeDirectory(sub)
            try storage.open(StoragePath.join(sub, "inner"), create: true).close()

            try storage.remove(file)
            #expect(!storage.fileExists(file))
            #expect(throws: StorageError.notFound(path: file)) { try storage.remove(file) }
            // A non-empty directory is refused (ENOTEMPTY → .io), not emptied.
            let error = #expect(throws: StorageError.self) { try storage.remove(sub) }
            #expect(error.map(isIOError) == true)
            try storage.remove(StoragePath.join(sub, "inner"))
            try storage.remove(sub)
            #expect(!storage.fileExists(sub))
        }
    }

    @Test func makeDirectoryCreatesParentsAndIsIdempotent() throws {
        try withTemporaryDirectory { dir in
            let deep = StoragePath.join(dir, "a/b/c/d")
            try storage.makeDirectory(deep)
            #expect(storage.isDirectory(deep))
            #expect(storage.isDirectory(StoragePath.join(dir, "a/b")))
            try storage.makeDirectory(deep)
            try storage.makeDirectory(deep + "/")
            try storage.makeDirectory(dir)

            let file = StoragePath.join(dir, "file")
            try storage.open(file, create: true).close()
            #expect(!storage.isDirectory(file))
            #expect(throws: StorageError.alreadyExists(path: file)) { try storage.makeDirectory(file) }
            let underFile = StoragePath.join(file, "x/y")
            // mkdir fails with ENOTDIR on the full path; no parent is attempted.
            #expect(throws: StorageError.notADirectory(path: underFile)) {
                try storage.makeDirectory(underFile)
            }
        }
    }

    @Test func syncDirectory() throws {
        try withTemporaryDirectory { dir in
            try storage.open(StoragePath.join(dir, "new"), create: true).close()
            try storage.syncDirectory(dir)
            let missing = StoragePath.join(dir, "missing")
            #expect(throws: StorageError.notFound(path: missing)) { try storage.syncDirectory(missing) }
            let file = StoragePath.join(dir, "new")
            #expect(throws: StorageError.notADirectory(path: file)) { try storage.syncDirectory(file) }
        }
    }

    @Test func modificationTimeIsNearNow() throws {
        try withTemporaryDirectory { dir in
            let path = StoragePath.join(dir, "m")
            let before = Int64(Date().timeIntervalSince1970 * 1000)
            let file = try storage.open(path, create: true)
            try file.write([1], at: 0)
            try file.close()
            let after = Int64(Date().timeIntervalSince1970 * 1000)
            let mtime = try storage.modificationTimeMs(path)
            // File system timestamps can lag the clock by a tick; allow a generous margin.
            #expect(mtime >= before - 2000 && mtime <= after + 2000, "mtime \(mtime), now \(before)…\(after)")
            let missing = StoragePath.join(dir, "missing")
            #expect(throws: StorageError.notFound(path: missing)) { try storage.modificationTimeMs(missing) }
        }
    }

    @Test func withBytesSeesWrittenDataAtUnalignedOffsets() throws {
        try withTemporaryDirectory { dir in
            let file = try storage.open(StoragePath.join(dir, "mapped"), create: true)
            defer { try? file.close() }
            var random = TestBytes(seed: 42)
            let content = random.bytes(3 * 4096 + 123)
            try file.write(content, at: 0)
            let ranges: [(Int, Int)] = [(0, 10), (1, 4096), (4095, 2), (4097, 5000), (8191, 4000), (0, content.count)]
            for (offset, count) in ranges {
                let seen = try file.withBytes(at: Int64(offset), count: count) { Array($0) }
                #expect(seen == Array(content[offset..<offset + count]), "offset \(offset) count \(count)")
            }
            // Past EOF: clamped, the buffer's count says how much there was.
            let tail = try file.withBytes(at: Int64(content.count - 7), count: 100) { Array($0) }
            #expect(tail == Array(content.suffix(7)))
            #expect(try file.withBytes(at: Int64(content.count), count: 10) { $0.count } == 0)
            #expect(try file.withBytes(at: 1_000_000, count: 10) { $0.count } == 0)
            #expect(try file.withBytes(at: 5, count: 0) { $0.count } == 0)
            // The mapping is shared: it sees a write made after the file was opened.
            try file.write([0xAB, 0xCD], at: 4096)
            #expect(try file.withBytes(at: 4096, count: 2) { Array($0) } == [0xAB, 0xCD])
        }
    }

    @Test func closedFilesThrowInsteadOfCrashing() throws {
        try withTemporaryDirectory { dir in
            let path = StoragePath.join(dir, "c")
            let file = try storage.open(path, create: true)
            try file.write([1, 2, 3], at: 0)
            try file.close()
            let closed = StorageError.closed(path: path)
            #expect(throws: closed) { try file.write([1], at: 0) }
            #expect(throws: closed) { try file.read(at: 0, count: 1) }
            #expect(throws: closed) { try file.size() }
            #expect(throws: closed) { try file.sync() }
            #expect(throws: closed) { try file.truncate(to: 0) }
            #expect(throws: closed) { try file.withBytes(at: 0, count: 1) { $0.count } }
            #expect(throws: closed) { try file.close() }
        }
    }

    @Test func badArgumentsThrowInsteadOfCrashing() throws {
        try withTemporaryDirectory { dir in
            let file = try storage.open(StoragePath.join(dir, "bad"), create: true)
            defer { try? file.close() }
            try file.write([1, 2, 3], at: 0)
            let attempts: [() throws -> Void] = [
                { try file.write([1], at: -1) },
                { try file.write([1, 2], at: Int64.max) },
                { _ = try file.read(at: -5, count: 1) },
                { _ = try file.read(at: 0, count: -1) },
                { _ = try file.withBytes(at: -1, count: 1) { $0.count } },
                { _ = try file.withBytes(at: 0, count: -1) { $0.count } },
                { try file.truncate(to: -1) },
            ]
            for attempt in attempts {
                let error = #expect(throws: StorageError.self) { try attempt() }
                #expect(error.map(isIOError) == true)
            }
            // A directory cannot be opened as a file.
            let error = #expect(throws: StorageError.self) { try storage.open(dir, create: false) }
            #expect(error.map(isIOError) == true)
            #expect(try file.read(at: 0, count: 3) == [1, 2, 3])
        }
    }

    /// A disk error names its cause the way an operator searches for it: the C library's text
    /// and the errno name (`/dev/full` fails every write with ENOSPC, `/dev/null` every fdatasync
    /// with EINVAL, without privileges).
    @Test func errorsCarryTheErrnoName() throws {
        let full = try storage.open("/dev/full", create: false)
        defer { try? full.close() }
        let write = #expect(throws: StorageError.self) { try full.write(Array("x".utf8), at: 0) }
        #expect(write == .io(path: "/dev/full", detail: "pwrite: No space left on device (ENOSPC)"))
        let null = try storage.open("/dev/null", create: false)
        defer { try? null.close() }
        let sync = #expect(throws: StorageError.self) { try null.sync() }
        #expect(sync == .io(path: "/dev/null", detail: "fdatasync: Invalid argument (EINVAL)"))
    }

    @Test func oneFileIsUsableFromManyTasks() async throws {
        try await withTemporaryDirectory { dir in
            // RealFile is Sendable: the task group below only compiles because of that.
            let file = try storage.openFile(StoragePath.join(dir, "shared"), create: true)
            let blocks = 16
            let blockSize = 8192
            try await withThrowingTaskGroup(of: Void.self) { group in
                for block in 0..<blocks {
                    group.addTask {
                        let bytes = [UInt8](repeating: UInt8(block), count: blockSize)
                        try file.write(bytes, at: Int64(block * blockSize))
                        try file.sync()
                    }
                }
                try await group.waitForAll()
            }
            let all = try file.read(at: 0, count: blocks * blockSize)
            for block in 0..<blocks {
                #expect(all[block * blockSize..<(block + 1) * blockSize].allSatisfy { $0 == UInt8(block) })
            }
            try file.close()
        }
    }
}

/// Whether `error` is `StorageError.io`.
private func isIOError(_ error: StorageError) -> Bool {
    if case .io = error { return true }
    return false
}
