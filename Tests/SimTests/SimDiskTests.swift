import Sim
import StoreCore
import Testing

/// File-system behaviour of SimDisk without faults.
@Suite struct SimDiskTests {
    let dir = "/data/test-0"

    @Test func writeReadAndSize() throws {
        let disk = SimDisk()
        try disk.makeDirectory(dir)
        let file = try disk.open("\(dir)/a.meta", create: true)
        try file.write([1, 2, 3, 4], at: 0)
        #expect(try file.size() == 4)
        #expect(try file.read(at: 1, count: 2) == [2, 3])
        #expect(try file.read(at: 2, count: 100) == [3, 4])
        #expect(try file.read(at: 4, count: 10) == [])
        #expect(try file.read(at: 50, count: 10) == [])
        #expect(file.path == "\(dir)/a.meta")
    }

    @Test func writePastEndFillsWithZeros() throws {
        let disk = SimDisk()
        let file = try disk.open("/f", create: true)
        try file.write([9], at: 0)
        try file.write([7, 7], at: 5)
        #expect(disk.currentBytes("/f") == [9, 0, 0, 0, 0, 7, 7])
        try file.write([], at: 100)
        #expect(try file.size() == 7)
    }

    @Test func truncateCutsAndExtends() throws {
        let disk = SimDisk()
        let file = try disk.open("/f", create: true)
        try file.write([1, 2, 3, 4, 5], at: 0)
        try file.truncate(to: 2)
        #expect(disk.currentBytes("/f") == [1, 2])
        try file.truncate(to: 4)
        #expect(disk.currentBytes("/f") == [1, 2, 0, 0])
    }

    @Test func withBytesSeesCurrentBytesClampedAtEnd() throws {
        let disk = SimDisk()
        let file = try disk.open("/f", create: true)
        try file.write([10, 11, 12, 13], at: 0)
        #expect(try file.withBytes(at: 1, count: 2) { Array($0) } == [11, 12])
        #expect(try file.withBytes(at: 3, count: 9) { Array($0) } == [13])
        #expect(try file.withBytes(at: 8, count: 9) { $0.count } == 0)
        // A write inside `body` does not move the bytes under the pointer.
        let seen = try file.withBytes(at: 0, count: 4) { buffer -> [UInt8] in
            try file.write([99, 99, 99, 99, 99, 99], at: 0)
            return Array(buffer)
        }
        #expect(seen == [10, 11, 12, 13])
    }

    @Test func invalidOffsetsThrow() throws {
        let disk = SimDisk()
        let file = try disk.open("/f", create: true)
        #expect(throws: StorageError.self) { try file.write([1], at: -1) }
        #expect(throws: StorageError.self) { try file.read(at: -1, count: 1) }
        #expect(throws: StorageError.self) { try file.read(at: 0, count: -1) }
        #expect(throws: StorageError.self) { try file.truncate(to: -1) }
        #expect(throws: StorageError.self) { try file.write([1], at: Int64(disk.maxFileSizeBytes)) }
    }

    @Test func openErrors() throws {
        let disk = SimDisk()
        try disk.makeDirectory(dir)
        #expect(throws: StorageError.notFound(path: "\(dir)/missing")) { try disk.open("\(dir)/missing", create: false) }
        #expect(throws: StorageError.notFound(path: "/nowhere")) { try disk.open("/nowhere/x", create: true) }
        #expect(throws: StorageError.self) { try disk.open(dir, create: false) }
        #expect(throws: StorageError.self) { try disk.open("/", create: true) }
        _ = try disk.open("/plain", create: true)
        #expect(throws: StorageError.notADirectory(path: "/plain")) { try disk.open("/plain/x", create: true) }
    }

    @Test func makeDirectoryCreatesParentsAndIsIdempotent() throws {
        let disk = SimDisk()
        #expect(disk.isDirectory("/"))
        try disk.makeDirectory("/a/b/c")
        try disk.makeDirectory("/a/b/c")
        try disk.makeDirectory("a/b")
        #expect(disk.isDirectory("/a") && disk.isDirectory("/a/b") && disk.isDirectory("/a/b/c"))
        #expect(try disk.list("/a") == ["b"])
        _ = try disk.open("/a/f", create: true)
        #expect(throws: StorageError.alreadyExists(path: "/a/f")) { try disk.makeDirectory("/a/f") }
        #expect(throws: StorageError.notADirectory(path: "/a/f")) { try disk.makeDirectory("/a/f/g") }
    }

    @Test func listExistsAndIsDirectory() throws {
        let disk = SimDisk()
        try disk.makeDirectory("\(dir)/sub")
        _ = try disk.open("\(dir)/b", create: true)
        _ = try disk.open("\(dir)/a", create: true)
        #expect(try disk.list(dir) == ["a", "b", "sub"])
        #expect(disk.fileExists("\(dir)/a") && disk.fileExists("\(dir)/sub"))
        #expect(!disk.fileExists("\(dir)/c"))
        #expect(!disk.isDirectory("\(dir)/a"))
        #expect(throws: StorageError.notFound(path: "/nope")) { try disk.list("/nope") }
        #expect(throws: StorageError.notADirectory(path: "\(dir)/a")) { try disk.list("\(dir)/a") }
        #expect(disk.filePaths() == ["\(dir)/a", "\(dir)/b"])
    }

