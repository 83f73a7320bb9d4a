import ProtocolCore
import Sim
import Testing
@testable import StoreCore

/// A `Storage` over a `SimDisk` that counts the files open through it, and the most at once.
final class CountingStorage: Storage {
    let disk: SimDisk
    private(set) var openFiles = 0
    private(set) var peakOpenFiles = 0

    init(_ disk: SimDisk) { self.disk = disk }

    func resetPeak() { peakOpenFiles = openFiles }

    func open(_ path: String, create: Bool) throws -> any StorageFile {
        let file = try disk.open(path, create: create)
        openFiles += 1
        peakOpenFiles = max(peakOpenFiles, openFiles)
        return CountedFile(file, storage: self)
    }

    fileprivate func closed() { openFiles -= 1 }

    func list(_ directory: String) throws -> [String] { try disk.list(directory) }
    func fileExists(_ path: String) -> Bool { disk.fileExists(path) }
    func isDirectory(_ path: String) -> Bool { disk.isDirectory(path) }
    func makeDirectory(_ path: String) throws { try disk.makeDirectory(path) }
    func rename(_ from: String, to: String) throws { try disk.rename(from, to: to) }
    func remove(_ path: String) throws { try disk.remove(path) }
    func syncDirectory(_ path: String) throws { try disk.syncDirectory(path) }
    func modificationTimeMs(_ path: String) throws -> Int64 { try disk.modificationTimeMs(path) }
}

private final class CountedFile: StorageFile {
    let base: any StorageFile
    let storage: CountingStorage
    private var isOpen = true

    init(_ base: any StorageFile, storage: CountingStorage) {
        self.base = base
        self.storage = storage
    }

    var path: String { base.path }
    func size() throws -> Int64 { try base.size() }
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws { try base.write(bytes, at: offset) }
    func read(at offset: Int64, count: Int) throws -> [UInt8] { try base.read(at: offset, count: count) }
    func withBytes<R>(at offset: Int64, count: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try base.withBytes(at: offset, count: count, body)
    }
    func sync() throws { try base.sync() }
    func truncate(to size: Int64) throws { try base.truncate(to: size) }
    func close() throws {
        try base.close()
        if isOpen { storage.closed() }
        isOpen = false
    }
}

/// Issue 14: one descriptor per partition (its active segment), not one per segment file; sealed
/// segments are opened for the one read, sync or retention step that needs them (reference §2.5).
@Suite("Segment descriptors")
struct SegmentDescriptorTests {
    /// 80 rolls leave one file open, reads of sealed segments open and close theirs, and every
    /// message stays readable.
    @Test func onlyTheActiveSegmentStaysOpen() throws {
        let storage = CountingStorage(SimDisk())
        let log = try PartitionLog.open(storage: storage, directory: dir,
                                        config: LogConfig(maxSegmentSize: 50, flushPolicy: .groupCommit), now: t0)
        for i in 0..<160 { _ = try log.append(msgId: Int64(i + 1), flag: 0, payload: payload(i), now: t0) }
        try log.syncNow(now: t0)
        #expect(log.segmentCount == 80)
        #expect(storage.openFiles == 1)
        #expect(try readAll(log).map(\.id) == (1...160).map(Int64.init))
        #expect(storage.openFiles == 1)
        log.close()
        #expect(storage.openFiles == 0)
    }

    /// Recovery opens the segments one at a time, syncs every one, and keeps only the last open.
    @Test func recoveryOpensSegmentsOneAtATime() throws {
        let disk = SimDisk()
        let config = LogConfig(maxSegmentSize: 50, flushPolicy: .groupCommit)
        let first = try openLog(disk, config)
        for i in 0..<40 { _ = try first.append(msgId: Int64(i + 1), flag: 0, payload: payload(i), now: t0) }
        try first.syncNow(now: t0)
        first.close()
        let storage = CountingStorage(disk)
        let log = try PartitionLog.open(storage: storage, directory: dir, config: config, now: t0)
        #expect(log.segmentCount == 20)
        #expect(storage.openFiles == 1)
        #expect(storage.peakOpenFiles <= 2)
        #expect(try readAll(log).count == 40)
    }

    /// A segment sealed while a sync that holds its file runs is closed when that sync completes,
    /// not under it.
    @Test func segmentSealedDuringASyncClosesAfterIt() throws {
        let storage = CountingStorage(SimDisk())
        let log = try PartitionLog.open(storage: storage, directory: dir,
                                        config: LogConfig(maxSegmentSize: 50, flushPolicy: .groupCommit), now: t0)
        _ = try log.append(msgId: 1, flag: 0, payload: payload(1), now: t0)
        let batch = try #require(log.beginSync().batch)
        for i in 2...4 { _ = try log.append(msgId: Int64(i), flag: 0, payload: payload(i), now: t0) }
        #expect(log.segmentCount == 2)
        #expect(storage.openFiles == 2, "the batch may still sync the sealed segment's file")
        try batch.perform()
        _ = log.completeSync(batch, now: t0)
        #expect(storage.openFiles == 1)
        try log.syncNow(now: t0)
        #expect(try readAll(log).map(\.id) == [1, 2, 3, 4])
    }

    /// Retention removes closed sealed segments; the active one stays open.
    @Test func retentionRemovesClosedSegments() throws {
        let disk = SimDisk()
        let storage = CountingStorage(disk)
        let log = try PartitionLog.open(storage: storage, directory: dir,
                                        config: LogConfig(maxSegmentSize: 50, flushPolicy: .groupCommit), now: t0)
        for i in 0..<6 { _ = try log.append(msgId: Int64(i + 1), flag: 0, payload: payload(i), now: t0) }
        try log.syncNow(now: t0)
        disk.nowMs = 10_000_000
        let removed = try log.applyRetention(DeletePolicy(parsing: "delete,1s"), nowMs: 20_000_000)
        #expect(removed.map(\.segmentStart) == [0, 50])
        #expect(log.segmentStarts == [100])
        #expect(storage.openFiles == 1)
    }
}

/// The descriptors a broker may need, compared with its limit at start.
@Suite("Descriptor budget")
struct DescriptorBudgetTests {
    /// Configured topics count with their partition counts, partitions on disk too (also of a
    /// pattern topic or one no longer configured), each once; patterns alone count nothing.
    @Test func partitionsConfiguredAndOnDisk() throws {
        let ini = """
            [system]
            brokerId=1
            numPartitions=2
            maxConnections=500
            [topic=test]
            [topic=wide]
            numPartitions=5
            [topic=log-*]
            numPartitions=8
            """
        let disk = SimDisk()
        let stores = PartitionStores(storage: disk, config: try ServerConfig(parsing: ini, path: "server.ini"),
                                     defaultDataPath: "/meta")
        #expect(stores.descriptorBudget() == DescriptorBudget(partitions: 7, maxConnections: 500))
        for partition in [TopicPartition("test", 1), TopicPartition("log-app", 3), TopicPartition("gone", 0)] {
            _ = try stores.logCreatingIfNeeded(partition, now: .zero)
        }
        let budget = stores.descriptorBudget()
        #expect(budget.partitions == 9)
        #expect(budget.needed == 9 + 500 + DescriptorBudget.headroom)
    }
}
