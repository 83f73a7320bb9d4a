import Foundation
import ProtocolCore
import Runtime
import Testing
import ProcessHarness

/// File descriptors of a real broker (issue 14): one per partition's active segment, an accept
/// loop that backs off when they run out, the limit raised and checked at start, a get whose
/// segment cannot be opened answered with a 500.
@Suite("metaq-server file descriptors", .serialized)
struct DescriptorTests {
    static let smallSegments = """
        [system]
        brokerId=0
        numPartitions=1
        unflushThreshold=0
        maxSegmentSize=1024
        [zookeeper]
        zk.zkEnable=false
        [topic=test]
        """

    func withBroker(config: String = Self.smallSegments, _ body: (BrokerProcess) throws -> Void) throws {
        try LocalBrokerTests().withBroker(config: config, body)
    }

    /// Puts `count` messages to `test-0`, 16 in flight at a time; all must be acknowledged.
    func put(_ count: Int, to connection: WireConnection) throws {
        var sent = 0
        var answered = 0
        while answered < count {
            while sent < count && sent - answered < 16 {
                let data = Array("message number \(sent) of \(count)".utf8)
                try connection.send(.put(PutCommand(topic: "test", partition: 0, flag: 0, checksum: CRC32.metaqChecksum(data),
                                                    body: data, opaque: Int32(sent))))
                sent += 1
            }
            guard case .result(let answer)? = try connection.receive() else { throw HarnessError("no answer to a put") }
            #expect(answer.code == 200, "\(answer.text)")
            answered += 1
        }
    }

