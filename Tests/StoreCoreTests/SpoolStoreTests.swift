import ProtocolCore
import Sim
import Testing
@testable import StoreCore

/// The ordered producer's spool (reference §5.6) on SimDisk: order across reopen, durability of
/// `append` and `removeHead` under power loss, torn tails, and bounded growth by compaction.
@Suite("Ordered producer spool (reference §5.6)")
struct SpoolStoreTests {
    static let root = "/home/u/.meta_ordered"
    static let lane = OrderedLane(topic: "orders", partition: BrokerPartition(brokerId: 1, partition: 2))
    static let directory = "/home/u/.meta_ordered/orders@1-2"
    static let path = directory + "/spool.log"

    func open(_ disk: SimDisk, threshold: Int64 = 1 << 20) throws -> SpoolStore {
        try SpoolStore(storage: disk, directory: Self.directory, compactionThresholdBytes: threshold)
    }

    func payload(_ n: Int, size: Int = 10) -> [UInt8] {
        [UInt8(truncatingIfNeeded: n)] + (1..<max(size, 1)).map { UInt8(truncatingIfNeeded: n &+ $0) }
    }

    /// The first payload byte of each message at the head: which messages are there, in order.
    func heads(_ store: SpoolStore, max: Int = 1000) throws -> [Int] {
        try store.head(max: max).map { Int($0.payload[0]) }
    }

    @Test func orderIsKeptAcrossReopenAndSequencesContinue() throws {
        let disk = SimDisk()
        let store = try open(disk)
        for n in 1...4 { try store.append(flag: Int32(n), payload: payload(n)) }
        let window = try store.head(max: 2)
        #expect(window.map(\.sequence) == [1, 2] && window.map(\.flag) == [1, 2] && window[0].payload == payload(1))
        #expect(try store.removeHead(through: 2) == 2 && store.count == 2)
        #expect(try store.removeHead(through: 1) == 0, "removing again does nothing")
        try store.close()
        let reopened = try open(disk)
        #expect(try reopened.count == 2 && heads(reopened) == [3, 4])
        #expect(try reopened.append(flag: 0, payload: payload(5)) == 5)
        #expect(try heads(reopened) == [3, 4, 5])
        #expect(disk.isEntryDurable(Self.path))
    }

    /// Whatever `append` and `removeHead` returned from survives power loss; an append cut by it
    /// (written, not synced) is dropped whole or kept whole, and appends go on after it.
    @Test func powerLossNeverLosesASyncedMessage() throws {
        for seed in UInt64(0)..<100 {
            let disk = SimDisk()
            let store = try open(disk)
            for n in 1...5 { try store.append(flag: 0, payload: payload(n, size: 300)) }
            try store.removeHead(through: 2)
            let torn = SpoolRecord.encode(SpooledMessage(sequence: 6, flag: 0, payload: payload(6, size: 900)))
            try disk.open(Self.path, create: false).write(torn, at: store.fileSizeBytes)
            var rng = SimRandom(seed: seed)
            disk.powerLoss(using: &rng)
            let reopened = try open(disk)
            let survivors = try heads(reopened)
            #expect(survivors == [3, 4, 5] || survivors == [3, 4, 5, 6], "seed \(seed): \(survivors)")
            try reopened.append(flag: 0, payload: payload(7))
            #expect(try heads(open(disk)).suffix(1) == [7], "seed \(seed)")
        }
    }

    /// Removed messages never come back, across reopen and power loss.
    @Test func removedMessagesNeverReturn() throws {
        for seed in UInt64(0)..<50 {
            let disk = SimDisk()
            var store = try open(disk)
            for n in 1...20 { try store.append(flag: 0, payload: payload(n)) }
            _ = try store.head(max: 3)
            try store.removeHead(through: 3)
            try store.removeHead(through: 11)  // not just read: found by scanning
            var rng = SimRandom(seed: seed)
            disk.powerLoss(using: &rng)
            store = try open(disk)
            #expect(try heads(store) == Array(12...20), "seed \(seed)")
            #expect(store.count == 9)
        }
    }

    /// Once the removed prefix dominates, the live records move to a new file: the file stays
    /// bounded over many rounds of append and remove, and the survivors keep their order.
    @Test func compactionBoundsTheFile() throws {
        let disk = SimDisk()
        let store = try open(disk, threshold: 4096)
        try store.append(flag: 0, payload: payload(0, size: 100))
        var maxSize: Int64 = 0
        for round in 1...2000 {
            let sequence = try store.append(flag: 0, payload: payload(round, size: 100))
            try store.removeHead(through: sequence - 1)
            maxSize = max(maxSize, store.fileSizeBytes)
        }
        #expect(maxSize < 12_000, "the file grows without bound: \(maxSize)")
        #expect(try heads(store) == [2000 % 256] && store.count == 1)
        #expect(!disk.fileExists(Self.path + ".tmp"))
        let reopened = try open(disk)
        #expect(try heads(reopened) == [2000 % 256])
        #expect(try reopened.append(flag: 0, payload: payload(1)) == 2002, "sequences go on after a compaction")
    }

    /// A power loss in the middle of a compaction (renamed, directory not synced) leaves the old
    /// file or the new, both whole.
    @Test func interruptedCompactionLosesNothing() throws {
        for seed in UInt64(0)..<50 {
            let disk = SimDisk()
            let store = try open(disk)
            for n in 1...4 { try store.append(flag: 0, payload: payload(n)) }
            try store.removeHead(through: 1)
            var bytes = SpoolRecord.header()
            for message in try store.head(max: 10) { bytes += SpoolRecord.encode(message) }
            try renameWithoutDirectorySync(disk, Self.path, bytes: bytes)
            var rng = SimRandom(seed: seed)
            disk.powerLoss(using: &rng)
            #expect(try heads(open(disk)) == [2, 3, 4], "seed \(seed)")
        }
    }

