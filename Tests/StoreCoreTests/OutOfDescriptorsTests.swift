import ProtocolCore
import Sim
import Testing
@testable import StoreCore

/// A directory that cannot be opened for its fsync because the process is out of descriptors
/// (`StorageError.exhausted`) is not a failed sync: nothing was done to the data, so the log
/// stays open and tries again, unlike after an fsync error (DESIGN.md §4). Issue 14: running out
/// of descriptors must not take partitions out of service for good.
@Suite("Partition log out of descriptors")
struct OutOfDescriptorsTests {
    static let exhausted = StorageError.exhausted(path: dir, detail: "open: Too many open files (EMFILE)")

    /// A group-commit sync whose directory could not be opened is postponed: its appends keep
    /// waiting and are acknowledged by the retry, `syncRetryDelayMs` later.
    @Test func syncThatCannotOpenTheDirectoryIsRetried() throws {
        let disk = SimDisk()
        let log = try openLog(disk, LogConfig(maxSegmentSize: 50, flushPolicy: .groupCommit))
        for i in 0..<3 { _ = try log.append(msgId: Int64(i + 1), flag: 0, payload: payload(i), ticket: UInt64(i + 1), now: t0) }
        #expect(log.segmentCount == 2, "the third append rolled: the new segment's entry needs a directory sync")
        disk.failNextDirectorySync = Self.exhausted
        let batch = try #require(log.beginSync().batch)
        #expect(throws: Self.exhausted) { try batch.perform() }
        log.postponeSync(batch, error: Self.exhausted, now: t0)
        #expect(!log.isFailed && log.pendingAcknowledgements == 3, "nothing acknowledged, nothing abandoned")
        #expect(!log.syncDue(now: t0.adding(milliseconds: PartitionLog.syncRetryDelayMs - 1)))
        #expect(log.nextSyncDeadline() == t0.adding(milliseconds: PartitionLog.syncRetryDelayMs))
        let retry = try #require(log.syncDue(now: t0.adding(milliseconds: PartitionLog.syncRetryDelayMs)) ? log.beginSync().batch : nil)
        try retry.perform()
        #expect(log.completeSync(retry, now: t0) == [1, 2, 3])
        #expect(log.nextSyncDeadline() == nil && log.maxOffset == 75)
        #expect(disk.isEntryDurable(dir + "/" + SegmentName.name(forStart: 50)))
    }

    /// A roll whose directory sync cannot open the directory refuses that append with the cause,
    /// and the next append rolls; the log never fails.
    @Test func rollThatCannotOpenTheDirectoryRefusesOnlyThatAppend() throws {
        let disk = SimDisk()
        let log = try openLog(disk, LogConfig(maxSegmentSize: 50, flushPolicy: .groupCommit))
        for i in 0..<2 { _ = try log.append(msgId: Int64(i + 1), flag: 0, payload: payload(i), ticket: UInt64(i + 1), now: t0) }
        disk.failNextDirectorySync = Self.exhausted
        #expect(throws: LogError.storage(Self.exhausted)) {
            try log.append(msgId: 3, flag: 0, payload: payload(2), ticket: 3, now: t0)
        }
        #expect(!log.isFailed && log.segmentCount == 1)
        let outcome = try log.append(msgId: 4, flag: 0, payload: payload(3), ticket: 4, now: t0)
        #expect(outcome.offset == 50 && log.segmentCount == 2)
        #expect(try log.syncNow(now: t0) == [1, 2, 4])
    }

    /// Any other error of the directory sync is final, as before.
    @Test func otherDirectorySyncErrorsStillFailTheLog() throws {
        let disk = SimDisk()
        let log = try openLog(disk, LogConfig(maxSegmentSize: 50, flushPolicy: .groupCommit))
        for i in 0..<2 { _ = try log.append(msgId: Int64(i + 1), flag: 0, payload: payload(i), now: t0) }
        disk.failNextDirectorySync = .io(path: dir, detail: "fsync: Input/output error (EIO)")
        #expect(throws: LogError.self) { try log.append(msgId: 3, flag: 0, payload: payload(2), now: t0) }
        #expect(log.isFailed)
    }
}
