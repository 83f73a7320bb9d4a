import ProtocolCore
import Sim
import Testing
@testable import StoreCore

@Suite("Recovery on open (reference §2.6, DESIGN.md §4)")
struct RecoveryTests {
    let segment0 = "\(dir)/00000000000000000000.meta"

    func logWith(_ count: Int, disk: SimDisk, config: LogConfig = LogConfig(flushPolicy: .groupCommit)) throws -> PartitionLog {
        let log = try openLog(disk, config)
        for i in 0..<count { _ = try log.append(msgId: Int64(i + 1), flag: 0, payload: payload(i), now: t0) }
        try log.syncNow(now: t0)
        return log
    }

    @Test func reopenKeepsEverythingAndAppendsContinue() throws {
        let disk = SimDisk()
        try logWith(3, disk: disk).close()
        let log = try openLog(disk)
        #expect(log.recoveryReport.scannedRecordCount == 3)
        #expect(log.recoveryReport.truncatedBytes == 0)
        #expect(log.maxOffset == 75)
        #expect(try log.append(msgId: 4, flag: 0, payload: payload(4), now: t0).offset == 75)
    }

    @Test func tornTailIsTruncated() throws {
        let disk = SimDisk()
        try logWith(2, disk: disk).close()
        let third = Record.encode(msgId: 3, flag: 0, payload: payload(3))
        try overwrite(disk, segment0, at: 50, with: Array(third.prefix(13)))
        let log = try openLog(disk)
        #expect(log.recoveryReport.truncatedBytes == 13)
        #expect(log.maxOffset == 50)
        #expect(try readAll(log).map(\.id) == [1, 2])
        #expect(disk.durableBytes(segment0)?.count == 50)
    }

    /// Zero fill would pass a naive CRC check (CRC32 of nothing is 0); it is a torn tail.
    @Test func zeroFilledTailIsTruncated() throws {
        let disk = SimDisk()
        try logWith(2, disk: disk).close()
        try overwrite(disk, segment0, at: 50, with: [UInt8](repeating: 0, count: 100))
        let log = try openLog(disk)
        #expect(log.recoveryReport.truncatedBytes == 100)
        #expect(log.recoveryReport.damagedRanges.isEmpty)
    }

    /// Beyond the original: a damaged record before the tail does not cost the good records after it.
    @Test func damageBeforeTheTailIsIsolated() throws {
        let disk = SimDisk()
        try logWith(5, disk: disk).close()
        try overwrite(disk, segment0, at: 25 + 21, with: [0xEE])
        let log = try openLog(disk)
        #expect(log.recoveryReport.damagedRanges == [25..<50])
        #expect(log.recoveryReport.truncatedBytes == 0)
        #expect(log.recoveryReport.description.contains("DAMAGED"))
        #expect(log.maxOffset == 125)
        #expect(try readAll(log).map(\.id) == [1, 3, 4, 5])
        #expect(log.read(offset: 25, maxBytes: 100) == .damaged(resumeAt: 50))
        #expect(log.read(offset: 30, maxBytes: 100) == .damaged(resumeAt: 50))
        guard case .slice(let head) = log.read(offset: 0, maxBytes: 1000) else { Issue.record("no slice"); return }
        #expect(head.count == 25, "a slice stops before damage")
    }

    /// Damage found once stays isolated after its segment stops being the last one (only the last
    /// segment is scanned on open): it is recorded durably beside the segments.
    @Test func damageStaysIsolatedAfterARoll() throws {
        let disk = SimDisk()
        let config = LogConfig(maxSegmentSize: 125, flushPolicy: .groupCommit)
        try logWith(5, disk: disk, config: config).close()
        try overwrite(disk, segment0, at: 25 + 21, with: [0xEE])
        var log = try openLog(disk, config)
        #expect(log.recoveryReport.newDamagedRanges == [25..<50])
        #expect(disk.currentBytes("\(dir)/damaged-ranges") == Array("25 50\n".utf8))
        for i in 5..<8 { _ = try log.append(msgId: Int64(i + 1), flag: 0, payload: payload(i), now: t0) }
        try log.syncNow(now: t0)
        #expect(log.segmentStarts == [0, 125])
        log.close()
        log = try openLog(disk, config)
        #expect(log.recoveryReport.newDamagedRanges.isEmpty)
        #expect(log.damagedRanges == [25..<50])
        #expect(try readAll(log).map(\.id) == [1, 3, 4, 5, 6, 7, 8])
        // Retention forgets damage in the segments it removes.
        disk.nowMs = 10_000_000
        _ = try log.applyRetention(try DeletePolicy(parsing: "delete,1s"), nowMs: 20_000_000)
        #expect(log.damagedRanges.isEmpty)
        #expect(!disk.fileExists("\(dir)/damaged-ranges"))
    }

