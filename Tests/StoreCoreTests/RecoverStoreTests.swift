import ProtocolCore
import Sim
import Testing
@testable import StoreCore

/// The local recover store (reference §5.2) on SimDisk: durability of `append`/`remove`, torn
/// tails after power loss, and bounded growth by compaction.
@Suite("Recover store (reference §5.2)")
struct RecoverStoreTests {
    static let root = "/home/u/.meta_recover"
    static let path = "/home/u/.meta_recover/orders@billing/recover.log"

    func message(_ id: Int64, attribute: String? = nil, size: Int = 10) -> Message {
        Message(id: id, flag: attribute == nil ? 0 : 1, attribute: attribute,
                data: (0..<size).map { UInt8(truncatingIfNeeded: Int(id) &+ $0) }, offset: id * 100)
    }

    func open(_ disk: SimDisk, threshold: Int64 = 1 << 20) throws -> RecoverStore {
        try RecoverStore(storage: disk, root: Self.root, topic: "orders", group: "billing",
                         compactionThresholdBytes: threshold)
    }

    func ids(_ store: RecoverStore) -> [Int64] { store.pending().map(\.message.id) }

    @Test func appendRemoveAndReopenKeepOrderAndFields() throws {
        let disk = SimDisk()
        let store = try open(disk)
        #expect(try store.append(message(3, attribute: "red"), brokerId: 4, partition: 2))
        #expect(try store.append(message(1), partition: 0))
        #expect(try store.append(message(2), partition: 1))
        #expect(try !store.append(message(1), partition: 0), "a msgId is stored once")
        #expect(try store.remove(msgId: 1) && !store.remove(msgId: 1))
        #expect(ids(store) == [3, 2])
        try store.close()
        let reopened = try open(disk)
        #expect(reopened.pending() == [
            RecoveredMessage(topic: "orders", group: "billing", brokerId: 4, partition: 2, message: message(3, attribute: "red")),
            RecoveredMessage(topic: "orders", group: "billing", brokerId: 0, partition: 1, message: message(2))])
        #expect(disk.isEntryDurable(Self.path))
    }

    /// Whatever `append`/`remove` acknowledged survives power loss; an append cut by it (written,
    /// not synced) leaves a torn tail that is dropped, and appends go on after it.
    @Test func powerLossKeepsAcknowledgedAndDropsTornTail() throws {
        for seed in UInt64(0)..<100 {
            let disk = SimDisk()
            let store = try open(disk)
            for id in 1...5 { try store.append(message(Int64(id), size: 300), partition: 0) }
            try store.remove(msgId: 2)
            let torn = RecoverRecord.encode(RecoveredMessage(topic: "orders", group: "billing", brokerId: 0, partition: 0, message: message(6, size: 900)))
            let file = try disk.open(Self.path, create: false)
            try file.write(torn, at: store.fileSizeBytes)
            var rng = SimRandom(seed: seed)
            disk.powerLoss(using: &rng)
            let reopened = try open(disk)
            #expect(ids(reopened).prefix(4) == [1, 3, 4, 5], "seed \(seed)")
            #expect(ids(reopened).count <= 5)
            try reopened.append(message(7), partition: 0)
            let again = try open(disk)
            #expect(ids(again).last == 7 && ids(again).contains(2) == false, "seed \(seed)")
        }
    }

    @Test func garbageAfterRecordsIsCut() throws {
        let disk = SimDisk()
        let store = try open(disk)
        try store.append(message(1), partition: 0)
        let end = store.fileSizeBytes
        let file = try disk.open(Self.path, create: false)
        try file.write(Array(repeating: 0xAB, count: 37) + Array(repeating: 0, count: 20), at: end)
        try file.sync()
        let reopened = try open(disk)
        #expect(ids(reopened) == [1] && reopened.fileSizeBytes == end)
        #expect(disk.durableBytes(Self.path)?.count == Int(end))
    }

    /// A flipped byte inside a synced record fails its CRC: the record is not taken for a message.
    @Test func corruptRecordIsNotReplayed() throws {
        let disk = SimDisk()
        let store = try open(disk)
        try store.append(message(1), partition: 0)
        try store.append(message(2), partition: 0)
        var bytes = try #require(disk.currentBytes(Self.path))
        bytes[bytes.count - 3] ^= 0x01
        let file = try disk.open(Self.path, create: false)
        try file.write(bytes, at: 0)
        try file.sync()
        #expect(ids(try open(disk)) == [1])
    }

    /// Removed messages never come back, across reopen and power loss (tombstones are synced).
    @Test func removedMessageNeverComesBack() throws {
        for seed in UInt64(0)..<50 {
            let disk = SimDisk()
            var store = try open(disk)
            for id in 1...20 { try store.append(message(Int64(id)), partition: 0) }
            for id in stride(from: 1, through: 20, by: 3) { try store.remove(msgId: Int64(id)) }
            var rng = SimRandom(seed: seed)
            disk.powerLoss(using: &rng)
            store = try open(disk)
            #expect(ids(store) == (1...20).filter { ($0 - 1) % 3 != 0 }.map(Int64.init), "seed \(seed)")
        }
    }

    /// An append whose sync failed leaves its record in the page cache; a store reopened after
    /// it (a crash, or the reopen after the failed write) reads the record, so `append` of the
    /// same message answers "already stored" without writing. That answer must be durable: the
    /// reopen syncs what it read. (Found by the world simulation with failing handlers, seeds
    /// 479, 480, 700, 988: a message handed off again this way was lost at the member's next
    /// power loss.) Likewise an unsynced tombstone.
    @Test func whatAReopenedStoreReadsSurvivesPowerLoss() throws {
        let dropUnsynced = PowerLossPolicy(keepEntryProbability: 1, keepLengthProbability: 0,
                                           keepSectorProbability: 0, garbageSectorProbability: 0)
        let disk = SimDisk(powerLossPolicy: dropUnsynced)
        let store = try open(disk)
        try store.append(message(1), partition: 0)
        try store.append(message(2), partition: 0)
        disk.failNextSync = true
        #expect(throws: StorageError.self) { try store.append(message(3), partition: 0) }
        let second = try open(disk)
        disk.failNextSync = true
        #expect(throws: StorageError.self) { try second.remove(msgId: 1) }
        let reopened = try open(disk)
        #expect(ids(reopened) == [2, 3], "the unsynced record and tombstone are read after a crash")
        #expect(try !reopened.append(message(3), partition: 0))
        var rng = SimRandom(seed: 1)
        disk.powerLoss(using: &rng)
        #expect(ids(try open(disk)) == [2, 3])
    }

    /// Once dead records dominate, the file is rewritten to the live ones: it stays bounded over
    /// many append/remove rounds and the survivors keep their order.
    @Test func compactionBoundsTheFile() throws {
        let disk = SimDisk()
        let store = try open(disk, threshold: 4096)
        try store.append(message(1_000_000, size: 100), partition: 0)
        var maxSize: Int64 = 0
        for id in Int64(1)...2000 {
            try store.append(message(id, size: 100), partition: 0)
            try store.remove(msgId: id)
            maxSize = max(maxSize, store.fileSizeBytes)
        }
        try store.append(message(5, size: 100), partition: 0)
        #expect(maxSize < 12_000, "the file grows without bound")
        #expect(ids(store) == [1_000_000, 5])
        #expect(!disk.fileExists(Self.path + ".tmp"))
        #expect(ids(try open(disk)) == [1_000_000, 5])
    }

    /// A power loss in the middle of a compaction leaves the old file or the new, both complete.
    @Test func interruptedCompactionLosesNothing() throws {
        for seed in UInt64(0)..<50 {
            let disk = SimDisk()
            let store = try open(disk)
            for id in 1...4 { try store.append(message(Int64(id)), partition: 0) }
            try store.remove(msgId: 1)
            // The rewrite stopped after the temporary file was written and renamed, before the
            // directory sync.
            var bytes = RecoverRecord.header()
            for recovered in store.pending() { bytes += RecoverRecord.encode(recovered) }
            try renameWithoutDirectorySync(disk, Self.path, bytes: bytes)
            var rng = SimRandom(seed: seed)
            disk.powerLoss(using: &rng)
            #expect(ids(try open(disk)) == [2, 3, 4], "seed \(seed)")
        }
    }

    @Test func foreignFileIsRefused() throws {
        let disk = SimDisk()
        try disk.makeDirectory("/home/u/.meta_recover/orders@billing")
        let file = try disk.open(Self.path, create: true)
        try file.write(Array("this is not a recover store".utf8), at: 0)
        #expect(throws: StorageError.self) { try open(disk) }
    }
}

