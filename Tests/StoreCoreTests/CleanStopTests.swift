import ProtocolCore
import Sim
import Testing
@testable import StoreCore

/// Issue 18: a clean close leaves a `clean-stop` mark so the next open skips scanning the last
/// segment; anything short of an exact match, or any state a crash could have left, is scanned.
@Suite("Clean-stop mark (issue 18)")
struct CleanStopTests {
    let segment0 = "\(dir)/00000000000000000000.meta"
    let markPath = "\(dir)/\(CleanStopMark.fileName)"

    /// A log holding `count` synced records of 25 bytes each.
    func logWith(_ count: Int, disk: SimDisk, from first: Int = 0) throws -> PartitionLog {
        let log = try openLog(disk)
        for i in first..<(first + count) { _ = try log.append(msgId: Int64(i + 1), flag: 0, payload: payload(i), now: t0) }
        try log.syncNow(now: t0)
        return log
    }

    /// Whether the mark's name would survive a power loss now.
    func markIsDurable(_ disk: SimDisk) -> Bool {
        disk.durableFiles(in: dir)?.contains { $0.name == CleanStopMark.fileName } ?? false
    }

    @Test func markRoundTripsAndRejectsTornOrAlteredBytes() {
        let mark = CleanStopMark(start: 1 << 30, sizeBytes: 12_345, endsWithEmptyRecord: true, recordCount: 77)
        let bytes = mark.encode()
        #expect(bytes.count == CleanStopMark.size)
        #expect(CleanStopMark.decode(bytes) == mark)
        #expect(CleanStopMark.decode(Array(bytes.prefix(40))) == nil)
        for index in [3, 30, 42, 60] {
            var altered = bytes
            altered[index] = altered[index] == UInt8(ascii: "1") ? UInt8(ascii: "2") : UInt8(ascii: "1")
            #expect(CleanStopMark.decode(altered) == nil, "byte \(index)")
        }
    }