    /// The segment files `pid` holds open.
    func openSegments(of pid: pid_t) -> [String] {
        let directory = "/proc/\(pid)/fd"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return entries.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "\(directory)/\($0)") }
            .filter { $0.hasSuffix(".meta") }
    }

    /// 2,000 puts over 1 KiB segments: one segment file open (the active one), not one per segment;
    /// reads of sealed segments still work.
    @Test func onlyTheActiveSegmentIsOpen() throws {
        try withBroker { broker in
            try broker.start()
            let connection = try WireConnection(host: "127.0.0.1", port: broker.port)
            try put(2000, to: connection)
            let segments = try FileManager.default.contentsOfDirectory(atPath: broker.directory + "/data/test-0")
                .filter { $0.hasSuffix(".meta") }
            #expect(segments.count > 50)
            let open = openSegments(of: broker.process.processIdentifier)
            #expect(open.count == 1, "\(open.count) segment files open: \(open.prefix(5))")
            guard case .value(let value) = try connection.request(.get(GetCommand(
                topic: "test", group: "g", partition: 0, offset: 0, maxSize: 4096, opaque: -1))) else {
                Issue.record("no value from the first, sealed segment")
                return
            }
            var records = RecordIterator(value.body, baseOffset: 0)
            guard case .message(let first)? = records.next() else { Issue.record("no record"); return }
            #expect(first.data == Array("message number 0 of 2000".utf8))
            #expect(broker.stop() == 0)
        }
    }

    /// When descriptors run out the accept loop backs off instead of spinning, says so once, and
    /// keeps serving the connections it has; once some close it accepts the ones that queued
    /// meanwhile and says how many attempts failed.
    @Test func acceptBacksOffWhenDescriptorsRunOut() throws {
        try withBroker { broker in
            broker.launcher = ["/usr/bin/prlimit", "--nofile=48:48", "--"]
            try broker.start()
            let began = Date()
            var served: [RawClient] = []
            while served.count < 100 {
                served.append(try RawClient(port: broker.port))
                if broker.waitForLog("cannot accept connections", timeoutSeconds: 0.05) != nil { break }
            }
            #expect(broker.waitForLog("cannot accept connections")?.contains("Too many open files") == true, "\(broker.log())")
            // The broker has no descriptor left: these queue in the listen backlog.
            let queued = try (0..<3).map { _ in try RawClient(port: broker.port) }
            try served[0].sendAll(Array("version 1\r\n".utf8))
            guard case .result(let answer)? = try served[0].receive() else {
                Issue.record("an accepted connection is not served while accepting fails")
                return
            }
            #expect(answer.code == 200)
            for client in queued { try client.sendAll(Array("version 2\r\n".utf8)) }
            served.removeFirst(10)
            let again = try #require(broker.waitForLog("accepting connections again"), "\(broker.log())")
            // Backing off, it tries about 10 times a second (without: some 90,000).
            let attempts = again.split(separator: " ").first { $0.hasPrefix("refusedAttempts=") }
                .flatMap { Int($0.dropFirst("refusedAttempts=".count)) }
            #expect((attempts ?? .max) <= Int(Date().timeIntervalSince(began) * 20) + 20, "\(again)")
            let log = broker.log().split(separator: "\n")
            let episodeEnd = try #require(log.firstIndex { $0.contains("accepting connections again") })
            #expect(log[..<episodeEnd].filter { $0.contains("cannot accept connections") }.count == 1,
                    "one line per episode, not one per failed accept")
            for client in queued {
                guard case .result(let late)? = try client.receive() else {
                    Issue.record("a connection queued while descriptors ran out was not served")
                    return
                }
                #expect(late.code == 200 && late.opaque == 2)
            }
            #expect(broker.stop() == 0)
        }
    }

    /// Out of descriptors, a put whose segment must roll cannot open the partition's directory for
    /// its sync: that put is refused with the cause, and the partition takes writes again once
    /// descriptors are free — it is not taken out of service as after a failed fsync.
    @Test func aRollOutOfDescriptorsRefusesOnlyThatPut() throws {
        // Threshold mode: the segment still holds unsynced bytes when it rolls, so the roll syncs
        // the segment and then its directory, which it must open.
        let threshold = Self.smallSegments.replacingOccurrences(of: "unflushThreshold=0", with: "unflushThreshold=1000")
        try withBroker(config: threshold) { broker in
            broker.launcher = ["/usr/bin/prlimit", "--nofile=48:48", "--"]
            try broker.start()
            let writer = try WireConnection(host: "127.0.0.1", port: broker.port)
            func put(_ opaque: Int32) throws -> ResultResponse {
                let body = [UInt8](repeating: 0x61, count: 600)
                let answer = try writer.request(.put(PutCommand(topic: "test", partition: 0, flag: 0,
                                                                checksum: CRC32.metaqChecksum(body), body: body, opaque: opaque)))
                guard case .result(let result) = answer else { throw HarnessError("no result: \(answer)") }
                return result
            }
            #expect(try put(1).code == 200 && put(2).code == 200, "1,240 bytes: the next put rolls the 1 KiB segment")
            var held: [RawClient] = []
            while held.count < 100 {
                held.append(try RawClient(port: broker.port))
                if broker.waitForLog("cannot accept connections", timeoutSeconds: 0.05) != nil { break }
            }
            let refused = try put(3)
            #expect(refused.code == 500 && refused.text.contains("Too many open files"), "\(refused.text)")
            let open = { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(broker.process.processIdentifier)/fd").count) ?? 0 }
            let before = open()
            held.removeAll()
            let deadline = Date().addingTimeInterval(15)
            while open() > before - 10 && Date() < deadline { usleep(20_000) }
            let again = try put(4)
            #expect(again.code == 200, "the partition takes writes again: \(again.text)")
            #expect(broker.logLines(containing: "refuses writes").isEmpty, "\(broker.log())")
            #expect(broker.stop() == 0)
        }
    }

    /// The soft descriptor limit is raised to the hard one at start and logged; a limit below
    /// partitions + maxConnections + headroom is warned about.
    @Test func descriptorLimitIsRaisedAndChecked() throws {
        try withBroker { broker in
            broker.launcher = ["/usr/bin/prlimit", "--nofile=256:4096", "--"]
            try broker.start()
            let limits = try String(contentsOfFile: "/proc/\(broker.process.processIdentifier)/limits", encoding: .utf8)
            let open = limits.split(separator: "\n").first { $0.hasPrefix("Max open files") }?.split(separator: " ")
            #expect(open?.dropFirst(3).prefix(2) == ["4096", "4096"], "\(String(describing: open))")
            let line = try #require(broker.waitForLog("file descriptor limit"))
            #expect(line.contains(" limit=4096 ") && line.contains("raisedFrom=256") && line.contains("needed=10129"), "\(line)")
            #expect(broker.waitForLog("is below the 10129 the broker may need (1 partitions + maxConnections 10000 + 128)") != nil,
                    "\(broker.log())")
        }
        let modest = Self.smallSegments.replacingOccurrences(of: "[zookeeper]", with: "maxConnections=100\n[zookeeper]")
        try withBroker(config: modest) { broker in
            broker.launcher = ["/usr/bin/prlimit", "--nofile=256:4096", "--"]
            try broker.start()
            // The check is logged before this line: no warning by then means none.
            #expect(broker.waitForLog("metaq-server started") != nil)
            #expect(broker.logLines(containing: "the broker may need").isEmpty, "\(broker.log())")
        }
    }

    /// A get from a segment that cannot be opened (here: removed under the running broker) is
    /// answered with a 500 in the original's reused put wording (reference §1.4.2), and the
    /// connection stays usable.
    @Test func getOfAnUnopenableSegmentIsAnswered500() throws {
        try withBroker { broker in
            try broker.start()
            let connection = try WireConnection(host: "127.0.0.1", port: broker.port)
            try put(100, to: connection)
            let first = broker.directory + "/data/test-0/00000000000000000000.meta"
            try FileManager.default.removeItem(atPath: first)
            let answer = try connection.request(.get(GetCommand(topic: "test", group: "g", partition: 0, offset: 0,
                                                                 maxSize: 1024, opaque: 7)))
            guard case .result(let result) = answer else { Issue.record("no result: \(answer)"); return }
            #expect(result.code == 500)
            #expect(result.text.hasPrefix("Put message to [broker 'meta://localhost:\(broker.port)'] [partition 'test-0'] failed.Detail:"),
                    "\(result.text)")
            #expect(result.text.lowercased().contains("no such file or directory"), "\(result.text)")
            let version = try connection.request(.version(VersionCommand(opaque: 8)))
            guard case .result(let alive) = version else { Issue.record("connection closed after the 500"); return }
            #expect(alive.code == 200)
            #expect(broker.stop() == 0)
        }
    }
}