/// `RecoverStore.inspect` (behind `metaq recover`): reads what a consumer would replay, and writes nothing.
@Suite("Recover store inspection (reference §5.2)")
struct RecoverStoreInspectTests {
    let base = RecoverStoreTests()

    @Test func listsLiveMessagesInOrderWithoutCuttingATornTail() throws {
        let disk = SimDisk()
        let store = try base.open(disk)
        for id in [5, 3, 9] { try store.append(base.message(Int64(id), attribute: id == 3 ? "red" : nil), brokerId: 1, partition: 2) }
        try store.remove(msgId: 3)
        // A store an earlier version wrote under a name the stores no longer open ('@' in the topic).
        try disk.makeDirectory(RecoverStoreTests.root + "/a@b@x")
        let legacy = try disk.open(RecoverStoreTests.root + "/a@b@x/recover.log", create: true)
        try legacy.write(RecoverRecord.header() + RecoverRecord.encode(RecoveredMessage(
            topic: "a@b", group: "x", brokerId: 0, partition: 0, message: base.message(1))), at: 0)
        _ = try RecoverStore(storage: disk, root: RecoverStoreTests.root, topic: "empty", group: "g")
        let file = try disk.open(RecoverStoreTests.path, create: false)
        try file.write([0, 0, 0, 40, 1, 2], at: store.fileSizeBytes)  // a torn record start
        let sizeBefore = try file.size()

        let stores = try RecoverStore.inspect(storage: disk, root: RecoverStoreTests.root)
        #expect(stores.map { "\($0.topic)|\($0.group)" } == ["a@b|x", "empty|g", "orders|billing"],
                "names from the records where there are any ('@' may be in a topic)")
        let orders = try #require(stores.last)
        #expect(orders.pending.map(\.message.id) == [5, 9] && orders.pending.allSatisfy { $0.brokerId == 1 && $0.partition == 2 })
        #expect(orders.unreadableTailBytes == 6 && orders.path == RecoverStoreTests.path)
        #expect(try file.size() == sizeBefore, "inspection writes nothing")
        #expect(stores[1].pending.isEmpty && stores[1].unreadableTailBytes == 0)
        #expect(try RecoverStore.inspect(storage: disk, root: "/nowhere").isEmpty)
    }

    @Test func aFileThatIsNotARecoverStoreIsAnError() throws {
        let disk = SimDisk()
        try disk.makeDirectory(RecoverStoreTests.root + "/t@g")
        try disk.open(RecoverStoreTests.root + "/t@g/recover.log", create: true).write(Array("not a recover store at all".utf8), at: 0)
        #expect(throws: StorageError.self) { try RecoverStore.inspect(storage: disk, root: RecoverStoreTests.root) }
    }
}

