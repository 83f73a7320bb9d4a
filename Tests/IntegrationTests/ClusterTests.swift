import Foundation
import Logging
import MetaQClient
import ProtocolCore
import Runtime
import Synchronization
import Testing
import ProcessHarness

/// Cluster mode end to end (reference §3): a real ZooKeeper, real `metaq-server` processes in
/// cluster mode, `MetaQClient` producers and consumer groups, and a `metaq consume` process as the
/// group member that gets killed.
@Suite("Cluster on ZooKeeper (reference §3)", .serialized)
struct ClusterTests {
    static let silent = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    static func config(brokerId: Int, zk: String) -> String {
        """
        [system]
        brokerId=\(brokerId)
        hostName=127.0.0.1
        numPartitions=3
        unflushThreshold=0

        [zookeeper]
        zk.zkConnect=\(zk)
        zk.zkSessionTimeoutMs=2000
        zk.zkSyncTimeMs=200

        [topic=test]
        """
    }

    /// Brokers 0..<count in cluster mode under `base/broker<id>`, started (the ones already started
    /// are stopped again if one cannot start).
    static func startBrokers(_ count: Int, zk: ZooKeeperServer, base: String) throws -> [BrokerProcess] {
        try startBrokers(count, zkConnect: zk.connectString, base: base)
    }

    /// `startBrokers` against the ZooKeeper servers of `zkConnect` (`host:port[,host:port…]`).
    static func startBrokers(_ count: Int, zkConnect: String, base: String) throws -> [BrokerProcess] {
        var brokers: [BrokerProcess] = []
        do {
            for id in 0..<count {
                let directory = base + "/broker\(id)"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                let broker = try BrokerProcess(directory: directory, config: config(brokerId: id, zk: zkConnect))
                broker.local = false
                try broker.start()
                brokers.append(broker)
            }
        } catch {
            for broker in brokers { _ = broker.stop() }
            throw error
        }
        return brokers
    }

    /// Polls `condition` every 100 ms for up to `seconds`.
    static func eventually(_ seconds: Double, _ condition: () async -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return await condition()
    }

    /// A session of the test's own to `zk`, connected (or the test fails), for reading znodes.
    static func observer(_ zk: ZooKeeperServer) async throws -> ZooKeeperSession {
        let session = try ZooKeeperSession(connect: zk.connectString, sessionTimeoutMs: 10_000, logger: silent) { _ in }
        #expect(await session.waitUntilConnected(timeoutMs: 10_000), "no session to \(zk.connectString)")
        return session
    }

    static func text(_ session: ZooKeeperSession, _ path: String) async -> String? {
        if case .data(let bytes) = await session.perform(.getData(path: path, watch: false)) {
            return String(decoding: bytes ?? [], as: UTF8.self)
        }
        return nil
    }

    static func children(_ session: ZooKeeperSession, _ path: String) async -> [String] {
        if case .children(let names) = await session.perform(.getChildren(path: path, watch: false)) { return names.sorted() }
        return []
    }

    /// The owner of each partition of topic `test` in group `g`.
    static func owners(_ session: ZooKeeperSession) async -> [String: String] {
        var owners: [String: String] = [:]
        for partition in await children(session, "/meta/consumers/g/owners/test") {
            owners[partition] = await text(session, "/meta/consumers/g/owners/test/" + partition)
        }
        return owners
    }

    final class Collected: Sendable {
        let ids = Mutex<[String: Set<Int64>]>([:])  // consumer → msgIds it handled
        func add(_ consumer: String, _ id: Int64) { ids.withLock { _ = $0[consumer, default: []].insert(id) } }
        var all: Set<Int64> { ids.withLock { $0.values.reduce(into: Set()) { $0.formUnion($1) } } }
    }

