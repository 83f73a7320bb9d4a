import Foundation
import ProcessHarness
import ProtocolCore
import Runtime
import Testing

/// The operators' admin verbs of `metaq-server` against real broker processes (issue 19;
/// reference §8.4, §8.5): close-partitions / open-partitions (persisted across a restart, our
/// difference from §11.10), reload of topic sections, and the offline move-partitions /
/// delete-partitions with their refusal while a broker runs on the data directory.
@Suite("metaq-server admin verbs", .serialized)
struct AdminVerbsTests {
    static let config = """
        [system]
        brokerId=0
        numPartitions=4
        unflushThreshold=0
        [zookeeper]
        zk.zkEnable=false
        [topic=orders]
        """

    func withBroker(config: String = Self.config, _ body: (BrokerProcess) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("metaq-admin-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try BrokerProcess(directory: directory, config: config)
        defer { broker.stopHard() }
        try body(broker)
    }

    /// Runs `metaq-server <arguments>`; exit status and standard output plus error.
    func server(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
        let result = try ChildProcess.run(BrokerProcess.binary, arguments, input: input.map { Array($0.utf8) }, error: .standardOutput)
        return (result.status, String(decoding: result.output, as: UTF8.self))
    }

    func admin(_ broker: BrokerProcess, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try server(arguments + ["-f", broker.directory + "/server.ini", "--port", "\(broker.port)"])
    }

    func text(_ frame: Frame?) -> String? {
        if case .result(let r)? = frame { return "\(r.code) \(r.text)" }
        return nil
    }

    func put(_ client: inout WireConnection, _ topic: String, _ partition: Int32, opaque: Int32) throws -> String? {
        try client.sendRaw(Array("put \(topic) \(partition) 5 0 \(opaque)\r\n".utf8) + Array("hello".utf8))
        return text(try client.receive())
    }

    func get(_ client: inout WireConnection, _ topic: String, _ partition: Int32, opaque: Int32) throws -> Frame? {
        try client.sendRaw(Array("get \(topic) g \(partition) 0 1024 \(opaque)\r\n".utf8))
        return try client.receive()
    }

    @Test func closedPartitionsAnswer403AndStayClosedAcrossARestartUntilOpened() throws {
        try withBroker { broker in
            try broker.start()
            var client = try WireConnection(host: "127.0.0.1", port: broker.port)
            #expect(try put(&client, "orders", 1, opaque: 1)?.hasPrefix("200 ") == true)

            let closed = try admin(broker, ["close-partitions", "-topic", "orders", "-start", "1", "-end", "2"])
            #expect(closed.status == 0, "\(closed.output)")
            #expect(closed.output.contains("closed partitions 1..2 of topic orders"), "\(closed.output)")
            // The original's texts (reference §1.4.1, §1.4.2).
            #expect(try put(&client, "orders", 1, opaque: 2)
                == "403 Put message to [broker 'meta://localhost:\(broker.port)'] [partition 'orders-1'] failed.Detail:partition[0-1] has been closed")
            #expect(text(try get(&client, "orders", 2, opaque: 3)) == "403 Partition[0-2] has been closed")
            #expect(try put(&client, "orders", 3, opaque: 4)?.hasPrefix("200 ") == true, "partition 3 is not closed")

            #expect(broker.stop() == 0)
            let restarted = try BrokerProcess(directory: broker.directory, config: Self.config, port: broker.port)
            defer { restarted.stopHard() }
            try restarted.start()
            client = try WireConnection(host: "127.0.0.1", port: broker.port)
            #expect(try put(&client, "orders", 2, opaque: 5)?.hasPrefix("403 ") == true, "still closed after the restart")
            #expect(text(try get(&client, "orders", 1, opaque: 6)) == "403 Partition[0-1] has been closed")

            let opened = try admin(broker, ["open-partitions", "--topic", "orders"])
            #expect(opened.status == 0 && opened.output.contains("opened partitions 1,2 of topic orders"), "\(opened.output)")
            #expect(try put(&client, "orders", 2, opaque: 7)?.hasPrefix("200 ") == true)
            guard case .value(let value)? = try get(&client, "orders", 1, opaque: 8) else { Issue.record("partition 1 not served"); return }
            #expect(value.body.count == 25)
            let again = try admin(broker, ["open-partitions", "-topic", "orders"])
            #expect(again.output.contains("topic orders has no closed partitions"), "\(again.output)")
        }
    }