    /// A slave cuts its copy back to where damage starts and copies the rest again: the damage
    /// goes with the bytes, from memory and from `damaged-ranges`, so what is appended there later
    /// is served.
    @Test func truncatingToDamageForgetsIt() throws {
        let disk = SimDisk()
        try logWith(5, disk: disk).close()
        try overwrite(disk, segment0, at: 25 + 21, with: [0xEE])
        var log = try openLog(disk)
        #expect(log.damagedRanges == [25..<50] && disk.fileExists("\(dir)/damaged-ranges"))
        try log.truncate(to: 25)
        #expect(log.damagedRanges.isEmpty && !disk.fileExists("\(dir)/damaged-ranges") && log.maxOffset == 25)
        for i in 1..<5 { _ = try log.append(msgId: Int64(i + 1), flag: 0, payload: payload(i), now: t0) }
        try log.syncNow(now: t0)
        log.close()
        log = try openLog(disk)
        #expect(log.damagedRanges.isEmpty && log.maxOffset == 125)
        #expect(try readAll(log).map(\.id) == [1, 2, 3, 4, 5])
    }

    /// A follower one term behind cuts back to where its leader's term began even when that is
    /// several segments back (the failover sweep's seed 16891: re-creating the partition instead
    /// discarded the only other copy of an acknowledged put). The later segments go, the one
    /// holding the offset becomes the active segment, appends continue there, and a reopen finds
    /// exactly the cut log.
    @Test func truncatingAcrossSegmentsRemovesTheLaterOnesAndAppendsContinue() throws {
        let disk = SimDisk()
        let config = LogConfig(maxSegmentSize: 50, flushPolicy: .groupCommit)
        var log = try logWith(7, disk: disk, config: config)
        #expect(log.segmentStarts.count >= 3)
        try log.truncate(to: 75)
        #expect(log.maxOffset == 75 && log.writtenOffset == 75)
        #expect(log.segmentStarts.allSatisfy { $0 <= 75 })
        #expect(try readAll(log).map(\.id) == [1, 2, 3])
        _ = try log.append(msgId: 10, flag: 0, payload: payload(10), now: t0)
        try log.syncNow(now: t0)
        #expect(try readAll(log).map(\.id) == [1, 2, 3, 10])
        log.close()
        var rng = SimRandom(seed: 16891)
        disk.powerLoss(using: &rng)
        log = try openLog(disk, config)
        #expect(log.maxOffset == 100)
        #expect(try readAll(log).map(\.id) == [1, 2, 3, 10])
        // A cut to a segment's first offset empties that segment and keeps it as the active one.
        try log.truncate(to: 50)
        #expect(log.writtenOffset == 50 && log.segmentStarts.last == 50)
        #expect(try readAll(log).map(\.id) == [1, 2])
    }

    @Test func corruptLengthFieldIsIsolatedToo() throws {
        let disk = SimDisk()
        try logWith(6, disk: disk).close()
        try overwrite(disk, segment0, at: 50, with: [0x00, 0x00, 0x00, 0x30])
        let log = try openLog(disk)
        #expect(log.recoveryReport.damagedRanges == [50..<75])
        #expect(try readAll(log).map(\.id) == [1, 2, 4, 5, 6])
    }

    /// A last record damaged with nothing valid after it is a torn tail, not kept damage.
    @Test func damagedLastRecordIsTruncated() throws {
        let disk = SimDisk()
        try logWith(3, disk: disk).close()
        try overwrite(disk, segment0, at: 50 + 22, with: [0xEE])
        let log = try openLog(disk)
        #expect(log.recoveryReport.damagedRanges.isEmpty)
        #expect(log.recoveryReport.truncatedBytes == 25)
    }

    /// A segment that lost its tail, followed by later segments: nothing in the later ones was
    /// ever synced (syncs cover older segments first), so they go.
    @Test func segmentsAfterATornOneAreRemoved() throws {
        let disk = SimDisk()
        try logWith(5, disk: disk, config: LogConfig(maxSegmentSize: 50, flushPolicy: .groupCommit)).close()
        #expect(try disk.list(dir).count == 3)
        let file = try disk.open(segment0, create: false)
        try file.truncate(to: 40)
        try file.sync()
        try file.close()
        let log = try openLog(disk, LogConfig(maxSegmentSize: 50, flushPolicy: .groupCommit))
        #expect(log.recoveryReport.removedSegments == ["00000000000000000050.meta", "00000000000000000100.meta"])
        #expect(log.segmentStarts == [0])
        #expect(log.maxOffset == 25)
        #expect(try disk.list(dir) == ["00000000000000000000.meta"])
    }

    @Test func overlappingSegmentsStopTheOpen() throws {
        let disk = SimDisk()
        try logWith(3, disk: disk, config: LogConfig(maxSegmentSize: 50, flushPolicy: .groupCommit)).close()
        try overwrite(disk, segment0, at: 50, with: [1, 2, 3])
        #expect {
            try openLog(disk)
        } throws: { error in
            guard case .segmentsNotContiguous(let d, let detail)? = error as? LogError else { return false }
            return d == dir && detail.contains("00000000000000000050.meta")
        }
    }
}
