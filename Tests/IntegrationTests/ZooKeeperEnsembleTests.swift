import Foundation
import MetaQClient
import ProtocolCore
import Runtime
import Synchronization
import Testing
import ProcessHarness

/// Cluster mode against a three-server ZooKeeper ensemble (`ZooKeeperEnsemble`), as MetaQ is run
/// in production: brokers, producers and consumer groups given all three servers, and the drill
/// MetaQ operators ran — the ZooKeeper leader killed while messages flow.
@Suite("Cluster on a three-server ZooKeeper ensemble", .serialized)
struct ZooKeeperEnsembleTests {
    /// A session of the test's own, connected (or the test fails); `connect` may name one server
    /// of the ensemble, to read what that server serves.
    static func observer(_ connect: String) async throws -> ZooKeeperSession {
        let session = try ZooKeeperSession(connect: connect, sessionTimeoutMs: 10_000, logger: ClusterTests.silent) { _ in }
        guard await session.waitUntilConnected(timeoutMs: 30_000) else {
            session.close()
            throw HarnessError("no session to \(connect)")
        }
        return session
    }

    /// Whether `session` reads every broker's registration: its master node
    /// (`/meta/brokers/ids/<id>/master`) as `meta://127.0.0.1:<port>`, and topic `test` published
    /// and subscribable on it (the last nodes a broker writes, §3.2); `brokers[id]` is broker `id`.
    static func registered(_ session: ZooKeeperSession, _ brokers: [BrokerProcess]) async -> Bool {
        for (id, broker) in brokers.enumerated() {
            guard await ClusterTests.text(session, "/meta/brokers/ids/\(id)/master") == "meta://127.0.0.1:\(broker.port)" else { return false }
        }
        let names = brokers.indices.map { "\($0)-m" }
        let published = await ClusterTests.children(session, "/meta/brokers/topics-pub/test")
        let subscribable = await ClusterTests.children(session, "/meta/brokers/topics-sub/test")
        return published == names && subscribable == names
    }

    /// What `session` reads of the brokers' registrations, for failure messages.
    static func registrations(_ session: ZooKeeperSession) async -> String {
        let ids = await ClusterTests.children(session, "/meta/brokers/ids")
        let pub = await ClusterTests.children(session, "/meta/brokers/topics-pub/test")
        let sub = await ClusterTests.children(session, "/meta/brokers/topics-sub/test")
        return "ids \(ids), topics-pub/test \(pub), topics-sub/test \(sub)"
    }

    static func temporaryBase(_ name: String) throws -> String {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        return base
    }

    /// A consumer group `g` of two members, each on a client of its own, handing what they
    /// receive to `collected`.
    final class Group {
        var clients: [MetaQClient] = []
        var consumers: [MetaQConsumer] = []
        var runs: [Task<Void, any Error>] = []

        init(zkConnect: String, collected: ClusterTests.Collected) throws {
            for name in ["c1", "c2"] {
                let client = try MetaQClient(zooKeeper: zkConnect, sessionTimeoutMs: 4000, logger: ClusterTests.silent)
                clients.append(client)
                let consumer = try client.consumer(group: "g", ConsumerSettings(consumerId: name, commitIntervalMs: 500,
                                                                                rebalanceRetryDelayMs: 200))
                try consumer.subscribe("test")
                consumers.append(consumer)
                runs.append(Task { try await consumer.run { collected.add(name, $0.id) } })
            }
        }

        func close() async {
            for consumer in consumers { await consumer.close() }
            for run in runs { _ = try? await run.value }
            for client in clients { await client.shutdown() }
        }
    }

