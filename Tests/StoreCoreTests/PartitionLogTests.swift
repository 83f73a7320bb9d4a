import ProtocolCore
import Sim
import Testing
@testable import StoreCore

@Suite("Partition log (reference §2)")
struct PartitionLogTests {
    @Test func firstSegmentIsNamedLikeMetaQ() throws {
        let disk = SimDisk()
        let log = try openLog(disk)
        #expect(try disk.list(dir) == ["00000000000000000000.meta"])
        #expect(log.recoveryReport.createdFirstSegment)
        #expect(SegmentName.name(forStart: 1_073_741_855) == "00000000001073741855.meta")
        #expect(SegmentName.start(of: "00000000001073741855.meta") == 1_073_741_855)
        #expect(SegmentName.start(of: "00000000000000000000.meta.arc") == nil)
        #expect(SegmentName.start(of: "x.meta") == nil)
    }

    /// §2.3: only synced bytes are readable; offsets are byte positions, next = offset + 20 + length.
    @Test func onlySyncedBytesAreReadable() throws {
        let disk = SimDisk()
        let log = try openLog(disk, LogConfig(flushPolicy: .metaqDefault))
        let first = try log.append(msgId: 1, flag: 0, payload: payload(1), now: t0)
        let second = try log.append(msgId: 2, flag: 0, payload: payload(2), now: t0)
        #expect(first == AppendOutcome(offset: 0, acknowledged: true))
        #expect(second.offset == 25)
        #expect(log.read(offset: 0, maxBytes: 100) == .atOrBeyondEnd(maxOffset: 0))
        try log.syncNow(now: t0)
        #expect(log.maxOffset == 50)
        #expect(try readAll(log).map(\.id) == [1, 2])
        #expect(disk.durableBytes("\(dir)/00000000000000000000.meta") == disk.currentBytes("\(dir)/00000000000000000000.meta"))
    }

    /// §1.4.2: slices are raw bytes capped by maxBytes; the last record may be cut.
    @Test func slicesAreNotAligned() throws {
        let disk = SimDisk()
        let log = try openLog(disk)
        _ = try log.append(msgId: 1, flag: 0, payload: payload(1), now: t0)
        try log.syncNow(now: t0)
        guard case .slice(let slice) = log.read(offset: 0, maxBytes: 10) else { Issue.record("no slice"); return }
        #expect(slice.count == 10)
        #expect(slice.segmentPath == "\(dir)/00000000000000000000.meta")
        #expect(log.read(offset: -1, maxBytes: 10) == .belowMinimum(minOffset: 0))
        #expect(log.read(offset: 25, maxBytes: 10) == .atOrBeyondEnd(maxOffset: 25))
    }

    /// §1.4.3 example: one 50-byte segment at 0 → offset 0 → 0, 30 → 0, 999999 → 50.
    @Test func nearestOffset() throws {
        let disk = SimDisk()
        let log = try openLog(disk, LogConfig(maxSegmentSize: 50, flushPolicy: .groupCommit))
        for i in 0..<4 { _ = try log.append(msgId: Int64(i + 1), flag: 0, payload: payload(i), now: t0) }
        try log.syncNow(now: t0)
        #expect(log.segmentStarts == [0, 50])
        #expect(log.nearestOffset(0) == 0)
        #expect(log.nearestOffset(30) == 0)
        #expect(log.nearestOffset(60) == 50)
        #expect(log.nearestOffset(999_999) == 100)
        #expect(log.nearestOffset(-5) == 0)
    }

    /// §2.5: a segment rolls once it holds ≥ maxSegmentSize bytes; slices never span segments.
    @Test func rollsAtMaxSegmentSize() throws {
        let disk = SimDisk()
        let log = try openLog(disk, LogConfig(maxSegmentSize: 60, flushPolicy: .groupCommit))
        for i in 0..<7 { _ = try log.append(msgId: Int64(i + 1), flag: 0, payload: payload(i), now: t0) }
        try log.syncNow(now: t0)
        #expect(log.segmentStarts == [0, 75, 150])
        #expect(try disk.list(dir).sorted() == ["00000000000000000000.meta", "00000000000000000075.meta", "00000000000000000150.meta"])
        guard case .slice(let slice) = log.read(offset: 50, maxBytes: 1000) else { Issue.record("no slice"); return }
        #expect(slice.count == 25)
        #expect(try readAll(log).map(\.id) == [1, 2, 3, 4, 5, 6, 7])
    }

    @Test func badAppendsAreRefused() throws {
        let log = try openLog(SimDisk(), LogConfig(flushPolicy: .groupCommit, maxRecordPayloadBytes: 100))
        #expect(throws: LogError.invalidRecords(detail: "empty append")) { try log.append(records: [], now: t0) }
        #expect(throws: LogError.self) { try log.append(records: [0, 0, 0], now: t0) }
        let cut = Array(Record.encode(msgId: 1, flag: 0, payload: payload(1)).dropLast())
        #expect(throws: LogError.self) { try log.append(records: cut, now: t0) }
        #expect(throws: LogError.recordTooLarge(payloadBytes: 101, limit: 100)) {
            try log.append(msgId: 1, flag: 0, payload: payload(1, size: 101), now: t0)
        }
        #expect(log.writtenOffset == 0)
    }

    @Test func batchIsOneContiguousAppend() throws {
        let log = try openLog(SimDisk())
        var batch: [UInt8] = []
        for i in 0..<3 { Record.append(to: &batch, msgId: Int64(i + 1), flag: 0, payload: payload(i)) }
        let outcome = try log.append(records: batch, ticket: 9, now: t0)
        #expect(outcome.offset == 0)
        #expect(log.recordCount == 3)
        #expect(try log.syncNow(now: t0) == [9])
        #expect(try readAll(log).map(\.offset) == [0, 25, 50])
    }
}