    @Test func renameMovesAndReplaces() throws {
        let disk = SimDisk()
        try disk.makeDirectory("/d")
        try disk.open("/d/a", create: true).write([1], at: 0)
        try disk.open("/d/b", create: true).write([2], at: 0)
        try disk.rename("/d/a", to: "/d/b")
        #expect(try disk.list("/d") == ["b"])
        #expect(disk.currentBytes("/d/b") == [1])
        try disk.rename("/d/b", to: "/d/b")
        #expect(disk.currentBytes("/d/b") == [1])
        #expect(throws: StorageError.notFound(path: "/d/zz")) { try disk.rename("/d/zz", to: "/d/y") }
        try disk.makeDirectory("/d/sub")
        #expect(throws: StorageError.alreadyExists(path: "/d/sub")) { try disk.rename("/d/b", to: "/d/sub") }
        #expect(throws: StorageError.self) { try disk.rename("/d", to: "/d/sub/inner") }
        try disk.rename("/d/sub", to: "/moved")
        #expect(disk.isDirectory("/moved") && !disk.fileExists("/d/sub"))
    }

    @Test func handleFollowsInodeAcrossRenameAndRemove() throws {
        let disk = SimDisk()
        let file = try disk.open("/a", create: true)
        try disk.rename("/a", to: "/b")
        try file.write([5], at: 0)
        #expect(disk.currentBytes("/b") == [5])
        try disk.remove("/b")
        #expect(try file.read(at: 0, count: 1) == [5])
        #expect(disk.currentBytes("/b") == nil)
    }

    @Test func removeFilesAndEmptyDirectoriesOnly() throws {
        let disk = SimDisk()
        try disk.makeDirectory("/d/e")
        _ = try disk.open("/d/f", create: true)
        #expect(throws: StorageError.self) { try disk.remove("/d") }
        try disk.remove("/d/f")
        try disk.remove("/d/e")
        try disk.remove("/d")
        #expect(!disk.fileExists("/d"))
        #expect(throws: StorageError.notFound(path: "/d")) { try disk.remove("/d") }
        #expect(throws: StorageError.self) { try disk.remove("/") }
    }

    @Test func modificationTimeFollowsNow() throws {
        let disk = SimDisk()
        disk.nowMs = 100
        let file = try disk.open("/f", create: true)
        #expect(try disk.modificationTimeMs("/f") == 100)
        disk.nowMs = 250
        try file.write([1], at: 0)
        #expect(try disk.modificationTimeMs("/f") == 250)
        disk.nowMs = 300
        _ = try file.read(at: 0, count: 1)
        try file.sync()
        #expect(try disk.modificationTimeMs("/f") == 250)
        try file.truncate(to: 0)
        #expect(try disk.modificationTimeMs("/f") == 300)
        #expect(try disk.modificationTimeMs("/") == 100)
        #expect(throws: StorageError.notFound(path: "/g")) { try disk.modificationTimeMs("/g") }
    }

    @Test func syncMakesBytesDurable() throws {
        let disk = SimDisk()
        let file = try disk.open("/f", create: true)
        try file.write([1, 2, 3], at: 0)
        #expect(disk.durableBytes("/f") == [])
        try file.sync()
        #expect(disk.durableBytes("/f") == [1, 2, 3])
        try file.write([9], at: 1)
        try file.truncate(to: 2)
        #expect(disk.durableBytes("/f") == [1, 2, 3])
        #expect(disk.currentBytes("/f") == [1, 9])
        #expect(disk.durableBytes("/missing") == nil)
    }

    @Test func syncDirectoryMakesEntriesDurable() throws {
        let disk = SimDisk()
        try disk.makeDirectory(dir)
        #expect(disk.isEntryDurable(dir))
        _ = try disk.open("\(dir)/a", create: true)
        #expect(!disk.isEntryDurable("\(dir)/a"))
        try disk.syncDirectory(dir)
        #expect(disk.isEntryDurable("\(dir)/a"))
        #expect(throws: StorageError.notFound(path: "/zz")) { try disk.syncDirectory("/zz") }
        #expect(throws: StorageError.notADirectory(path: "\(dir)/a")) { try disk.syncDirectory("\(dir)/a") }
    }

    @Test func failNextSyncThrowsOnceAndKeepsDurableState() throws {
        let disk = SimDisk()
        let file = try disk.open("/f", create: true)
        try file.write([1], at: 0)
        disk.failNextSync = true
        #expect(throws: StorageError.io(path: "/f", detail: "injected fsync failure")) { try file.sync() }
        #expect(disk.durableBytes("/f") == [])
        #expect(!disk.failNextSync)
        #expect(disk.stats.syncFailuresInjected == 1)
        try file.sync()
        #expect(disk.durableBytes("/f") == [1])
    }

    @Test func closedHandleThrows() throws {
        let disk = SimDisk()
        let file = try disk.open("/f", create: true)
        try file.close()
        #expect(throws: StorageError.closed(path: "/f")) { try file.size() }
        #expect(throws: StorageError.closed(path: "/f")) { try file.close() }
        // The file itself is still there for a new handle.
        #expect(try disk.open("/f", create: false).size() == 0)
    }
}