    @Test func theEnsembleFormsAndBrokersProducersAndAGroupWorkAcrossIt() async throws {
        let ensemble = try ZooKeeperEnsemble.started()
        defer { ensemble.stop() }
        // Each probe is bounded (1 s) and may time out on a loaded machine: poll, do not ask once.
        let formed = await ClusterTests.eventually(30) {
            ensemble.members.indices.compactMap { ensemble.status($0)?.mode }.sorted() == ["follower", "follower", "leader"]
                && ensemble.leader().flatMap { ensemble.status($0)?.syncedFollowers } == 2
        }
        #expect(formed, "\(ensemble.members.indices.map { ensemble.status($0) })")

        // A write through the ensemble is served by every server (a follower may lag: eventually).
        let writer = try await Self.observer(ensemble.connectString)
        defer { writer.close() }
        #expect(await writer.perform(.create(path: "/probe", data: Array("x".utf8), mode: .persistent)) == .created(path: "/probe"))
        var pinned: [ZooKeeperSession] = []
        defer { for session in pinned { session.close() } }
        for member in ensemble.members { pinned.append(try await Self.observer(member.connectString)) }
        for (index, session) in pinned.enumerated() {
            #expect(await ClusterTests.eventually(30) { await ClusterTests.text(session, "/probe") == "x" }, "server \(index + 1)")
        }

        // Brokers given all three servers register; every server serves their nodes.
        let base = try Self.temporaryBase("metaq-ensemble")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let brokers = try ClusterTests.startBrokers(2, zkConnect: ensemble.connectString, base: base)
        defer { for broker in brokers { _ = broker.stop() } }
        for (index, session) in pinned.enumerated() {
            let both = await ClusterTests.eventually(30) { await Self.registered(session, brokers) }
            let seen = await Self.registrations(session)
            #expect(both, "server \(index + 1): \(seen)")
        }
        let cluster = try BrokerProcess.tool(["cluster", "--zookeeper", ensemble.connectString])
        #expect(cluster.output.contains("  test  publish: 0-m×3 1-m×3  subscribe: 0-m×3 1-m×3"), "\(cluster.output)")

        // A producer and a group of two, both through the ensemble.
        let producerClient = try MetaQClient(zooKeeper: ensemble.connectString, sessionTimeoutMs: 4000, logger: ClusterTests.silent)
        let producer = producerClient.producer()
        #expect(try await producer.publish("test").count == 6)
        let collected = ClusterTests.Collected()
        let group = try Group(zkConnect: ensemble.connectString, collected: collected)
        var sent: [SendResult] = []
        for i in 0..<30 { sent.append(try await producer.send(topic: "test", data: Array("e\(i)".utf8))) }
        #expect(Set(sent.map(\.partition)).count == 6)
        let received = await ClusterTests.eventually(60) { collected.all.isSuperset(of: sent.map(\.msgId)) }
        #expect(received, "the group received \(collected.all.intersection(sent.map(\.msgId)).count) of \(sent.count)")
        #expect(await ClusterTests.eventually(30) { await ClusterTests.owners(writer).count == 6 })
        await group.close()
        await producerClient.shutdown()
    }

    /// What a producer sending without pause got: every acknowledged send with its payload, and
    /// every failed one.
    final class Ledger: Sendable {
        let acknowledged = Mutex<[(result: SendResult, data: [UInt8])]>([])
        let failures = Mutex<[SendError]>([])
        let stopping = Atomic<Bool>(false)

        var count: Int { acknowledged.withLock { $0.count } }
        var ids: [Int64] { acknowledged.withLock { $0.map(\.result.msgId) } }

        /// Sends `d0`, `d1`, … one at a time until `stopping` (at most `limit`). A failed send
        /// is recorded and the next one tried after 50 ms, so a refusing cluster is not hammered.
        func produce(_ producer: MetaQProducer, limit: Int = 100_000) async {
            var i = 0
            while !stopping.load(ordering: .acquiring) && i < limit {
                let data = Array("d\(i)".utf8)
                do {
                    let result = try await producer.send(topic: "test", data: data)
                    acknowledged.withLock { $0.append((result, data)) }
                } catch {
                    failures.withLock { $0.append(error) }
                    try? await Task.sleep(for: .milliseconds(50))
                }
                i += 1
            }
        }
    }