/// Damage in the middle of a recover store (DESIGN.md §4): the records after it are kept, the
/// damaged file is set aside, and the store goes on from a clean file.
@Suite("Recover store damage (reference §5.2, DESIGN.md §4)")
struct RecoverStoreDamageTests {
    let base = RecoverStoreTests()

    @Test func damagedBytesBetweenRecordsAreSkippedAndTheFileKeptAside() throws {
        let disk = SimDisk()
        let store = try base.open(disk)
        for id in 1...4 { try store.append(base.message(Int64(id), size: 50), partition: 0) }
        try store.close()
        // Damage record 2 (the second record starts after the header and record 1).
        let file = try disk.open(RecoverStoreTests.path, create: false)
        let bytes = try file.read(at: 0, count: Int(try file.size()))
        let recordSize = (bytes.count - 8) / 4
        let second = 8 + recordSize
        try file.write([0xde, 0xad, 0xbe, 0xef], at: Int64(second + 20))
        try file.sync()

        let listed = try #require(try RecoverStore.inspect(storage: disk, root: RecoverStoreTests.root).first)
        #expect(listed.pending.map(\.message.id) == [1, 3, 4] && listed.damagedBytes == Int64(recordSize))

        let reopened = try base.open(disk)
        #expect(base.ids(reopened) == [1, 3, 4], "records after the damage are kept")
        #expect(reopened.damagedRanges == [Int64(second)..<Int64(second + recordSize)])
        let copy = try #require(reopened.damagedCopyPath)
        #expect(copy == RecoverStoreTests.path + ".damaged.1")
        #expect(try disk.open(copy, create: false).read(at: 0, count: bytes.count).count == bytes.count, "the damaged file is kept whole")
        #expect(disk.isEntryDurable(copy))
        try reopened.append(base.message(5), partition: 0)
        try reopened.close()
        let clean = try base.open(disk)
        #expect(base.ids(clean) == [1, 3, 4, 5] && clean.damagedRanges.isEmpty && clean.damagedCopyPath == nil)
    }

