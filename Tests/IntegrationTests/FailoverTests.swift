import Foundation
import Logging
import MetaQClient
import ProtocolCore
import Runtime
import Synchronization
import Testing
import ProcessHarness

/// Automatic failover end to end (issue 17, docs/REPLICATION.md): a master and its synchronous
/// slave with `failover=true` on a real ZooKeeper, a `MetaQClient` producer sending continuously
/// and a consumer group; SIGKILL the master; the slave takes over, the producer and the group go
/// on, every acknowledged message is read back from the new master; the old master restarted
/// rejoins as a slave and ends with the same bytes.
@Suite("Failover on ZooKeeper (issue 17)", .serialized, .enabled(if: ZooKeeperServer.isInstalled))
struct FailoverTests {
    /// The election's record of broker id 0 (`term=… owner=… in-sync=…`).
    static func record(_ session: ZooKeeperSession) async -> BrokerElection.Record? {
        await ClusterTests.text(session, "/metaq-swift/brokers/0/term").flatMap { BrokerElection.Record.parse(Array($0.utf8)) }
    }

    static let sessionTimeoutMs = 2000

    static func config(zk: String, slaveId: Int?) -> String {
        """
        [system]
        brokerId=0
        hostName=127.0.0.1
        numPartitions=2
        unflushThreshold=0

        [zookeeper]
        zk.zkConnect=\(zk)
        zk.zkSessionTimeoutMs=\(sessionTimeoutMs)
        zk.zkSyncTimeMs=200

        [replication]
        failover=true
        synchronous=true
        minInSyncReplicas=1
        maxLagMs=3000
        \(slaveId.map { "slaveId=\($0)" } ?? "rejoinSlaveId=2")

        [topic=test]
        """
    }

    final class Acknowledged: Sendable {
        let ids = Mutex<[Int64: String]>([:])  // msgId → payload
        func add(_ id: Int64, _ text: String) { ids.withLock { $0[id] = text } }
        var count: Int { ids.withLock { $0.count } }
        var all: [Int64: String] { ids.withLock { $0 } }
    }

