import ProtocolCore
import Sim
import Testing
@testable import StoreCore

/// What a transaction commit needs of a partition log (reference §4.5): its batch kept out of the
/// file until the commit entry is durable, and at start-up a check that a committed batch is
/// where the journal says, and a cut before a torn one is appended again.
@Suite("Partition log write holds and batch checks")
struct WriteHoldTests {
    let segment = dir + "/" + SegmentName.name(forStart: 0)

    @Test func heldRecordsStayOutOfTheFileAndOutOfSyncsUntilReleased() throws {
        let disk = SimDisk()
        let log = try openLog(disk)  // group commit
        _ = try log.stage(msgId: 1, flag: 0, payload: payload(1), ticket: 1)
        try log.holdWrites()
        let held = try log.stage(msgId: 2, flag: 0, payload: payload(2), ticket: 2)
        #expect(held.offset == 25, "a held record gets its offset at once")
        try log.flushWrites()
        #expect((disk.currentBytes(segment) ?? []).isEmpty, "a flush writes nothing while held, what was staged before either")
        #expect(!log.syncDue(now: t0) && log.nextSyncDeadline() == nil)
        guard case .idle = log.beginSync() else { Issue.record("a held log must not begin a sync"); return }
        log.releaseWrites()
        #expect(log.syncDue(now: t0))
        let batch = try #require(log.beginSync().batch)
        try batch.perform()
        #expect(log.completeSync(batch, now: t0) == [1, 2])
        #expect(try readAll(log).map(\.id) == [1, 2])
    }

    @Test func holdsNestAndAHeldLogNeitherRollsNorGrowsWithoutBound() throws {
        let disk = SimDisk()
        var config = LogConfig(flushPolicy: .metaqDefault)
        config.maxSegmentSize = 50
        let log = try openLog(disk, config)
        try log.holdWrites()
        try log.holdWrites()
        for i in 1...4 { _ = try log.stage(msgId: Int64(i), flag: 0, payload: payload(i)) }
        #expect(log.segmentCount == 1, "no roll while held: the batch stays in one segment")
        log.releaseWrites()
        try log.flushWrites()
        #expect(disk.currentBytes(segment)?.count ?? 0 == 0, "one hold is still taken")
        log.releaseWrites()
        try log.flushWrites()
        #expect(disk.currentBytes(segment)?.count == 100)
        _ = try log.stage(msgId: 5, flag: 0, payload: payload(5))
        #expect(log.segmentCount == 2, "released, the full segment rolls again")

        try log.holdWrites()
        let big = [UInt8](repeating: 7, count: 1 << 20)
        var refused: LogError?
        for i in 0..<(PartitionLog.maxHeldBytes >> 20) + 2 {
            do { _ = try log.stage(msgId: Int64(100 + i), flag: 0, payload: big) } catch {
                refused = error
                break
            }
        }
        #expect(refused == .tooManyHeldBytes(limit: PartitionLog.maxHeldBytes))
        #expect(log.stagedByteCount <= PartitionLog.maxHeldBytes + (1 << 20) + Record.headerSize)
    }

    @Test func aBatchIsFoundByItsChecksumAndATornOneIsCutOff() throws {
        let disk = SimDisk()
        let log = try openLog(disk)
        var batch: [UInt8] = []
        for i in 1...3 { batch += Record.encode(msgId: Int64(i), flag: 0, payload: payload(i)) }
        let checksum = CRC32.metaqChecksum(batch)
        _ = try log.append(records: batch, now: t0)
        let sync = try #require(log.beginSync().batch)
        try sync.perform()
        _ = log.completeSync(sync, now: t0)
        #expect(try log.holdsBatch(at: 0, length: Int32(batch.count), checksum: checksum))
        #expect(try !log.holdsBatch(at: 0, length: Int32(batch.count), checksum: checksum ^ 1), "another batch")
        #expect(try !log.holdsBatch(at: 25, length: Int32(batch.count), checksum: checksum), "past the end")

        try log.truncate(to: 25)
        #expect(log.writtenOffset == 25 && log.recordCount == 1)
        #expect(disk.durableBytes(segment)?.count == 25, "the cut is durable")
        #expect(try !log.holdsBatch(at: 0, length: Int32(batch.count), checksum: checksum))
        #expect(throws: LogError.self) { try log.truncate(to: 26) }
        _ = try log.append(records: Array(batch[25...]), now: t0)
        #expect(try log.holdsBatch(at: 0, length: Int32(batch.count), checksum: checksum) == false,
                "unsynced bytes are not checked")
        let again = try #require(log.beginSync().batch)
        try again.perform()
        _ = log.completeSync(again, now: t0)
        #expect(try readAll(log).map(\.id) == [1, 2, 3])
    }
}