    @Test func badAdminRequestsGetAClearRefusal() throws {
        try withBroker { broker in
            try broker.start()
            var client = try WireConnection(host: "127.0.0.1", port: broker.port)
            for (item, expected) in [
                ("admin@close-partitions@orders@x@2", "400 invalid start partition 'x'"),
                ("admin@close-partitions@orders@5@2", "400 invalid partition range: start 5 is after end 2"),
                ("admin@close-partitions@orders@0@99999", "400 invalid partition range 0..99999"),
                ("admin@close-partitions@..@0@1", "400 invalid topic '..'"),
                ("admin@close-partitions@nosuch@0@1", "400 topic nosuch is neither configured nor stored"),
                ("admin@open-partitions", "400 open-partitions needs a topic"),
                ("admin@reboot", "400 unknown admin command 'reboot'"),
            ] {
                try client.sendRaw(Array("stats \(item) 9\r\n".utf8))
                let answer = try #require(text(try client.receive()), "\(item)")
                #expect(answer.hasPrefix(expected), "\(item): \(answer)")
            }
            let refused = try admin(broker, ["close-partitions", "-topic", "nosuch", "-start", "0", "-end", "1"])
            #expect(refused.status == 1 && refused.output.contains("refused (400)"), "\(refused.output)")
            #expect(try put(&client, "orders", 0, opaque: 1)?.hasPrefix("200 ") == true, "the broker still serves")
        }
    }

    @Test func reloadAddsATopicAProducerUsesWithoutARestart() throws {
        try withBroker { broker in
            try broker.start()
            var client = try WireConnection(host: "127.0.0.1", port: broker.port)
            #expect(try put(&client, "invoices", 0, opaque: 1)?.hasPrefix("500 ") == true, "not configured yet")
            let ini = broker.directory + "/server.ini"
            let newConfig = Self.config + "\n[topic=invoices]\nnumPartitions=2\n"
            try newConfig.write(toFile: ini, atomically: true, encoding: .utf8)
            let reloaded = try admin(broker, ["reload"])
            #expect(reloaded.status == 0 && reloaded.output.contains("topics added: invoices"), "\(reloaded.output)")
            #expect(try put(&client, "invoices", 1, opaque: 2)?.hasPrefix("200 ") == true)
            #expect(try put(&client, "invoices", 2, opaque: 3)?.hasPrefix("500 ") == true, "numPartitions=2 of the new section")
            try client.sendRaw(Array("stats config 4\r\n".utf8))
            guard case .result(let config)? = try client.receive() else { Issue.record("no config answer"); return }
            #expect(config.body == Array(newConfig.utf8))

            // A [system] change is reported, not applied; a file that no longer parses changes nothing.
            try (newConfig.replacingOccurrences(of: "numPartitions=4", with: "numPartitions=8")).write(toFile: ini, atomically: true,
                                                                                                      encoding: .utf8)
            let system = try admin(broker, ["reload"])
            #expect(system.output.contains("needs a restart: numPartitions"), "\(system.output)")
            try (newConfig + "garbage\n").write(toFile: ini, atomically: true, encoding: .utf8)
            let broken = try admin(broker, ["reload"])
            #expect(broken.status == 1 && broken.output.contains("reload failed, the running config is unchanged"), "\(broken.output)")
            #expect(try put(&client, "invoices", 0, opaque: 5)?.hasPrefix("200 ") == true)
        }
    }

