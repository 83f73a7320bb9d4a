import ProtocolCore
import Sim
import Testing
@testable import StoreCore

@Suite("Flush policy and group commit (reference §2.4)")
struct FlushPolicyTests {
    /// `unflushThreshold > 0`: a sync is due when the unsynced appends exceed the threshold.
    @Test func thresholdRule() throws {
        let log = try openLog(SimDisk(), LogConfig(flushPolicy: FlushPolicy(unflushThreshold: 3, unflushIntervalMs: 10_000)))
        #expect(!log.syncDue(now: t0))
        for i in 0..<3 {
            _ = try log.append(msgId: Int64(i + 1), flag: 0, payload: payload(i), now: t0)
            #expect(!log.syncDue(now: t0), "\(i + 1) appends are not more than 3")
        }
        _ = try log.append(msgId: 4, flag: 0, payload: payload(4), now: t0)
        #expect(log.syncDue(now: t0))
        try log.syncNow(now: t0)
        #expect(!log.syncDue(now: t0))
        #expect(log.maxOffset == 100)
    }

    @Test func intervalRule() throws {
        let log = try openLog(SimDisk(), LogConfig(flushPolicy: FlushPolicy(unflushThreshold: 1000, unflushIntervalMs: 500)))
        #expect(log.nextSyncDeadline() == nil)
        _ = try log.append(msgId: 1, flag: 0, payload: payload(1), now: t0)
        #expect(log.nextSyncDeadline() == t0.adding(milliseconds: 500))
        #expect(!log.syncDue(now: t0.adding(milliseconds: 499)))
        #expect(log.syncDue(now: t0.adding(milliseconds: 500)))
        try log.syncNow(now: t0.adding(milliseconds: 600))
        #expect(log.nextSyncDeadline() == nil)
        _ = try log.append(msgId: 2, flag: 0, payload: payload(2), now: t0)
        #expect(log.nextSyncDeadline() == t0.adding(milliseconds: 1100))
    }

    /// Group commit: a put is acknowledged only after a sync covers it; a sync acknowledges the
    /// appends made before it began, not those that arrived while it ran.
    @Test func groupCommitAcknowledgesAfterSync() throws {
        let log = try openLog(SimDisk())
        let outcome = try log.append(msgId: 1, flag: 0, payload: payload(1), ticket: 101, now: t0)
        #expect(!outcome.acknowledged)
        _ = try log.append(msgId: 2, flag: 0, payload: payload(2), ticket: 102, now: t0)
        #expect(log.syncDue(now: t0))
        let batch = try #require(log.beginSync().batch)
        #expect(log.beginSync().batch == nil, "one sync at a time")
        #expect(!log.syncDue(now: t0))
        _ = try log.append(msgId: 3, flag: 0, payload: payload(3), ticket: 103, now: t0)
        try batch.perform()
        #expect(log.completeSync(batch, now: t0) == [101, 102])
        #expect(log.maxOffset == 50)
        #expect(log.pendingAcknowledgements == 1)
        #expect(try log.syncNow(now: t0) == [103])
        #expect(log.completeSync(batch, now: t0) == [], "a batch completes once")
    }

    /// DESIGN.md §4: a failed fsync is fatal for the log; waiting appends are failed, not retried.
    @Test func failedSyncFailsTheLog() throws {
        let disk = SimDisk()
        let log = try openLog(disk)
        _ = try log.append(msgId: 1, flag: 0, payload: payload(1), ticket: 1, now: t0)
        _ = try log.append(msgId: 2, flag: 0, payload: payload(2), ticket: 2, now: t0)
        let batch = try #require(log.beginSync().batch)
        disk.failNextSync = true
        #expect(throws: StorageError.self) { try batch.perform() }
        #expect(log.failSync(batch, error: .io(path: dir, detail: "EIO")) == [1, 2])
        #expect(log.isFailed)
        #expect(log.failure == LogFailure(operation: .sync, error: .io(path: dir, detail: "EIO")))
        #expect(log.failure?.description == "sync failed: I/O error on \(dir): EIO")
        #expect(log.maxOffset == 0)
        #expect(throws: LogError.failed(.io(path: dir, detail: "EIO"))) {
            try log.append(msgId: 3, flag: 0, payload: payload(3), now: t0)
        }
        #expect(!log.syncDue(now: t0))
        #expect(log.beginSync().batch == nil)
    }

    @Test func pendingAppendsAreBounded() throws {
        let log = try openLog(SimDisk(), LogConfig(flushPolicy: .groupCommit, maxPendingAppends: 3))
        for i in 0..<3 { _ = try log.append(msgId: Int64(i + 1), flag: 0, payload: payload(i), ticket: UInt64(i), now: t0) }
        #expect(throws: LogError.tooManyPendingAppends(limit: 3)) {
            try log.append(msgId: 9, flag: 0, payload: payload(9), now: t0)
        }
        try log.syncNow(now: t0)
        _ = try log.append(msgId: 10, flag: 0, payload: payload(10), now: t0)
    }
}
