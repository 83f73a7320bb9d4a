import Foundation
import ProtocolCore
import Runtime
import StoreCore
import Testing

/// The partition log on real files: write, close, reopen, recover, roll, retention by age.
@Suite("Partition log on real files")
struct PartitionLogOnFilesTests {
    let now = Instant.milliseconds(5)

    func withTempDirectory(_ body: (String) throws -> Void) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("metaq-log-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        try body(base)
    }

    func messages(_ log: PartitionLog) throws -> [Message] {
        var out: [Message] = []
        var offset = log.minOffset
        while let bytes = try log.readBytes(offset: offset, maxBytes: 1 << 20) {
            var iterator = RecordIterator(bytes, baseOffset: offset)
            while case .message(let m)? = iterator.next() { out.append(m) }
            offset += Int64(iterator.consumedBytes)
        }
        return out
    }

    @Test func writeCloseReopenRecover() throws {
        try withTempDirectory { base in
            let storage = FileStorage()
            let dir = base + "/test-0"
            let config = LogConfig(maxSegmentSize: 1000, flushPolicy: .groupCommit)
            var log = try PartitionLog.open(storage: storage, directory: dir, config: config, now: now)
            for i in 0..<100 {
                _ = try log.append(msgId: Int64(i + 1), flag: 0, payload: Array("message \(i)".utf8), ticket: UInt64(i), now: now)
            }
            #expect(try log.syncNow(now: now).count == 100)
            let starts = log.segmentStarts
            #expect(starts.count == 3, "rolled at 1000 bytes: about 3,000 bytes of records")
            log.close()

            // The files are MetaQ's: 20-digit names, records back to back.
            let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
            #expect(names == starts.map { SegmentName.name(forStart: $0) })
            let first = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + names[0]))
            #expect(Array(first.prefix(29)) == Record.encode(msgId: 1, flag: 0, payload: Array("message 0".utf8)))

            // A torn tail (half a record) appended behind the log's back is cut on reopen.
            let lastPath = dir + "/" + names[names.count - 1]
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: lastPath))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(Record.encode(msgId: 999, flag: 0, payload: Array("torn".utf8)).prefix(11)))
            try handle.close()

            log = try PartitionLog.open(storage: storage, directory: dir, config: config, now: now)
            #expect(log.recoveryReport.truncatedBytes == 11)
            #expect(log.segmentStarts == starts)
            let read = try messages(log)
            #expect(read.map(\.id) == Array(1...100))
            #expect(read.last?.data == Array("message 99".utf8))
            #expect(try log.append(msgId: 101, flag: 0, payload: [1], now: now).offset == log.maxOffset)
            log.close()
        }
    }

    /// Issue 18 on real files: a clean close leaves `clean-stop`, the next open skips the scan
    /// and unlinks it, and the open after that (no clean close) scans and cuts a torn tail.
    @Test func cleanStopMarkOnRealFiles() throws {
        try withTempDirectory { base in
            let storage = FileStorage()
            let dir = base + "/test-0"
            let config = LogConfig(maxSegmentSize: 1000, flushPolicy: .groupCommit)
            var log = try PartitionLog.open(storage: storage, directory: dir, config: config, now: now)
            for i in 0..<50 { _ = try log.append(msgId: Int64(i + 1), flag: 0, payload: Array("message \(i)".utf8), now: now) }
            try log.syncNow(now: now)
            #expect(log.close(clean: true))
            #expect(FileManager.default.fileExists(atPath: dir + "/clean-stop"))
            log = try PartitionLog.open(storage: storage, directory: dir, config: config, now: now)
            #expect(log.recoveryReport.lastSegmentScanSkipped)
            #expect(!FileManager.default.fileExists(atPath: dir + "/clean-stop"))
            #expect(try messages(log).map(\.id) == Array(1...50))
            let lastPath = dir + "/" + SegmentName.name(forStart: log.segmentStarts.last!)
            log.close()
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: lastPath))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(Record.encode(msgId: 999, flag: 0, payload: Array("torn".utf8)).prefix(11)))
            try handle.close()
            log = try PartitionLog.open(storage: storage, directory: dir, config: config, now: now)
            #expect(!log.recoveryReport.lastSegmentScanSkipped)
            #expect(log.recoveryReport.truncatedBytes == 11)
            log.close()
        }
    }

    /// A log in `dir` with 100-byte segments holding `count` 50-byte records (two per segment).
    func twoRecordSegments(_ dir: String, count: Int) throws -> PartitionLog {
        let log = try PartitionLog.open(storage: FileStorage(), directory: dir,
                                        config: LogConfig(maxSegmentSize: 100, flushPolicy: .groupCommit), now: now)
        for i in 0..<count {
            _ = try log.append(msgId: Int64(i + 1), flag: 0, payload: [UInt8](repeating: 7, count: 30), now: now)
        }
        try log.syncNow(now: now)
        return log
    }

    @Test func retentionByAgeOnRealFiles() throws {
        try withTempDirectory { base in
            let dir = base + "/aged-0"
            let log = try twoRecordSegments(dir, count: 20)
            let starts = log.segmentStarts
            #expect(starts.count == 10)
            // Age the two oldest segments by two days.
            let old = Date(timeIntervalSinceNow: -2 * 86_400)
            for start in starts.prefix(2) {
                try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: dir + "/" + SegmentName.name(forStart: start))
            }
            let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
            let removed = try log.applyRetention(try DeletePolicy(parsing: "delete,24"), nowMs: nowMs)
            #expect(removed.map(\.segmentStart) == Array(starts.prefix(2)))
            #expect(log.minOffset == starts[2])
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).count == 8)
            #expect(try log.applyRetention(try DeletePolicy(parsing: "delete,24"), nowMs: nowMs).isEmpty)
            log.close()
        }
    }

    @Test func compressedArchiveOnRealFiles() throws {
        try withTempDirectory { base in
            let dir = base + "/arc-0"
            let log = try twoRecordSegments(dir, count: 8)
            let nowMs = Int64(Date().timeIntervalSince1970 * 1000) + 10_000
            let removed = try log.applyRetention(try DeletePolicy(parsing: "archive,1s,true"), nowMs: nowMs,
                                                 archiver: ZipSegmentArchiver())
            #expect(removed.count == 3)
            let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
            #expect(names == ["00000000000000000000.meta.zip", "00000000000000000100.meta.zip",
                             "00000000000000000200.meta.zip", "00000000000000000300.meta"])
            log.close()
        }
    }
}