    /// Garbage only at the end is a torn tail: cut, nothing set aside.
    @Test func garbageAtTheEndIsATornTailNotDamage() throws {
        let disk = SimDisk()
        let store = try base.open(disk)
        try store.append(base.message(1), partition: 0)
        let end = store.fileSizeBytes
        let file = try disk.open(RecoverStoreTests.path, create: false)
        try file.write([0, 0, 0, 99, 1, 2, 3, 4, 5], at: end)
        try store.close()
        let reopened = try base.open(disk)
        #expect(base.ids(reopened) == [1] && reopened.damagedCopyPath == nil && reopened.fileSizeBytes == end)
        #expect(try disk.open(RecoverStoreTests.path, create: false).size() == end)
    }
}

/// Store file slots: one file per consumer process of a group on one machine (§5.2).
@Suite("Recover store slots")
struct RecoverStoreSlotTests {
    let base = RecoverStoreTests()

    @Test func slotNamesRoundTripAndOtherFilesAreNotSlots() {
        for slot in [0, 1, 2, 9, 10, 123] {
            #expect(RecoverStore.slot(ofFileName: RecoverStore.fileName(slot: slot)) == slot)
        }
        #expect(RecoverStore.fileName(slot: 0) == "recover.log" && RecoverStore.fileName(slot: 3) == "recover.3.log")
        for name in ["recover.log.damaged.1", "recover.1.log.tmp", "recover.log.lock", "recover.1.log.lock",
                     "recover..log", "recover.01.log", "recover.-1.log", "recover.x.log", "other.log"] {
            #expect(RecoverStore.slot(ofFileName: name) == nil, "\(name)")
        }
    }

    @Test func slotsAreSeparateFilesAndInspectionListsEach() throws {
        let disk = SimDisk()
        let first = try RecoverStore(storage: disk, root: RecoverStoreTests.root, topic: "orders", group: "billing")
        let second = try RecoverStore(storage: disk, root: RecoverStoreTests.root, topic: "orders", group: "billing", slot: 2)
        try first.append(base.message(1), partition: 0)
        try second.append(base.message(2), partition: 1)
        try second.append(base.message(3), partition: 1)
        #expect(second.path == "/home/u/.meta_recover/orders@billing/recover.2.log")
        let listed = try RecoverStore.inspect(storage: disk, root: RecoverStoreTests.root)
        #expect(listed.map(\.path) == [first.path, second.path])
        #expect(listed.map { $0.pending.map(\.message.id) } == [[1], [2, 3]])
        #expect(base.ids(try RecoverStore(storage: disk, root: RecoverStoreTests.root, topic: "orders", group: "billing", slot: 2)) == [2, 3])
    }
}

/// Issue 14: the client's stores take their directory names from a topic and a group, so their
/// openers refuse a name outside `MetaName` (no crash, nothing created).
@Suite("Store names (issue 14)")
struct StoreNameTests {
    @Test func recoverStoreRefusesNamesThatAreNotOnePathComponent() throws {
        let disk = SimDisk()
        for (topic, group) in [("../x", "g"), ("t", ".."), ("t", "a@b"), ("a/b", "g"), ("t", "g\u{0}"), ("t", "")] {
            #expect(throws: MetaNameError.self, "\(topic)@\(group)") {
                try RecoverStore(storage: disk, root: RecoverStoreTests.root, topic: topic, group: group)
            }
        }
        #expect(!disk.fileExists(RecoverStoreTests.root) && !disk.fileExists("/home/u/x@g"))
    }

    @Test func orderedSpoolRefusesANewLaneWithABadTopic() throws {
        let disk = SimDisk()
        let spool = try OrderedSpool(storage: disk, root: "/spool")
        let lane = OrderedLane(topic: "../escaped", partition: BrokerPartition(brokerId: 0, partition: 0))
        #expect(throws: MetaNameError(what: "topic", name: "../escaped", problem: .forbiddenByte(UInt8(ascii: "/"), at: 2))) {
            try spool.append(lane, flag: 0, payload: [1])
        }
        #expect(try disk.list("/spool").isEmpty && !disk.fileExists("/escaped@0-0"))
        try spool.append(OrderedLane(topic: "ok", partition: lane.partition), flag: 0, payload: [1])
        #expect(try disk.list("/spool") == ["ok@0-0"])
    }
}