    @Test func twoBrokersAGroupOfThreeAJoiningBrokerAndAnExpiredSession() async throws {
        let zk = try ZooKeeperServer()
        try zk.start()
        defer { zk.stop() }
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("metaq-cluster-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        var brokers = try Self.startBrokers(2, zk: zk, base: base)
        defer { for broker in brokers { _ = broker.stop() } }
        let session = try ZooKeeperSession(connect: zk.connectString, sessionTimeoutMs: 10_000, logger: Self.silent) { _ in }
        defer { session.close() }
        #expect(await session.waitUntilConnected(timeoutMs: 10_000))

        // §3.1: the znodes and their data, byte for byte.
        #expect(await Self.eventually(15) { await Self.text(session, "/meta/brokers/topics-sub/test/1-m") != nil })
        for (id, broker) in brokers.enumerated() {
            let uri = "meta://127.0.0.1:\(broker.port)"
            #expect(await Self.text(session, "/meta/brokers/ids/\(id)") == uri)
            #expect(await Self.text(session, "/meta/brokers/ids/\(id)/master") == uri)
            let ini = try [UInt8](Data(contentsOf: URL(fileURLWithPath: broker.directory + "/server.ini")))
            #expect(await Self.text(session, "/meta/brokers/ids/\(id)/master_config_checksum") == "\(CRC32.checksum(ini))")
            #expect(await Self.text(session, "/meta/brokers/topics/test/\(id)-m") == "3")
            #expect(await Self.text(session, "/meta/brokers/topics-pub/test/\(id)-m") == "{\"numParts\":3,\"broker\":\"\(id)-m\"}")
            #expect(await Self.text(session, "/meta/brokers/topics-sub/test/\(id)-m") == "{\"numParts\":3,\"broker\":\"\(id)-m\"}")
        }

        // The tool: `metaq produce --zookeeper` discovers the partitions; `metaq cluster` prints them.
        let produced = try BrokerProcess.tool(["produce", "test", "--zookeeper", zk.connectString, "t1", "t2"])
        let lines = produced.output.split(separator: "\n").map { $0.split(separator: " ") }
        #expect(produced.status == 0 && lines.count == 2 && lines.allSatisfy { $0.count == 3 && BrokerPartition(String($0[1])) != nil },
                "\(produced.output)")
        let cluster = try BrokerProcess.tool(["cluster", "--zookeeper", zk.connectString])
        #expect(cluster.output.contains("  0  meta://127.0.0.1:\(brokers[0].port) config_checksum="), "\(cluster.output)")
        #expect(cluster.output.contains("  test  publish: 0-m×3 1-m×3  subscribe: 0-m×3 1-m×3"), "\(cluster.output)")

        // A producer spreads round robin over the 6 partitions sorted by (broker, partition).
        let producerClient = try MetaQClient(zooKeeper: zk.connectString, sessionTimeoutMs: 4000, logger: Self.silent)
        let producer = producerClient.producer()
        #expect(try await producer.publish("test").count == 6)
        var sent: [SendResult] = []
        for i in 0..<60 { sent.append(try await producer.send(topic: "test", data: Array("m\(i)".utf8))) }
        #expect(Set(sent.map(\.partition)).count == 6)
        // Without `publish`: the first sends wait for the topic's partitions; an unknown topic fails clearly.
        let eager = producerClient.producer(ProducerSettings(discoveryTimeoutMs: 1000))
        async let a = eager.send(topic: "test", data: Array("e1".utf8))
        async let b = eager.send(topic: "test", data: Array("e2".utf8))
        #expect(try await [a, b].count == 2)
        do {
            _ = try await eager.send(topic: "nosuch", data: [1])
            Issue.record("a send to a topic no broker registered succeeded")
        } catch {
            #expect(error.kind == .noPartition && error.description.contains("topic nosuch"), "\(error)")
        }

        // Three members: two in this process, one `metaq consume` process to be killed.
        let collected = Collected()
        var clients: [MetaQClient] = []
        var consumers: [MetaQConsumer] = []
        var runs: [Task<Void, any Error>] = []
        for name in ["c1", "c2"] {
            let client = try MetaQClient(zooKeeper: zk.connectString, sessionTimeoutMs: 4000, logger: Self.silent)
            let consumer = try client.consumer(group: "g", ConsumerSettings(consumerId: name, commitIntervalMs: 500,
                                                                            rebalanceRetryDelayMs: 200))
            try consumer.subscribe("test")
            clients.append(client)
            consumers.append(consumer)
            runs.append(Task { try await consumer.run { collected.add(name, $0.id) } })
        }
        let external = ChildProcess(BrokerProcess.product("metaq"),
                                    ["consume", "test", "--zookeeper", zk.connectString, "--group", "g", "--follow",
                                     "--zk-session-timeout", "1500"],
                                    output: .nullDevice, error: .nullDevice)
        try external.run()
        defer { LocalProcess.kill9(external) }

        // §3.4: 6 partitions, 3 members → 2 each, every partition owned once.
        let balanced = await Self.eventually(30) {
            let owners = await Self.owners(session)
            let counts = Dictionary(grouping: owners.values, by: { $0 }).mapValues(\.count)
            return owners.count == 6 && counts.count == 3 && counts.values.allSatisfy { $0 == 2 }
        }
        let ownersAfterJoin = await Self.owners(session)
        #expect(balanced, "owners: \(ownersAfterJoin)")

        // Kill the external member: after its session expires the others own everything.
        LocalProcess.kill9(external)
        let takenOver = await Self.eventually(30) {
            let owners = await Self.owners(session)
            return owners.count == 6 && Set(owners.values) == ["g_c1", "g_c2"]
        }
        let ownersAfterKill = await Self.owners(session)
        #expect(takenOver, "owners: \(ownersAfterKill)")
        var second: [SendResult] = []
        for i in 0..<60 { second.append(try await producer.send(topic: "test", data: Array("n\(i)".utf8))) }
        #expect(await Self.eventually(30) { collected.all.isSuperset(of: second.map(\.msgId)) })

        // §3.5: a third broker joins; producer and consumers find it without a restart.
        let third = base + "/broker2"
        try FileManager.default.createDirectory(atPath: third, withIntermediateDirectories: true)
        let broker2 = try BrokerProcess(directory: third, config: Self.config(brokerId: 2, zk: zk.connectString))
        broker2.local = false
        try broker2.start()
        brokers.append(broker2)
        #expect(await Self.eventually(20) { await producer.partitions(of: "test").count == 9 })
        var third3: [SendResult] = []
        for i in 0..<30 { third3.append(try await producer.send(topic: "test", data: Array("o\(i)".utf8))) }
        #expect(third3.contains { $0.partition.brokerId == 2 })
        #expect(await Self.eventually(30) { await Self.owners(session).count == 9 })
        #expect(await Self.eventually(30) { collected.all.isSuperset(of: third3.map(\.msgId)) })

        // Expire broker 0's session (SIGSTOP past the 2 s timeout): its ephemerals go, then it registers again.
        brokers[0].process.send(SIGSTOP)
        let gone = await Self.eventually(15) { await Self.text(session, "/meta/brokers/ids/0/master") == nil }
        brokers[0].process.send(SIGCONT)
        #expect(gone, "the master node of a stopped broker outlived its session")
        let uri0 = "meta://127.0.0.1:\(brokers[0].port)"
        let back = await Self.eventually(20) {
            let pub = await Self.text(session, "/meta/brokers/topics-pub/test/0-m")
            let master = await Self.text(session, "/meta/brokers/ids/0/master")
            return pub == "{\"numParts\":3,\"broker\":\"0-m\"}" && master == uri0
        }
        #expect(back, "broker 0 did not register again; log:\n\(brokers[0].log())")

        // §5.5: a broadcast consumer is a group of its own (`g-<local IP>`, offsets in a local file)
        // and receives every message.
        let everything = Set((sent + second + third3).map(\.msgId))
        let broadcastLog = Collected()
        let broadcast = try clients[0].broadcastConsumer(group: "g", ConsumerSettings(
            consumerId: "b", offsetStorage: .localFile(base + "/broadcast-offsets.json"), rebalanceRetryDelayMs: 200))
        try broadcast.subscribe("test")
        let broadcastRun = Task { try await broadcast.run { broadcastLog.add("b", $0.id) } }
        #expect(broadcast.group.hasPrefix("g-") && broadcast.group != "g")
        #expect(await Self.eventually(30) { broadcastLog.all.isSuperset(of: everything) })
        #expect(await Self.children(session, "/meta/consumers").contains(broadcast.group))
        await broadcast.close()
        _ = try? await broadcastRun.value
        #expect(FileManager.default.fileExists(atPath: base + "/broadcast-offsets.json"))

        for consumer in consumers { await consumer.close() }
        for run in runs { _ = try? await run.value }
        // §5.4: offsets committed on close, as `<msgId>-<offset>`.
        let offsets = await Self.children(session, "/meta/consumers/g/offsets/test")
        #expect(offsets.count >= 6)
        let printed = try BrokerProcess.tool(["cluster", "--zookeeper", zk.connectString]).output
        #expect(printed.contains("    offset test 0-0 = ") && printed.contains("  g\n"), "\(printed)")
        for partition in offsets {
            let text = await Self.text(session, "/meta/consumers/g/offsets/test/" + partition) ?? ""
            #expect(StoredOffset(text: text) != nil && text.contains("-"), "\(partition): \(text)")
        }
        for client in clients { await client.shutdown() }
        await producerClient.shutdown()
        // A clean stop removes the broker's registration (§3.2).
        #expect(brokers[1].stop() == 0)
        #expect(await Self.eventually(10) { await Self.text(session, "/meta/brokers/ids/1/master") == nil })
    }
}
