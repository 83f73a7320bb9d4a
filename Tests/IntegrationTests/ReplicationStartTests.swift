import Foundation
import Logging
import ProtocolCore
import Runtime
import Testing
import ProcessHarness

/// Issue 17: starting a slave — its configuration refused with a message naming the file and line,
/// `start --slave <file>`, a slave whose master is down, a slave in cluster mode, and
/// `metaq-server slave-status`.
@Suite("Replication: starting a slave", .serialized)
struct ReplicationStartTests {
    static let config = LocalBrokerTests.config

    /// `config` with a `[replication]` section (before the topic section, so its first key is on line 8).
    static func withReplication(_ keys: String) -> String {
        config.replacingOccurrences(of: "[topic=test]", with: "[replication]\n\(keys)\n[topic=test]")
    }

    static func makeDirectory() throws -> String {
        try LocalProcess.makeTemporaryDirectory(prefix: "metaq-repl")
    }

    /// `start --local --foreground` with `arguments` added; exit status and output.
    static func start(_ directory: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let result = try ChildProcess.run(BrokerProcess.binary, ["start", "--local", "-f", directory + "/server.ini",
                                                                 "--data", directory + "/data", "--port", "\(try LocalProcess.freePort())",
                                                                 "--host", "127.0.0.1", "--foreground", "--dashboard-port", "0"] + arguments,
                                          error: .standardOutput, timeoutSeconds: 30)
        return (result.status, String(decoding: result.output, as: UTF8.self))
    }

    @Test(arguments: [
        ("slaveGroup=replicas", "server.ini:8: [replication] slaveGroup: slaveGroup is a slave's setting, and slaveId is "
            + "missing; expected slaveId=<n> with n in 0...1023 to make this broker a slave, or remove slaveGroup"),
        ("slaveId=1\nautoSyncMasterConfig=true", "server.ini:9: [replication] autoSyncMasterConfig: "
            + "autoSyncMasterConfig=true is not supported"),
        ("slaveId=1\nmaster=broker-a", "server.ini:9: [replication] master: expected host:port or meta://host:port"),
        ("slaveId=1024", "server.ini:8: [replication] slaveId: expected an integer in 0...1023, got 1024"),
        ("slaveID=1", "server.ini:8: [replication] slaveID: Invalid config key:slaveID,do you mean 'slaveId'?"),
        ("slaveId=1", "this broker is a slave (slaveId=1) without ZooKeeper, so nothing names its master: set "
            + "master=host:port (the master's address) in [replication] of "),
    ])
    func replicationSectionErrorsAreRefused(keys: String, message: String) throws {
        try StartFailureTests().start(config: Self.withReplication(keys)) { _, mode, status, output in
            #expect(status == 1 && output.contains(message), "\(mode): \(output)")
        }
    }