    /// A write whose sync failed is reported and rolled back before the store is used again; it
    /// never hides the messages before it (they are read, removed and kept across reopen as
    /// before), and the failed message never comes back.
    @Test func failedWriteRollsBackAndHidesNothing() throws {
        let disk = SimDisk()
        let store = try open(disk)
        for n in 1...3 { try store.append(flag: 0, payload: payload(n)) }
        disk.failNextSync = true
        #expect(throws: StorageError.self) { try store.append(flag: 0, payload: payload(4)) }
        #expect(try heads(store) == [1, 2, 3])
        #expect(try store.removeHead(through: 1) == 1)
        try store.append(flag: 0, payload: payload(5))
        #expect(try heads(store) == [2, 3, 5] && store.count == 3)
        disk.failNextWrite = ("EIO", 7)
        #expect(throws: StorageError.self) { try store.removeHead(through: 2) }
        #expect(try heads(store) == [2, 3, 5] && store.count == 3, "a failed removal removes nothing")
        var rng = SimRandom(seed: 1)
        disk.powerLoss(using: &rng)
        #expect(try heads(open(disk)) == [2, 3, 5])
    }

    /// A new lane whose first open failed at its sync (the header written, not durable) syncs the
    /// file and its directory entry when it is opened again: what is then appended survives power loss.
    @Test func openAfterAFailedFirstOpenMakesTheFileDurable() throws {
        let disk = SimDisk()
        disk.failNextSync = true
        #expect(throws: StorageError.self) { try open(disk) }
        let store = try open(disk)
        try store.append(flag: 0, payload: payload(1))
        var rng = SimRandom(seed: 3)
        disk.powerLoss(using: &rng)
        #expect(try heads(open(disk)) == [1])
    }

    /// A compaction that fails after the removal was synced does not fail the removal; the store
    /// reopens its file before its next use and goes on.
    @Test func failedCompactionHealsOnNextUse() throws {
        let disk = SimDisk()
        let store = try open(disk, threshold: 64)
        for n in 1...6 { try store.append(flag: 0, payload: payload(n, size: 40)) }
        disk.failNextDirectorySync = .io(path: Self.directory, detail: "EIO")
        #expect(try store.removeHead(through: 4) == 4)
        #expect(try heads(store) == [5, 6])
        #expect(try store.append(flag: 0, payload: payload(7)) == 7)
        #expect(try heads(store) == [5, 6, 7] && store.count == 3)
        try store.close()
        #expect(try heads(open(disk)) == [5, 6, 7])
    }

    /// Payloads larger than the scan's read chunk are read back whole, between small ones.
    @Test func largePayloadsAcrossReadChunks() throws {
        let disk = SimDisk()
        let store = try open(disk)
        let big = SpoolStore.chunkBytes + SpoolStore.chunkBytes / 2
        try store.append(flag: 0, payload: payload(1))
        try store.append(flag: 0, payload: payload(2, size: big))
        try store.append(flag: 0, payload: payload(3))
        let reopened = try open(disk)
        let messages = try reopened.head(max: 3)
        #expect(messages.map(\.payload) == [payload(1), payload(2, size: big), payload(3)])
    }

    /// A flipped byte in a synced record fails its CRC: the scan stops there and cuts the file.
    @Test func corruptRecordEndsTheReplay() throws {
        let disk = SimDisk()
        let store = try open(disk)
        try store.append(flag: 0, payload: payload(1))
        try store.append(flag: 0, payload: payload(2))
        var bytes = try #require(disk.currentBytes(Self.path))
        bytes[bytes.count - 3] ^= 0x01
        let file = try disk.open(Self.path, create: false)
        try file.write(bytes, at: 0)
        try file.sync()
        let reopened = try open(disk)
        #expect(try heads(reopened) == [1] && reopened.count == 1)
    }

    @Test func foreignFileIsRefused() throws {
        let disk = SimDisk()
        try disk.makeDirectory(Self.directory)
        try disk.open(Self.path, create: true).write(Array("not a spool at all".utf8), at: 0)
        #expect(throws: StorageError.self) { try open(disk) }
    }

    /// The root holds one directory per lane (`<topic>@<broker>-<partition>`); reopening it finds
    /// the lanes an earlier process left with messages, each with its own order.
    @Test func spoolRootFindsLanesAgain() throws {
        let disk = SimDisk()
        let other = OrderedLane(topic: "other", partition: BrokerPartition(brokerId: 0, partition: 10))
        let spool = try OrderedSpool(storage: disk, root: Self.root)
        try spool.append(Self.lane, flag: 0, payload: payload(1))
        try spool.append(other, flag: 0, payload: payload(2))
        try spool.append(Self.lane, flag: 0, payload: payload(3))
        try spool.removeHead(other, through: 1)
        try disk.makeDirectory(Self.root + "/not-a-lane")
        try spool.close()
        let reopened = try OrderedSpool(storage: disk, root: Self.root)
        #expect(reopened.lanes.map(\.lane) == [Self.lane] && reopened.lanes.map(\.count) == [2])
        #expect(try reopened.head(Self.lane, max: 5).map { Int($0.payload[0]) } == [1, 3])
        #expect(reopened.depth(of: other) == 0 && disk.isDirectory(Self.root + "/other@0-10"))
        // Directories an earlier version wrote with '@' in the topic are still read back.
        #expect(OrderedSpool.lane(directoryName: "a@b@0-10") == OrderedLane(topic: "a@b", partition: other.partition))
        #expect(OrderedSpool.lane(directoryName: "orders@x-1") == nil)
    }
}
