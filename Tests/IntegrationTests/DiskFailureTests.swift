import Foundation
import ProtocolCore
import Runtime
import Testing

/// A real broker on a failing disk (issue 14): clients learn the cause of the first failed put,
/// every later put to the partition is refused with since when and why, `stats` lists the
/// partition, and a stop that leaves data unsynced exits non-zero.
///
/// The disk fails without privileges: the second segment of `test-0` is a symbolic link to
/// `/dev/full` (every write fails with ENOSPC) or `/dev/null` (writes succeed, every fdatasync
/// fails with EINVAL), created before the first segment fills up (recovery syncs every segment at
/// start, so a link present then would stop the start); or the broker runs under
/// `prlimit --fsize` (a write past the limit fails with EFBIG).
@Suite("metaq-server on a failing disk", .serialized)
struct DiskFailureTests {
    /// Segments roll after 100 bytes: the first put (120 bytes) fills the first one.
    static let config = LocalBrokerTests.config.replacingOccurrences(of: "brokerId=0", with: "brokerId=0\nmaxSegmentSize=100")
    static let thresholdConfig = config.replacingOccurrences(
        of: "unflushThreshold=0", with: "unflushThreshold=1000000\nunflushInterval=600000")
    static let firstPut = [UInt8](repeating: 0x61, count: 100)

    /// A started broker and a connection to it whose `test-0` holds one record in a real segment,
    /// and whose next segment (at 120) is `device`.
    func withFailingSegment(_ device: String, config: String = Self.config,
                            _ body: (BrokerProcess, WireConnection) throws -> Void) throws {
        try LocalBrokerTests().withBroker(config: config) { broker in
            try broker.start()
            let connection = try WireConnection(host: "127.0.0.1", port: broker.port)
            let stored = try put(connection, partition: 0, Self.firstPut, opaque: 0)
            #expect(stored.hasPrefix("200 ") && stored.hasSuffix(" 0 0"), "\(stored)")
            try FileManager.default.createSymbolicLink(atPath: segmentPath(broker), withDestinationPath: device)
            try body(broker, connection)
        }
    }

    func segmentPath(_ broker: BrokerProcess) -> String {
        broker.directory + "/data/test-0/00000000000000000120.meta"
    }

    /// `<code> <text>` of the answer to a put of `data` to `test-<partition>`.
    func put(_ connection: WireConnection, partition: Int32, _ data: [UInt8], opaque: Int32) throws -> String {
        try connection.send(.put(PutCommand(topic: "test", partition: partition, flag: 0,
                                            checksum: CRC32.metaqChecksum(data), body: data, opaque: opaque)))
        guard case .result(let answer)? = try connection.receive() else { return "no answer" }
        return "\(answer.code) \(answer.text)"
    }

    func stats(_ connection: WireConnection, _ item: String?) throws -> String {
        guard case .result(let answer) = try connection.request(.stats(StatsCommand(item: item, opaque: 7))) else { return "" }
        return answer.text
    }

    @Test func fullDiskFailsThePutWithItsCauseAndThePartitionUntilRestart() throws {
        try withFailingSegment("/dev/full") { broker, connection in
            let cause = "write failed: I/O error on \(segmentPath(broker)): pwrite: No space left on device (ENOSPC)"
            let first = try put(connection, partition: 0, Array("a".utf8), opaque: 1)
            #expect(first.hasPrefix("500 ") && first.hasSuffix("failed.Detail:\(cause); partition test-0 refuses writes "
                                                               + "until the broker is restarted"), "\(first)")
            let later = try put(connection, partition: 0, Array("b".utf8), opaque: 2)
            #expect(later.hasPrefix("500 ") && later.contains("failed.Detail:partition test-0 refuses writes since 20"), "\(later)")
            #expect(later.hasSuffix("Z (\(cause)); restart the broker after fixing the disk"), "\(later)")
            #expect(try put(connection, partition: 1, Array("c".utf8), opaque: 3).hasPrefix("200 "), "other partitions work")