    @Test func slaveFileErrorsAreRefused() throws {
        let directory = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.config.write(toFile: directory + "/server.ini", atomically: true, encoding: .utf8)
        let file = directory + "/async_slave.properties"

        try "# slave\nslaveId=1\nautoSyncMasterConfig=true\n".write(toFile: file, atomically: true, encoding: .utf8)
        let unsupported = try Self.start(directory, ["--slave", file])
        #expect(unsupported.status == 1 && unsupported.output.contains(
            "Error: \(file):3: autoSyncMasterConfig: autoSyncMasterConfig=true is not supported"), "\(unsupported.output)")
        #expect(unsupported.output.contains("give the slave the master's [topic=...] sections"))
        #expect(!unsupported.output.contains("Usage:"), "a broken file is not a usage error")

        try "slaveId=1\n".write(toFile: file, atomically: true, encoding: .utf8)
        let noMaster = try Self.start(directory, ["--slave", file])
        #expect(noMaster.status == 1 && noMaster.output.contains("set master=host:port (the master's address) in \(file)"),
                "\(noMaster.output)")

        let missing = try Self.start(directory, ["--slave", directory + "/nothing.properties"])
        #expect(missing.status == 1 && missing.output.contains("the slave file \(directory)/nothing.properties given with "
                                                               + "--slave does not exist"), "\(missing.output)")

        try Self.withReplication("slaveId=2\nmaster=127.0.0.1:1").write(toFile: directory + "/server.ini", atomically: true,
                                                                           encoding: .utf8)
        try "slaveId=1\nmaster=127.0.0.1:1\n".write(toFile: file, atomically: true, encoding: .utf8)
        let both = try Self.start(directory, ["--slave", file])
        #expect(both.status == 1 && both.output.contains("--slave \(file) and slaveId=2 in [replication] of "
                                                         + "\(directory)/server.ini both configure this slave"), "\(both.output)")
    }

    /// A master that refuses connections: the slave runs on, serves its clients, and keeps trying.
    @Test
    func aSlaveWhoseMasterIsDownKeepsRunningAndRetries() throws {
        let directory = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let masterPort = try LocalProcess.freePort()
        let file = directory + "/async_slave.properties"
        try "slaveId=1\nmaster=127.0.0.1:\(masterPort)\n".write(toFile: file, atomically: true, encoding: .utf8)
        let broker = try BrokerProcess(directory: directory, config: Self.config)
        broker.extraArguments = ["--slave", file]
        try broker.start()
        defer { broker.stopHard() }
        #expect(broker.waitForLog("replicating from the configured master") != nil, "\(broker.log())")
        let second = broker.waitForLog("cannot connect to the master", occurrence: 2, timeoutSeconds: 60)
        #expect(second?.contains("failedAttempts=2") == true, "\(broker.log())")
        #expect(second?.contains("master=meta://127.0.0.1:\(masterPort)") == true)
        #expect(broker.process.isRunning)
        #expect(try broker.tool(["stats"]).status == 0, "it still answers")
        #expect(broker.stop() == 0, "\(broker.log())")
    }

    /// A slave started with `--slave <file>` copies what its master stores over the runtime's master
    /// link, reconnects when the master comes back, and `slave-status` shows it caught up.
    @Test func aSlaveCopiesItsMasterAndReconnectsWhenTheMasterReturns() throws {
        let base = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        for name in ["master", "slave"] { try FileManager.default.createDirectory(atPath: base + "/" + name, withIntermediateDirectories: true) }
        var master = try BrokerProcess(directory: base + "/master", config: Self.config)
        try master.start()
        defer { master.stopHard() }
        let file = base + "/slave/async_slave.properties"
        try "slaveId=1\nmaster=127.0.0.1:\(master.port)\n".write(toFile: file, atomically: true, encoding: .utf8)
        let slave = try BrokerProcess(directory: base + "/slave", config: Self.config)
        slave.extraArguments = ["--slave", file]
        try slave.start()
        defer { slave.stopHard() }
        #expect(slave.waitForLog("connected to the master") != nil, "\(slave.log())")

        #expect(try master.tool(["produce", "test", "--partition", "0", "one", "two"]).status == 0)
        #expect(Self.eventually { (try? slave.readAll(partition: 0).count) == 2 }, "\(slave.log())")
        let copied = try slave.readAll(partition: 0)
        #expect(copied == (try master.readAll(partition: 0)), "byte-identical records at the same offsets")
        #expect(Self.eventually {
            let status = (try? ChildProcess.run(BrokerProcess.binary, ["slave-status", "-f", slave.directory + "/server.ini",
                                                                       "--port", "\(slave.port)"]))
            let lines = status.map { String(decoding: $0.output, as: UTF8.self).split(separator: "\n") } ?? []
            return lines.contains { $0.hasPrefix("test part 0 ") && $0.contains(" lag_bytes 0 ") }
        }, "slave-status shows partition 0 caught up")

        // The master goes away and comes back on the same port: the slave notices, retries, and is
        // connected again.
        #expect(master.stop() == 0)
        #expect(slave.waitForLog("the connection to the master closed") != nil, "\(slave.log())")
        master = try BrokerProcess(directory: master.directory, config: Self.config, port: master.port)
        try master.start()
        #expect(slave.waitForLog("connected to the master", occurrence: 2, timeoutSeconds: 60) != nil, "\(slave.log())")
        #expect(try master.tool(["produce", "test", "--partition", "0", "three"]).status == 0)
        #expect(Self.eventually { (try? slave.readAll(partition: 0).count) == 3 }, "\(slave.log())")
        #expect(slave.stop() == 0, "\(slave.log())")
    }

    /// Polls `condition` every 50 ms for up to `seconds`.
    static func eventually(_ seconds: Double = 30, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }

    /// `slave-status` prints the lines of `stats replication` without the `STATS`/`END` frame.
    @Test func slaveStatusPrintsTheStatsReplicationLines() throws {
        let directory = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try BrokerProcess(directory: directory, config: Self.config)
        try broker.start()
        defer { broker.stopHard() }
        let stats = try broker.tool(["stats", "replication"])
        // "\r\n" is one Character.
        let expected = stats.output.split(whereSeparator: { $0 == "\r\n" || $0 == "\n" }).map(String.init)
            .filter { $0 != "STATS" && $0 != "END" }
        let status = try ChildProcess.run(BrokerProcess.binary, ["slave-status", "-f", directory + "/server.ini",
                                                                 "--port", "\(broker.port)"], error: .standardOutput)
        let output = String(decoding: status.output, as: UTF8.self)
        #expect(stats.status == 0 && status.status == 0, "\(output)")
        // A master without slaves says so in a plain line after them (issue 19).
        #expect(output.split(separator: "\n").map(String.init) == expected + ["no slave: no slave is connected to this broker"],
                "\(output) vs \(stats.output)")
        #expect(!output.contains("STATS") && !output.contains("\r"))
        _ = broker.stop()

        let down = try ChildProcess.run(BrokerProcess.binary, ["slave-status", "-f", directory + "/server.ini",
                                                               "--port", "\(broker.port)"], error: .standardOutput)
        let text = String(decoding: down.output, as: UTF8.self)
        #expect(down.status == 1 && text.contains("Error: cannot reach the broker at 127.0.0.1:\(broker.port)"), "\(text)")
    }

    /// Cluster mode: the slave registers the original's slave znodes (and not the master's), and
    /// follows `ids/<id>/master` as it appears, goes and comes back.
    @Test(.enabled(if: ZooKeeperServer.isInstalled))
    func aSlaveInClusterModeRegistersAsSlaveAndFollowsTheMasterNode() async throws {
        let zk = try ZooKeeperServer()
        try zk.start()
        defer { zk.stop() }
        let directory = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = ClusterTests.config(brokerId: 0, zk: zk.connectString)
            .replacingOccurrences(of: "[topic=test]", with: "[replication]\nslaveId=1\n\n[topic=test]")
        let broker = try BrokerProcess(directory: directory, config: config)
        broker.local = false
        try broker.start()
        defer { broker.stopHard() }
        let session = try await ClusterTests.observer(zk)
        defer { session.close() }
        let uri = "meta://127.0.0.1:\(broker.port)"
        #expect(await ClusterTests.eventually(15) { await ClusterTests.text(session, "/meta/brokers/topics-sub/test/0-s1") != nil })
        #expect(await ClusterTests.text(session, "/meta/brokers/ids/0/slave1") == uri)
        #expect(await ClusterTests.text(session, "/meta/brokers/topics-sub/test/0-s1") == #"{"numParts":3,"broker":"0-s1"}"#)
        #expect(await ClusterTests.text(session, "/meta/brokers/topics-pub/test/0-s1") == #"{"numParts":3,"broker":"0-s1"}"#)
        #expect(await ClusterTests.text(session, "/meta/brokers/topics/test/0-s1") == "3")
        #expect(await ClusterTests.text(session, "/meta/brokers/ids/0/master") == nil, "the master's node is not the slave's")
        #expect(await ClusterTests.text(session, "/meta/brokers/topics-pub/test/0-m") == nil)
        #expect(broker.waitForLog("ZooKeeper names no master") != nil, "\(broker.log())")

        let master = "/meta/brokers/ids/0/master"
        #expect(await session.perform(.create(path: master, data: Array("meta://127.0.0.1:1".utf8), mode: .ephemeral))
                == .created(path: master))
        #expect(broker.waitForLog("ZooKeeper names the master")?.contains("master=meta://127.0.0.1:1") == true, "\(broker.log())")
        #expect(await session.perform(.delete(path: master)) == .deleted)
        #expect(broker.waitForLog("ZooKeeper names no master", occurrence: 2) != nil, "\(broker.log())")
        #expect(await session.perform(.create(path: master, data: Array("meta://127.0.0.1:2".utf8), mode: .ephemeral))
                == .created(path: master))
        #expect(broker.waitForLog("ZooKeeper names the master", occurrence: 2)?.contains("master=meta://127.0.0.1:2") == true,
                "\(broker.log())")

        #expect(broker.stop() == 0, "\(broker.log())")
        #expect(await ClusterTests.text(session, "/meta/brokers/ids/0/slave1") == nil, "unregistered at stop")
    }
}
