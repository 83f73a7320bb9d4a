import ProtocolCore
import Sim
import Testing
@testable import StoreCore

/// MetaQ's checksum covers only the payload, and CRC32 of an empty payload is 0: an empty
/// record's header is protected by nothing. These pin how recovery treats empty records.
@Suite("Empty records in recovery")
struct EmptyRecordRecoveryTests {
    let segment0 = "\(dir)/00000000000000000000.meta"

    /// A torn header whose length and checksum were zeroed reads as an empty record with the
    /// surviving msgId bytes; with no checksummed record after it, it is not believed.
    @Test func tornHeaderIsNotTakenForAnEmptyRecord() throws {
        let disk = SimDisk()
        let log = try openLog(disk)
        _ = try log.append(msgId: 1, flag: 0, payload: payload(1), now: t0)
        try log.syncNow(now: t0)
        log.close()
        var torn = Record.encode(msgId: 0x1234, flag: 0, payload: payload(2, size: 30))
        for i in 0..<8 { torn[i] = 0 }
        try overwrite(disk, segment0, at: 25, with: torn)
        let reopened = try openLog(disk)
        #expect(reopened.maxOffset == 25)
        #expect(try readAll(reopened).map(\.id) == [1])
    }

    /// Empty messages are legal (the Java client rejects only null data) and survive when a
    /// checksummed record follows them or they end the file.
    @Test func emptyRecordsAreKept() throws {
        let disk = SimDisk()
        let log = try openLog(disk)
        _ = try log.append(msgId: 1, flag: 0, payload: [], now: t0)
        _ = try log.append(msgId: 2, flag: 0, payload: [], now: t0)
        _ = try log.append(msgId: 3, flag: 0, payload: payload(3), now: t0)
        _ = try log.append(msgId: 4, flag: 0, payload: [], now: t0)
        try log.syncNow(now: t0)
        log.close()
        let reopened = try openLog(disk)
        #expect(try readAll(reopened).map(\.id) == [1, 2, 3, 4])
        #expect(reopened.recoveryReport.scannedRecordCount == 4)
    }

    /// A synced empty record at the end, then a torn unsynced record: without evidence the two
    /// look alike, and dropping the empty one would lose an acknowledged message. The sync that
    /// ended after it wrote the synced-through mark, which vouches for it.
    @Test func syncedEmptyRecordSurvivesATornSuccessor() throws {
        let disk = SimDisk()
        let log = try openLog(disk)
        _ = try log.append(msgId: 1, flag: 0, payload: payload(1), ticket: 11, now: t0)
        _ = try log.append(msgId: 2, flag: 0, payload: [], ticket: 22, now: t0)
        #expect(try log.syncNow(now: t0) == [11, 22])
        #expect(disk.currentBytes("\(dir)/synced-through").map { SyncedMark.decode($0) } == 45)
        log.close()
        try overwrite(disk, segment0, at: 45, with: [0, 0, 0, 9, 1, 2, 3])
        let reopened = try openLog(disk)
        #expect(try readAll(reopened).map(\.id) == [1, 2])
        #expect(reopened.maxOffset == 45)
    }

    @Test func workloadsWithoutEmptyRecordsWriteNoMark() throws {
        let disk = SimDisk()
        let log = try openLog(disk)
        _ = try log.append(msgId: 1, flag: 0, payload: payload(1), now: t0)
        try log.syncNow(now: t0)
        #expect(!disk.fileExists("\(dir)/synced-through"))
    }

    @Test func markEncoding() {
        let bytes = SyncedMark.encode(1_234_567)
        #expect(bytes.count == 32)
        #expect(SyncedMark.decode(bytes) == 1_234_567)
        var torn = bytes
        torn[5] ^= 1
        #expect(SyncedMark.decode(torn) == nil)
        #expect(SyncedMark.decode([UInt8](repeating: 0, count: 32)) == nil)
    }
}