            #expect(try stats(connection, nil).contains("\r\nput_failed 2\r\n"))
            #expect(try stats(connection, nil).hasSuffix("\r\nfailed_partitions 1\r\nEND\r\n"))
            let listed = try stats(connection, "failed_partitions")
            #expect(listed.hasPrefix("STATS\r\ntest-0 refuses writes since 20") && listed.hasSuffix("Z: \(cause)\r\nEND\r\n"),
                    "\(listed)")
            #expect(broker.log().contains("write failed: the partition refuses writes until the broker is restarted"))

            #expect(broker.stop() == 1, "a stop with a failed partition is not clean; log:\n\(broker.log())")
            #expect(broker.lastLogLine().contains("metaq-server stopped with errors (exit status 1): 1 partition(s) "
                                                  + "failed a write or sync: test-0 (\(cause))"), "\(broker.log())")
        }
    }

    /// Group commit over a disk whose fdatasync fails: the put says so, and so does every later one.
    @Test func failedSyncIsTheCauseOfTheFirstPutAndEveryLaterOne() throws {
        try withFailingSegment("/dev/null") { broker, connection in
            let cause = "sync failed: I/O error on \(segmentPath(broker)): fdatasync: Invalid argument (EINVAL)"
            let first = try put(connection, partition: 0, Array("a".utf8), opaque: 1)
            #expect(first.hasSuffix("failed.Detail:\(cause); partition test-0 refuses writes until the broker is restarted"),
                    "\(first)")
            let later = try put(connection, partition: 0, Array("b".utf8), opaque: 2)
            #expect(later.hasSuffix("Z (\(cause)); restart the broker after fixing the disk"), "\(later)")
            #expect(broker.stop() == 1)
        }
    }

    /// Threshold mode answers a put once written; when the final sync of a graceful stop fails,
    /// those puts may be lost, and the exit status and the last log line say so.
    @Test func failedFinalSyncExitsNonZero() throws {
        try withFailingSegment("/dev/null", config: Self.thresholdConfig) { broker, connection in
            let written = try put(connection, partition: 0, Array("a".utf8), opaque: 1)
            #expect(written.hasPrefix("200 "), "answered once written: \(written)")
            #expect(broker.stop() == 1, "log:\n\(broker.log())")
            #expect(broker.log().contains("final sync failed"))
            #expect(broker.lastLogLine().contains("metaq-server stopped with errors (exit status 1): 1 partition(s) failed "
                                                  + "a write or sync: test-0 (sync failed: I/O error on \(segmentPath(broker)): "
                                                  + "fdatasync: Invalid argument (EINVAL))"), "\(broker.log())")
        }
    }

    /// The same steps on a healthy disk stop cleanly (the failures above are the devices' doing).
    @Test func healthyStopExitsZero() throws {
        try withFailingSegment("00000000000000000000.meta", config: Self.thresholdConfig) { broker, connection in
            try FileManager.default.removeItem(atPath: segmentPath(broker))
            #expect(try put(connection, partition: 0, Array("a".utf8), opaque: 1).hasPrefix("200 "))
            #expect(try stats(connection, nil).hasSuffix("\r\nfailed_partitions 0\r\nEND\r\n"))
            #expect(broker.stop() == 0)
            #expect(broker.lastLogLine().contains("metaq-server stopped"))
        }
    }

    /// A write past RLIMIT_FSIZE fails with EFBIG like any disk error: the broker ignores SIGXFSZ,
    /// which would otherwise kill it.
    @Test func fileSizeLimitFailsThePartitionNotTheBroker() throws {
        let prlimit = ["/usr/bin/prlimit", "/bin/prlimit"].first { FileManager.default.isExecutableFile(atPath: $0) }
        try withKnownIssue("prlimit (util-linux) is not installed") {
            let launcher = try #require(prlimit)
            try LocalBrokerTests().withBroker { broker in
                broker.launcher = [launcher, "--fsize=\(1 << 20)", "--"]
                try broker.start()
                let connection = try WireConnection(host: "127.0.0.1", port: broker.port)
                let data = [UInt8](repeating: 0x61, count: 100 << 10)
                var answers: [String] = []
                for opaque in Int32(1)...12 {
                    answers.append(try put(connection, partition: 0, data, opaque: opaque))
                    if !answers.last!.hasPrefix("200 ") { break }
                }
                let failed = try #require(answers.last)
                #expect(failed.contains("write failed: I/O error on ") && failed.contains("File too large (EFBIG)"), "\(answers)")
                #expect(broker.process.isRunning, "SIGXFSZ must not kill the broker")
                #expect(try put(connection, partition: 0, [1], opaque: 99).contains("partition test-0 refuses writes since"))
                #expect(try put(connection, partition: 1, [1], opaque: 100).hasPrefix("200 "))
                #expect(broker.stop() == 1)
            }
        } when: {
            prlimit == nil
        }
    }
}