    @Test func moveAndDeletePartitionsWorkOfflineAndAreRefusedWhileTheBrokerRuns() throws {
        try withBroker { broker in
            try broker.start()
            var client = try WireConnection(host: "127.0.0.1", port: broker.port)
            for partition: Int32 in 0...2 { #expect(try put(&client, "orders", partition, opaque: partition)?.hasPrefix("200 ") == true) }
            let data = broker.directory + "/data"
            let running = try server(["move-partitions", "-dataDir", data, "-topic", "orders", "-start", "0", "-end", "1", "-offset", "4"])
            #expect(running.status == 1 && running.output.contains("a broker runs on"), "\(running.output)")
            let runningDelete = try server(["delete-partitions", "-dataDir", data, "-topic", "orders", "-start", "0", "-end", "0", "-f"])
            #expect(runningDelete.status == 1 && runningDelete.output.contains("a broker runs on"), "\(runningDelete.output)")
            #expect(broker.stop() == 0)

            let collision = try server(["move-partitions", "-dataDir", data, "-topic", "orders", "-start", "0", "-end", "0", "-offset", "2"])
            #expect(collision.status == 1 && collision.output.contains("exists already"), "\(collision.output)")
            let down = try server(["move-partitions", "-dataDir", data, "-topic", "orders", "-start", "1", "-end", "2", "-offset", "-1"])
            #expect(down.status == 1 && down.output.contains("orders-0 exists already"), "a negative offset parses: \(down.output)")
            let moved = try server(["move-partitions", "-dataDir", data, "-topic", "orders", "-start", "0", "-end", "1", "-offset", "4"])
            #expect(moved.status == 0 && moved.output.contains("moved orders-1 to orders-5"), "\(moved.output)")
            let fm = FileManager.default
            #expect(fm.fileExists(atPath: data + "/orders-4") && fm.fileExists(atPath: data + "/orders-5"))
            #expect(!fm.fileExists(atPath: data + "/orders-0") && !fm.fileExists(atPath: data + "/orders-1"))
            let badTopic = try server(["delete-partitions", "-dataDir", data, "-topic", "../x", "-start", "0", "-end", "0", "-f"])
            #expect(badTopic.status != 0 && badTopic.output.contains("invalid topic"), "\(badTopic.output)")

            let declined = try server(["delete-partitions", "-dataDir", data, "-topic", "orders", "-start", "4", "-end", "4"], input: "n\n")
            #expect(declined.output.contains("nothing deleted") && fm.fileExists(atPath: data + "/orders-4"), "\(declined.output)")
            let deleted = try server(["delete-partitions", "-dataDir", data, "-topic", "orders", "-start", "4", "-end", "5"], input: "y\n")
            #expect(deleted.status == 0 && deleted.output.contains("deleted orders-5"), "\(deleted.output)")
            #expect(!fm.fileExists(atPath: data + "/orders-4") && fm.fileExists(atPath: data + "/orders-2"))
        }
    }
}

extension AdminVerbsTests {
    @Test func everyAdminVerbIsListedInTheHelp() throws {
        let help = try server(["--help"])
        for verb in ["reload", "close-partitions", "open-partitions", "move-partitions", "delete-partitions", "slave-status"] {
            #expect(help.output.contains(verb), "\(verb) missing from:\n\(help.output)")
        }
    }
}

extension AdminVerbsTests {
    /// `metaq offsets` (the original's `query` / showoffset): a group's offsets from a client's
    /// local offset file (MetaQ's LocalOffsetStorage format), with the broker's max offset and lag.
    @Test func offsetsPrintsAGroupsStoredOffsetsAndTheLag() throws {
        try withBroker { broker in
            try broker.start()
            var client = try WireConnection(host: "127.0.0.1", port: broker.port)
            for opaque: Int32 in 1...3 { #expect(try put(&client, "orders", 1, opaque: opaque)?.hasPrefix("200 ") == true) }
            let file = broker.directory + "/offsets.json"
            try """
                {"g1":[{"topic":"orders","partition":{"brokerId":0,"partition":1},"offset":25,"messageId":-1,"modified":false},
                {"topic":"other","partition":{"brokerId":0,"partition":0},"offset":5,"messageId":-1,"modified":false},
                {"topic":"orders","partition":{"brokerId":3,"partition":0},"offset":7,"messageId":-1,"modified":false}]}
                """.write(toFile: file, atomically: true, encoding: .utf8)
            let shown = try broker.tool(["offsets", "--group", "g1", "--topic", "orders", "--offsets-file", file])
            #expect(shown.status == 0, "\(shown.output)")
            #expect(shown.output == "0-1 25 max 75 lag 50\n3-0 7\n", "\(shown.output)")
            let none = try BrokerProcess.tool(["offsets", "--group", "g2", "--topic", "orders", "--offsets-file", file])
            #expect(none.status == 1)
        }
    }
}

extension AdminVerbsTests {
    /// The dashboard's `POST /reload-config` (reference §7.2, §8.4) runs the same reload as the
    /// verb: a new topic section is served at once.
    @Test func theDashboardReloadsThroughTheSamePath() throws {
        try withBroker { broker in
            broker.dashboardPort = try LocalProcess.freePort()
            try broker.start()
            try DashboardBrowserTests.waitForDashboard(broker.dashboardPort)
            try (Self.config + "\n[topic=invoices]\n").write(toFile: broker.directory + "/server.ini", atomically: true, encoding: .utf8)
            let answer = try HTTPTestClient.fetch(port: broker.dashboardPort, "POST", "/reload-config")
            #expect(answer.status == 200 && answer.text.contains("topics added: invoices"), "\(answer.text)")
            var client = try WireConnection(host: "127.0.0.1", port: broker.port)
            #expect(try put(&client, "invoices", 0, opaque: 1)?.hasPrefix("200 ") == true)
        }
    }
}
