import Foundation
import ProtocolCore
import Testing

/// A real broker process in local mode, spoken to over the raw MetaQ wire (reference §1.6).
@Suite("metaq-server in local mode", .serialized)
struct LocalBrokerTests {
    static let config = """
        [system]
        brokerId=0
        numPartitions=2
        unflushThreshold=0
        [zookeeper]
        zk.zkEnable=false
        [topic=test]
        """

    func withBroker(_ body: (BrokerProcess) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("metaq-it-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try BrokerProcess(directory: directory, config: Self.config)
        defer { broker.stopHard() }
        try body(broker)
    }

    func text(_ frame: Frame?) -> String? {
        if case .result(let r)? = frame { return "\(r.code) \(r.text)" }
        return nil
    }

    @Test func putGetVersionAndRestart() throws {
        try withBroker { broker in
            try broker.start()
            var client = try WireClient(port: broker.port)
            // §1.6 worked examples.
            client.send("put test 0 5 0 907060870 2\r\n", body: Array("hello".utf8))
            let put = try #require(text(try client.receive()))
            #expect(put.hasPrefix("200 ") && put.hasSuffix(" 0 0"), "\(put)")
            let msgId = try #require(Int64(put.split(separator: " ")[1]))
            client.send("put test 1 15 1 1751672651 5\r\n", body: [0, 0, 0, 6] + Array("myattrworld".utf8))
            #expect(text(try client.receive())?.hasSuffix(" 1 0") == true)
            client.send("version 1\r\n")
            #expect(text(try client.receive()) == "200 1.4.6.2-swift")
            client.send("get test group1 0 0 1024 9\r\n")
            guard case .value(let value)? = try client.receive() else { Issue.record("no value"); return }
            #expect(value.opaque == 9)
            #expect(value.body == Record.encode(msgId: msgId, flag: 0, payload: Array("hello".utf8)))
            client.send("get test group1 0 25 1024 10\r\n")
            #expect(text(try client.receive()) == "404 Could not find message at position 25")
            client.send("offset test g 0 999999 11\r\n")
            #expect(text(try client.receive()) == "200 25")
            // §9: system stats carry the process's real facts.
            client.send("stats  12\r\n")
            let stats = try #require(text(try client.receive()))
            #expect(stats.hasPrefix("200 STATS\r\npid \(broker.process.processIdentifier)\r\n"))
            #expect(stats.contains("\r\ncmd_put 2\r\n") && stats.contains("\r\ntotal_messages 2\r\n"))
            #expect(!stats.contains("\r\nthreads 0\r\n"))
            // §1.1: an unknown command closes the connection without a reply.
            client.send("bogus command\r\n")
            #expect(try client.receive() == nil)
            client.close()

            #expect(broker.stop() == 0, "clean exit on SIGTERM; log:\n\(broker.log())")
            #expect(broker.log().contains("metaq-server stopped"))

            // What was acknowledged is there after a restart on the same data directory.
            let second = try BrokerProcess(directory: broker.directory, config: Self.config)
            defer { second.stopHard() }
            try second.start()
            client = try WireClient(port: second.port)
            client.send("get test group1 0 0 1024 12\r\n")
            guard case .value(let after)? = try client.receive() else { Issue.record("no value after restart"); return }
            #expect(after.body == value.body)
            client.close()
            #expect(second.stop() == 0)
        }
    }
}