    @Test func cleanCloseThenOpenSkipsTheScanAndServesEverything() throws {
        let disk = SimDisk()
        #expect(try logWith(3, disk: disk).close(clean: true))
        #expect(markIsDurable(disk))
        #expect(disk.durableBytes(markPath).flatMap(CleanStopMark.decode)
                == CleanStopMark(start: 0, sizeBytes: 75, endsWithEmptyRecord: false, recordCount: 3))
        let log = try openLog(disk)
        #expect(log.recoveryReport.lastSegmentScanSkipped)
        #expect(log.recoveryReport.scannedRecordCount == 0)
        #expect(log.recoveryReport.description.contains("scan skipped"))
        #expect(log.recordCount == 3)
        #expect(log.maxOffset == 75)
        #expect(try readAll(log).map(\.id) == [1, 2, 3])
        #expect(try log.append(msgId: 4, flag: 0, payload: payload(4), now: t0).offset == 75)
    }

    @Test func closeAfterACrashLeavesNoMarkAndOpenScans() throws {
        let disk = SimDisk()
        #expect(try logWith(3, disk: disk).close() == false)
        #expect(!disk.fileExists(markPath))
        let log = try openLog(disk)
        #expect(!log.recoveryReport.lastSegmentScanSkipped)
        #expect(log.recoveryReport.scannedRecordCount == 3)
    }

    /// The mark is used once: its removal is durable before the log takes a write, so a crash
    /// later (after bytes a power loss could tear) is always scanned.
    @Test func markIsRemovedDurablyAtOpenAndASecondOpenScans() throws {
        let disk = SimDisk()
        try logWith(2, disk: disk).close(clean: true)
        let log = try openLog(disk)
        #expect(log.recoveryReport.lastSegmentScanSkipped)
        #expect(!disk.fileExists(markPath))
        #expect(!markIsDurable(disk))
        _ = try log.append(msgId: 3, flag: 0, payload: payload(3), now: t0)
        try log.syncNow(now: t0)
        log.close()
        let reopened = try openLog(disk)
        #expect(!reopened.recoveryReport.lastSegmentScanSkipped)
        #expect(reopened.recoveryReport.scannedRecordCount == 3)
        #expect(try readAll(reopened).map(\.id) == [1, 2, 3])
    }

    /// A mark that no longer matches the file is not trusted: the unsynced bytes after it are scanned
    /// (and the torn one cut off).
    @Test func bytesAppendedAfterTheMarkAreScanned() throws {
        let disk = SimDisk()
        try logWith(2, disk: disk).close(clean: true)
        let third = Record.encode(msgId: 3, flag: 0, payload: payload(3))
        try overwrite(disk, segment0, at: 50, with: Array(third.prefix(13)))
        let log = try openLog(disk)
        #expect(!log.recoveryReport.lastSegmentScanSkipped)
        #expect(log.recoveryReport.truncatedBytes == 13)
        #expect(log.maxOffset == 50)
        #expect(!disk.fileExists(markPath))
    }

    @Test func aFileCutAfterTheMarkIsScanned() throws {
        let disk = SimDisk()
        try logWith(3, disk: disk).close(clean: true)
        let file = try disk.open(segment0, create: false)
        try file.truncate(to: 60)
        try file.sync()
        try file.close()
        let log = try openLog(disk)
        #expect(!log.recoveryReport.lastSegmentScanSkipped)
        #expect(log.recoveryReport.truncatedBytes == 10)
        #expect(try readAll(log).map(\.id) == [1, 2])
    }

    /// A mark describing another segment (an older one, after a roll) is not trusted.
    @Test func aMarkOfAnotherSegmentIsNotTrusted() throws {
        let disk = SimDisk()
        try logWith(3, disk: disk).close()
        let foreign = CleanStopMark(start: 25, sizeBytes: 75, endsWithEmptyRecord: false, recordCount: 3)
        try overwriteMark(disk, foreign.encode())
        let log = try openLog(disk)
        #expect(!log.recoveryReport.lastSegmentScanSkipped)
        #expect(log.recoveryReport.scannedRecordCount == 3)
        #expect(!disk.fileExists(markPath))
    }

    /// A torn mark, or one whose bytes changed (here: the record count, which would otherwise
    /// still match the file), fails its checksum: the segment is scanned and the mark removed.
    @Test(arguments: ["torn", "altered"])
    func aTornOrCorruptMarkIsNotTrusted(_ damage: String) throws {
        let disk = SimDisk()
        try logWith(3, disk: disk).close(clean: true)
        var bytes = try #require(disk.currentBytes(markPath))
        if damage == "torn" {
            bytes = Array(bytes.prefix(50))
        } else {
            bytes[63] = UInt8(ascii: "9")
        }
        try overwriteMark(disk, bytes)
        let log = try openLog(disk)
        #expect(!log.recoveryReport.lastSegmentScanSkipped)
        #expect(log.recoveryReport.scannedRecordCount == 3)
        #expect(try readAll(log).map(\.id) == [1, 2, 3])
        #expect(!disk.fileExists(markPath))
    }

    @Test func aFailedLogWritesNoMark() throws {
        let disk = SimDisk()
        let log = try logWith(2, disk: disk)
        _ = try log.append(msgId: 3, flag: 0, payload: payload(3), now: t0)
        disk.failNextSync = true
        #expect(throws: LogError.self) { try log.syncNow(now: t0) }
        #expect(log.isFailed)
        #expect(log.close(clean: true) == false)
        #expect(!disk.fileExists(markPath))
        #expect(!(try openLog(disk).recoveryReport.lastSegmentScanSkipped))
    }

    /// Written but not synced (the interval flush policy, no final sync): no mark.
    @Test func unsyncedBytesWriteNoMark() throws {
        let disk = SimDisk()
        let log = try openLog(disk, LogConfig(flushPolicy: .metaqDefault))
        _ = try log.append(msgId: 1, flag: 0, payload: payload(1), now: t0)
        #expect(log.hasUnsyncedData)
        #expect(log.close(clean: true) == false)
        #expect(!disk.fileExists(markPath))
    }

    /// The mark carries whether the log ends with an empty record (the scan would have said so),
    /// so the synced-through rule keeps vouching for it after a skipped scan.
    @Test func aTrailingEmptyRecordIsRememberedAcrossASkippedScan() throws {
        let disk = SimDisk()
        let log = try openLog(disk)
        _ = try log.append(msgId: 1, flag: 0, payload: payload(1), now: t0)
        _ = try log.append(msgId: 2, flag: 0, payload: [], now: t0)
        try log.syncNow(now: t0)
        #expect(log.close(clean: true))
        let reopened = try openLog(disk)
        #expect(reopened.recoveryReport.lastSegmentScanSkipped)
        #expect(reopened.lastRecordIsEmpty)
        #expect(try readAll(reopened).map(\.id) == [1, 2])
    }

    /// Damage recorded by an earlier scan stays isolated when a later open skips the scan.
    @Test func knownDamageIsStillReportedWhenTheScanIsSkipped() throws {
        let disk = SimDisk()
        try logWith(5, disk: disk).close()
        try overwrite(disk, segment0, at: 25 + 21, with: [0xEE])
        let first = try openLog(disk)
        #expect(first.recoveryReport.damagedRanges == [25..<50])
        #expect(first.close(clean: true))
        let log = try openLog(disk)
        #expect(log.recoveryReport.lastSegmentScanSkipped)
        #expect(log.recoveryReport.damagedRanges == [25..<50])
        #expect(log.read(offset: 25, maxBytes: 100) == .damaged(resumeAt: 50))
        #expect(try readAll(log).map(\.id) == [1, 3, 4, 5])
    }

    func overwriteMark(_ disk: SimDisk, _ bytes: [UInt8]) throws {
        let file = try disk.open(markPath, create: true)
        try file.truncate(to: 0)
        try file.write(bytes, at: 0)
        try file.sync()
        try file.close()
        try disk.syncDirectory(dir)
    }
}