    /// On a three-server ZooKeeper ensemble, as MetaQ was run in production.
    @Test func aSynchronousSlaveTakesOverWhenItsMasterIsKilledAndTheOldMasterRejoins() async throws {
        let zk = try ZooKeeperEnsemble.started()
        defer { zk.stop() }
        let base = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-failover")
        defer { try? FileManager.default.removeItem(atPath: base) }
        for name in ["a", "b"] { try FileManager.default.createDirectory(atPath: base + "/" + name, withIntermediateDirectories: true) }
        var a = try BrokerProcess(directory: base + "/a", config: Self.config(zk: zk.connectString, slaveId: nil))
        a.local = false
        try a.start()
        defer { a.stopHard() }
        let uriA = "meta://127.0.0.1:\(a.port)"
        let session = try await ZooKeeperEnsembleTests.observer(zk.connectString)
        defer { session.close() }
        #expect(await ClusterTests.eventually(30) { await ClusterTests.text(session, "/meta/brokers/ids/0/master") == uriA },
                "a leads: \(a.log())")
        let b = try BrokerProcess(directory: base + "/b", config: Self.config(zk: zk.connectString, slaveId: 1))
        b.local = false
        try b.start()
        defer { b.stopHard() }
        let uriB = "meta://127.0.0.1:\(b.port)"
        #expect(await ClusterTests.eventually(30) { await ClusterTests.text(session, "/meta/brokers/ids/0/slave1") == uriB },
                "b registers as slave 1: \(b.log())")
        #expect(await ClusterTests.eventually(30) { await Self.record(session)?.ids == [1] },
                "a publishes b in sync: \(a.log())")

        // A producer sends continuously; what is acknowledged is recorded.
        let client = try MetaQClient(zooKeeper: zk.connectString, sessionTimeoutMs: 4000, logger: ClusterTests.silent)
        defer { Task { await client.shutdown() } }
        let producer = client.producer()
        _ = try await producer.publish("test")
        let acknowledged = Acknowledged()
        let sending = Task {
            var i = 0
            while !Task.isCancelled {
                let text = "m\(i)"
                i += 1
                if let result = try? await producer.send(topic: "test", data: Array(text.utf8)) {
                    acknowledged.add(result.msgId, text)
                } else {
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
        }
        defer { sending.cancel() }
        #expect(await ClusterTests.eventually(60) { acknowledged.count >= 200 }, "the producer gets answers")

        // Kill the master: b takes over (its URI in the master node), in a newer term.
        let killedAt = Date()
        a.stopHard()
        let tookOver = await ClusterTests.eventually(60) { await ClusterTests.text(session, "/meta/brokers/ids/0/master") == uriB }
        let takeover = Date().timeIntervalSince(killedAt)
        #expect(tookOver, "b takes over: \(b.log())")
        #expect(await Self.record(session)?.term == 2)
        #expect(await ClusterTests.eventually(30) {
            await ClusterTests.text(session, "/meta/brokers/topics-pub/test/0-m") == #"{"numParts":2,"broker":"0-m"}"#
        }, "b registers the topic as its master")
        print("failover: the slave led \(String(format: "%.1f", takeover)) s after the master was killed "
              + "(session timeout \(Self.sessionTimeoutMs) ms)")
        // The producer goes on against the new master (minInSyncReplicas=1: with no slave in sync
        // the master answers alone; with one, only once the slave has the message).
        let before = acknowledged.count
        #expect(await ClusterTests.eventually(60) { acknowledged.count >= before + 200 }, "the producer goes on: \(b.log())")

        // The old master restarts: it follows b, cuts what b never had, copies the rest, and is
        // b's in-sync slave (its rejoinSlaveId 2), so synchronous puts are answered again.
        a = try BrokerProcess(directory: a.directory, config: Self.config(zk: zk.connectString, slaveId: nil), port: a.port)
        a.local = false
        try a.start()
        #expect(await ClusterTests.eventually(60) { await ClusterTests.text(session, "/meta/brokers/ids/0/slave2") == uriA },
                "a rejoins as slave 2: \(a.log())")
        #expect(await ClusterTests.eventually(60) { await Self.record(session)?.ids == [2] },
                "b publishes a in sync: \(b.log())")
        let rejoined = acknowledged.count
        #expect(await ClusterTests.eventually(60) { acknowledged.count >= rejoined + 200 }, "synchronous puts with a's copy")
        sending.cancel()
        _ = await sending.result

        // Every acknowledged message is on the new master.
        var stored: [Int64: String] = [:]
        for partition in Int32(0)..<2 {
            for message in try b.readAll(partition: partition).values { stored[message.id] = String(decoding: message.data, as: UTF8.self) }
        }
        let missing = acknowledged.all.filter { stored[$0.key] != $0.value }
        #expect(missing.isEmpty, "\(missing.count) acknowledged message(s) not on the new master, e.g. \(missing.prefix(3))")

        // A consumer group reads them all from the new master, offsets from the start.
        let group = try client.consumer(group: "g", ConsumerSettings(consumerId: "c1", commitIntervalMs: 500))
        try group.subscribe("test")
        let seen = Mutex<Set<Int64>>([])
        let consuming = Task { try await group.run { message in _ = seen.withLock { $0.insert(message.id) } } }
        defer { consuming.cancel() }
        let wanted = Set(acknowledged.all.keys)
        #expect(await ClusterTests.eventually(60) { seen.withLock { $0.isSuperset(of: wanted) } }, "the group reads every acknowledged message")

        // The rejoined broker's segment files equal the new master's, byte for byte.
        #expect(await ClusterTests.eventually(60) {
            (0..<2).allSatisfy { p in (try? a.readAll(partition: Int32(p))) == (try? b.readAll(partition: Int32(p))) }
        }, "the copies converge")
        for partition in 0..<2 {
            let directory = "/data/test-\(partition)"
            let names = try FileManager.default.contentsOfDirectory(atPath: b.directory + directory).filter { $0.hasSuffix(".meta") }.sorted()
            #expect(names == (try FileManager.default.contentsOfDirectory(atPath: a.directory + directory).filter { $0.hasSuffix(".meta") }.sorted()))
            for name in names {
                let leader = try Data(contentsOf: URL(fileURLWithPath: b.directory + directory + "/" + name))
                let follower = try Data(contentsOf: URL(fileURLWithPath: a.directory + directory + "/" + name))
                #expect(leader == follower, "\(directory)/\(name) identical")
            }
        }
        let status = try ChildProcess.run(BrokerProcess.binary, ["slave-status", "-f", a.directory + "/server.ini", "--port", "\(a.port)"])
        let lines = String(decoding: status.output, as: UTF8.self)
        #expect(lines.contains("role slave") && lines.contains("term 2"), "\(lines)")
        #expect(a.stop() == 0 && b.stop() == 0)
    }

    /// `metaq admin promote` (manual switchover) takes the path of a takeover: the slave claims the
    /// next term, the live master steps down and follows it, clients move to it.
    @Test func promoteSwitchesTheMasterOverToAnInSyncSlave() async throws {
        let zk = try ZooKeeperServer()
        try zk.start()
        defer { zk.stop() }
        let base = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-promote")
        defer { try? FileManager.default.removeItem(atPath: base) }
        for name in ["a", "b"] { try FileManager.default.createDirectory(atPath: base + "/" + name, withIntermediateDirectories: true) }
        let a = try BrokerProcess(directory: base + "/a", config: Self.config(zk: zk.connectString, slaveId: nil))
        a.local = false
        try a.start()
        defer { a.stopHard() }
        let b = try BrokerProcess(directory: base + "/b", config: Self.config(zk: zk.connectString, slaveId: 1))
        b.local = false
        try b.start()
        defer { b.stopHard() }
        let session = try await ClusterTests.observer(zk)
        defer { session.close() }
        let uriA = "meta://127.0.0.1:\(a.port)", uriB = "meta://127.0.0.1:\(b.port)"
        #expect(await ClusterTests.eventually(30) { await Self.record(session)?.ids == [1] },
                "b in sync: \(a.log()) \(b.log())")
        #expect(await ClusterTests.text(session, "/meta/brokers/ids/0/master") == uriA)
        let before = try BrokerProcess.tool(["produce", "test", "--zookeeper", zk.connectString, "before"])
        #expect(before.status == 0, "\(before.output)")

        let promoted = try BrokerProcess.tool(["admin", "promote", "--server", uriB])
        #expect(promoted.status == 0 && promoted.output.contains("promote requested"), "\(promoted.output)")
        #expect(await ClusterTests.eventually(30) { await ClusterTests.text(session, "/meta/brokers/ids/0/master") == uriB },
                "b leads: \(b.log())")
        #expect(await Self.record(session)?.term == 2)
        #expect(await ClusterTests.eventually(30) { await ClusterTests.text(session, "/meta/brokers/ids/0/slave2") == uriA },
                "a follows as slave 2: \(a.log())")
        let after = try BrokerProcess.tool(["produce", "test", "--zookeeper", zk.connectString, "after"])
        #expect(after.status == 0, "\(after.output)")
        var stored: [String] = []
        for partition in Int32(0)..<2 { stored += try b.readAll(partition: partition).values.map { String(decoding: $0.data, as: UTF8.self) } }
        #expect(Set(stored) == ["before", "after"], "\(stored)")
        // Promoting the leader again says so; a broker without failover refuses.
        let again = try BrokerProcess.tool(["admin", "promote", "--server", uriB])
        #expect(again.output.contains("already leads term 2"), "\(again.output)")
        #expect(a.stop() == 0 && b.stop() == 0)

        let plain = try DirectBroker("metaq-promote-plain", config: DirectBroker.onePartition)
        defer { plain.stop() }
        let refused = try ChildProcess.run(BrokerProcess.product("metaq"), ["admin", "promote", "--server", "meta://127.0.0.1:\(plain.broker.port)"],
                                           error: .standardOutput)
        let text = String(decoding: refused.output, as: UTF8.self)
        #expect(refused.status != 0 && text.contains("takes no part in an election"), "\(refused.status) \(text)")
    }
}
