import Foundation
import MetaQClient
import ProtocolCore
import Runtime
import Testing
import ProcessHarness

/// Znodes without data (ZooKeeper's null, not empty data) against a real ZooKeeper: the original
/// creates every persistent parent that way (zkclient's `createPersistent(path, true)`,
/// reference §3.1), and so do our broker, producer and consumer.
@Suite("Znodes without data on a real ZooKeeper (reference §3.1)", .serialized)
struct ZooKeeperNullDataTests {
    static let serverInstalled = ZooKeeperServer.isInstalled

    func data(_ session: ZooKeeperSession, _ path: String) async -> CoordinationReply {
        await session.perform(.getData(path: path, watch: false))
    }

    /// The C client reads a null node as no buffer and length -1, empty data as length 0.
    @Test(.enabled(if: serverInstalled, "needs zookeeper and java (scripts/install-deps.sh)"))
    func nullAndEmptyDataAreDistinct() async throws {
        let zk = try ZooKeeperServer()
        try zk.start()
        defer { zk.stop() }
        let session = try await ClusterTests.observer(zk)
        defer { session.close() }
        #expect(await session.perform(.create(path: "/null", data: nil, mode: .persistent)) == .created(path: "/null"))
        #expect(await session.perform(.create(path: "/empty", data: [], mode: .persistent)) == .created(path: "/empty"))
        #expect(await session.perform(.create(path: "/full", data: [1, 2], mode: .persistent)) == .created(path: "/full"))
        #expect(await data(session, "/null") == .data(nil))
        #expect(await data(session, "/empty") == .data([]))
        #expect(await data(session, "/full") == .data([1, 2]))
        #expect(await session.perform(.setData(path: "/null", data: [3])) == .dataSet)
        #expect(await data(session, "/null") == .data([3]))
    }

    /// A broker's registration, a producer's `publish` of a topic nobody registered and a
    /// consumer group member create their parents without data; nodes with data keep it.
    @Test(.enabled(if: serverInstalled, "needs zookeeper and java (scripts/install-deps.sh)"))
    func parentsCreatedOnTheWayHaveNoData() async throws {
        let zk = try ZooKeeperServer()
        try zk.start()
        defer { zk.stop() }
        let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-null-parents")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try BrokerProcess(directory: directory, config: ClusterTests.config(brokerId: 0, zk: zk.connectString))
        broker.local = false
        try broker.start()
        defer { _ = broker.stop() }
        let session = try await ClusterTests.observer(zk)
        defer { session.close() }
        #expect(await ClusterTests.eventually(15) { await ClusterTests.text(session, "/meta/brokers/topics-sub/test/0-m") != nil })

        let client = try MetaQClient(zooKeeper: zk.connectString, sessionTimeoutMs: 4000, logger: ClusterTests.silent)
        _ = try await client.producer(ProducerSettings(discoveryTimeoutMs: 500)).publish("fresh")
        let consumer = try client.consumer(group: "g", ConsumerSettings(consumerId: "c1", rebalanceRetryDelayMs: 200))
        try consumer.subscribe("test")
        let run = Task { try await consumer.run { _ in } }
        #expect(await ClusterTests.eventually(15) {
            await ClusterTests.children(session, "/meta/consumers/g/owners/test").count == 3
        })

        let parents = [
            "/meta", "/meta/brokers", "/meta/brokers/ids", "/meta/brokers/topics", "/meta/brokers/topics/test",
            "/meta/brokers/topics-pub", "/meta/brokers/topics-pub/test", "/meta/brokers/topics-sub",
            "/meta/brokers/topics-sub/test", "/meta/brokers/topics-pub/fresh", "/meta/consumers", "/meta/consumers/g",
            "/meta/consumers/g/ids", "/meta/consumers/g/owners", "/meta/consumers/g/owners/test",
        ]
        for parent in parents {
            #expect(await data(session, parent) == .data(nil), "\(parent)")
        }
        let uri = "meta://127.0.0.1:\(broker.port)"
        #expect(await data(session, "/meta/brokers/ids/0") == .data(Array(uri.utf8)), "ids/<id> keeps the master's URI")
        #expect(await data(session, "/meta/brokers/topics/test/0-m") == .data(Array("3".utf8)))
        #expect(await data(session, "/meta/consumers/g/ids/g_c1") == .data(Array("test".utf8)))
        await consumer.close()
        try await run.value
        await client.shutdown()
    }
}