    /// The drill: two brokers, a producer and a group of two on the ensemble; SIGKILL the
    /// ZooKeeper leader mid-run. The brokers keep (or regain) their registrations, the producer
    /// keeps being acknowledged, the group keeps consuming, and every acknowledged message is
    /// received by the group and stored where its acknowledgement said. The killed server,
    /// restarted, rejoins as a follower.
    @Test func killingTheZooKeeperLeaderMidRunLosesNoAcknowledgedMessage() async throws {
        let ensemble = try ZooKeeperEnsemble.started()
        defer { ensemble.stop() }
        let base = try Self.temporaryBase("metaq-ensemble-drill")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let brokers = try ClusterTests.startBrokers(2, zkConnect: ensemble.connectString, base: base)
        defer { for broker in brokers { _ = broker.stop() } }
        let watcher = try await Self.observer(ensemble.connectString)
        defer { watcher.close() }
        // A broker accepts connections before it has registered: wait for both, or the producer
        // could start with one broker's partitions.
        let both = await ClusterTests.eventually(30) { await Self.registered(watcher, brokers) }
        let seen = await Self.registrations(watcher)
        #expect(both, "\(seen)")

        let producerClient = try MetaQClient(zooKeeper: ensemble.connectString, sessionTimeoutMs: 4000, logger: ClusterTests.silent)
        let producer = producerClient.producer()
        #expect(try await producer.publish("test").count == 6, "both brokers registered their 3 partitions")
        let collected = ClusterTests.Collected()
        let group = try Group(zkConnect: ensemble.connectString, collected: collected)
        #expect(await ClusterTests.eventually(60) { await ClusterTests.owners(watcher).count == 6 }, "the group took every partition")

        let ledger = Ledger()
        defer { ledger.stopping.store(true, ordering: .releasing) }  // also when a step throws
        let sending = Task { await ledger.produce(producer) }
        // Running: acknowledged, and consumed, before the kill.
        #expect(await ClusterTests.eventually(60) { ledger.count >= 100 }, "acknowledged before the kill: \(ledger.count)")
        let early = ledger.ids
        #expect(await ClusterTests.eventually(60) { collected.all.isSuperset(of: early) }, "consumed before the kill")

        let killed = try ensemble.waitUntilServing()
        let atKill = ledger.count
        ensemble.kill(killed)
        let newLeader = try ensemble.waitUntilServing()
        #expect(newLeader != killed)

        // Registrations, read through a surviving server: kept, or made again once the session
        // (2 s) expired — well within 30 s of the quorum serving again.
        let survivor = try await Self.observer(ensemble.members[newLeader].connectString)
        defer { survivor.close() }
        let registered = await ClusterTests.eventually(30) { await Self.registered(survivor, brokers) }
        let afterElection = await Self.registrations(survivor)
        #expect(registered, "through server \(newLeader + 1): \(afterElection)")

        // The producer goes on being acknowledged, and the group goes on consuming what it sends.
        let more = await ClusterTests.eventually(60) { ledger.count >= atKill + 200 }
        #expect(more, "acknowledged after the kill: \(ledger.count - atKill); failures: \(ledger.failures.withLock { $0.suffix(5) })")
        let afterKill = ledger.ids
        let consuming = await ClusterTests.eventually(60) { collected.all.isSuperset(of: afterKill) }
        #expect(consuming, "consumed \(collected.all.intersection(afterKill).count) of \(afterKill.count) acknowledged")

        // The killed server comes back as a follower of the new leader and serves the registrations.
        #expect(try ensemble.restart(killed) == newLeader)
        #expect(await ClusterTests.eventually(30) { ensemble.status(killed)?.mode == "follower" })
        let rejoined = try await Self.observer(ensemble.members[killed].connectString)
        defer { rejoined.close() }
        #expect(await ClusterTests.eventually(30) { await Self.registered(rejoined, brokers) }, "through the restarted server \(killed + 1)")

        // Every acknowledged message: received by the group, and stored at its offset.
        ledger.stopping.store(true, ordering: .releasing)
        await sending.value
        let acknowledged = ledger.acknowledged.withLock { $0 }
        let all = await ClusterTests.eventually(60) { collected.all.isSuperset(of: acknowledged.map(\.result.msgId)) }
        #expect(all, "the group received \(collected.all.intersection(acknowledged.map(\.result.msgId)).count) of \(acknowledged.count)")
        var stored: [BrokerPartition: [Int64: Message]] = [:]
        for partition in Set(acknowledged.map(\.result.partition)) {
            stored[partition] = try brokers[partition.brokerId].readAll(partition: Int32(partition.partition))
        }
        let missing = acknowledged.filter { entry in
            let message = stored[entry.result.partition]?[entry.result.offset]
            return message?.id != entry.result.msgId || message?.data != entry.data
        }
        #expect(missing.isEmpty, "\(missing.count) of \(acknowledged.count) acknowledged messages not stored as acknowledged: \(missing.prefix(5).map(\.result))")

        await group.close()
        await producerClient.shutdown()
    }
}
