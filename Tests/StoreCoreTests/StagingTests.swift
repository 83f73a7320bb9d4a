import ProtocolCore
import Sim
import Testing
@testable import StoreCore

/// `stage` / `flushWrites`: the broker batches a loop tick's puts into one write per log (§2.4).
@Suite("Staged appends")
struct StagingTests {
    let segment = dir + "/" + SegmentName.name(forStart: 0)

    @Test func stagedRecordsReachTheFileOnlyAtFlush() throws {
        let disk = SimDisk()
        let log = try openLog(disk, LogConfig(flushPolicy: .metaqDefault))
        let first = try log.stage(msgId: 1, flag: 0, payload: payload(1))
        let second = try log.stage(msgId: 2, flag: 7, payload: payload(2, size: 9))
        #expect(first == AppendOutcome(offset: 0, acknowledged: true))
        #expect(second.offset == 25, "offsets count staged bytes")
        #expect(log.writtenOffset == 25 + 29)
        #expect(log.stagedByteCount == 54)
        #expect(disk.currentBytes(segment) == [], "nothing written before the flush")
        try log.flushWrites()
        #expect(log.stagedByteCount == 0)
        let expected = Record.encode(msgId: 1, flag: 0, payload: payload(1))
            + Record.encode(msgId: 2, flag: 7, payload: payload(2, size: 9))
        #expect(disk.currentBytes(segment) == expected, "one write, byte-identical to appends")
    }

    /// Issue 18: a log keeps a small staging buffer between writes; a tick that staged more than
    /// that gives the memory back once written (1,000 partitions once kept 256 KiB each).
    @Test func aLargeTicksStagingMemoryIsGivenBackAfterItsWrite() throws {
        let disk = SimDisk()
        let log = try openLog(disk, LogConfig(flushPolicy: .metaqDefault))
        _ = try log.stage(msgId: 1, flag: 0, payload: payload(1))
        try log.flushWrites()
        let small = log.stagingCapacity
        let kept = 2 * PartitionLog.retainedStagingBytes
        #expect(small >= PartitionLog.retainedStagingBytes && small <= kept, "a small tick keeps its buffer (\(small))")
        var expected = Record.encode(msgId: 1, flag: 0, payload: payload(1))
        for i in 2...40 {
            _ = try log.stage(msgId: Int64(i), flag: 0, payload: payload(i, size: 4000))
            expected += Record.encode(msgId: Int64(i), flag: 0, payload: payload(i, size: 4000))
        }
        #expect(log.stagingCapacity > kept, "a large tick grows it")
        try log.flushWrites()
        #expect(log.stagingCapacity <= kept, "and gives it back once written")
        #expect(disk.currentBytes(segment) == expected, "everything staged was written")
    }

    @Test func aVerifiedChecksumIsStoredAsGiven() throws {
        let disk = SimDisk()
        let log = try openLog(disk, LogConfig(flushPolicy: .metaqDefault))
        let data = payload(3, size: 40)
        _ = try log.stage(msgId: 9, flag: 0, payload: data, checksum: CRC32.metaqChecksum(data))
        try log.flushWrites()
        #expect(disk.currentBytes(segment) == Record.encode(msgId: 9, flag: 0, payload: data))
    }

    @Test func aSyncWritesStagedRecordsFirst() throws {
        let disk = SimDisk()
        let log = try openLog(disk)  // group commit
        for i in 1...3 { _ = try log.stage(msgId: Int64(i), flag: 0, payload: payload(i), ticket: UInt64(i)) }
        let batch = try #require(log.beginSync().batch)
        #expect(log.stagedByteCount == 0)
        #expect(batch.upTo == 75)
        try batch.perform()
        #expect(log.completeSync(batch, now: t0) == [1, 2, 3])
        #expect(disk.durableBytes(segment)?.count == 75)
        #expect(try readAll(log).map(\.id) == [1, 2, 3])
    }

    /// The broker times a batch from its first write; the log says which write that is.
    @Test func writesAwaitingTheNextSyncAreThoseBeyondTheLastBegunSync() throws {
        let disk = SimDisk()
        let log = try openLog(disk)  // group commit
        #expect(!log.hasWritesAwaitingNextSync)
        _ = try log.stage(msgId: 1, flag: 0, payload: payload(1), ticket: 1)
        #expect(!log.hasWritesAwaitingNextSync, "staged is not written")
        try log.flushWrites()
        #expect(log.hasWritesAwaitingNextSync)
        let batch = try #require(log.beginSync().batch)
        #expect(!log.hasWritesAwaitingNextSync, "the begun sync covers every written byte")
        _ = try log.stage(msgId: 2, flag: 0, payload: payload(2), ticket: 2)
        try log.flushWrites()
        #expect(log.hasWritesAwaitingNextSync, "written while the sync runs: waits for the next one")
        try batch.perform()
        #expect(log.completeSync(batch, now: t0) == [1])
        #expect(log.hasWritesAwaitingNextSync)
        let next = try #require(log.beginSync().batch)
        try next.perform()
        #expect(log.completeSync(next, now: t0) == [2])
        #expect(!log.hasWritesAwaitingNextSync)
    }

    @Test func rollingWritesTheStagedTailOfTheOldSegment() throws {
        let disk = SimDisk()
        let log = try openLog(disk, LogConfig(maxSegmentSize: 50, flushPolicy: .metaqDefault))
        for i in 1...3 { _ = try log.stage(msgId: Int64(i), flag: 0, payload: payload(i)) }
        #expect(log.segmentStarts == [0, 50], "the third record starts a new segment")
        #expect(disk.currentBytes(segment)?.count == 50, "the sealed segment was written before the roll")
        try log.flushWrites()
        #expect(disk.currentBytes(dir + "/" + SegmentName.name(forStart: 50))?.count == 25)
    }

    @Test func aFailedWriteFailsTheLog() throws {
        let disk = SimDisk()
        let log = try openLog(disk, LogConfig(flushPolicy: .metaqDefault))
        _ = try log.stage(msgId: 1, flag: 0, payload: payload(1))
        disk.maxFileSizeBytes = 10  // the write of 25 bytes now fails
        #expect(throws: LogError.self) { try log.flushWrites() }
        #expect(log.isFailed)
        // What failed is kept for the error texts of later puts (issue 14).
        #expect(log.failure?.operation == .write)
        #expect(log.failure?.description.hasPrefix("write failed: I/O error on \(dir)/") == true, "\(String(describing: log.failure))")
        #expect(throws: LogError.self) { _ = try log.stage(msgId: 2, flag: 0, payload: payload(2)) }
    }

    @Test func stagedRecordsDoNotSurviveACrashButWrittenOnesDo() throws {
        let disk = SimDisk()
        var log = try openLog(disk, LogConfig(flushPolicy: .metaqDefault))
        _ = try log.stage(msgId: 1, flag: 0, payload: payload(1))
        try log.flushWrites()
        _ = try log.stage(msgId: 2, flag: 0, payload: payload(2))
        disk.crash()
        log = try openLog(disk, LogConfig(flushPolicy: .metaqDefault))
        #expect(log.maxOffset == 25, "the written record survives a process crash; the staged one was never acknowledged")
        #expect(try readAll(log).map(\.id) == [1])
    }
}
