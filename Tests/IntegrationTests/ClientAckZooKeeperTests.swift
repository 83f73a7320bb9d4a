import Foundation
import MetaQClient
import ProtocolCore
import Runtime
import Synchronization
import Testing

/// Manual acknowledgement (§5.3) in a consumer group: the offset written to ZooKeeper (§3.1,
/// §5.4 `ZkOffsetStorage`) is the last ack, not the last handled message.
@Suite("MetaQClient manual ack with ZooKeeper offsets", .serialized)
struct ClientAckZooKeeperTests {
    @Test func onlyTheLastAckReachesZooKeeper() async throws {
        let zk = try ZooKeeperServer()
        try zk.start()
        defer { zk.stop() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("metaq-ackzk-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = ClusterTests.config(brokerId: 0, zk: zk.connectString).replacingOccurrences(of: "numPartitions=3", with: "numPartitions=1")
        let broker = try BrokerProcess(directory: directory, config: config)
        broker.local = false
        try broker.start()
        defer { _ = broker.stop() }
        let session = try await ClusterTests.observer(zk)
        defer { session.close() }
        #expect(await ClusterTests.eventually(15) { await ClusterTests.text(session, "/meta/brokers/topics-pub/test/0-m") != nil })

        let client = try MetaQClient(zooKeeper: zk.connectString, sessionTimeoutMs: 4000, logger: ClusterTests.silent)
        let producer = client.producer()
        #expect(try await producer.publish("test").count == 1)
        var sent: [SendResult] = []
        for i in 0..<5 { sent.append(try await producer.send(topic: "test", data: Array("m\(i)".utf8))) }
        let handled = Mutex<[String]>([])
        let consumer = try client.consumer(group: "g", ConsumerSettings(consumerId: "c1", commitIntervalMs: 100,
                                                                        rebalanceRetryDelayMs: 200, rejection: .drop))
        try consumer.subscribe("test")
        let run = Task {
            try await consumer.run(manualAck: { message, ack in
                handled.withLock { $0.append(message.text) }
                if message.text == "m2" { ack.ack() }
            })
        }
        #expect(await ClusterTests.eventually(30) { handled.withLock { $0.count } == 5 })
        // Five 22-byte records from offset 0: the ack of m2 commits m3's start, with m2's id. The
        // periodic commit (every 100 ms) writes it while the consumer runs, and closing (which
        // commits too) leaves it there: m3 and m4 were handled but never acknowledged.
        let m3 = 3 * Int64(Record.headerSize + 2)
        let expected = StoredOffset(msgId: sent[2].msgId, offset: m3).text
        let path = "/meta/consumers/g/offsets/test/0-0"
        #expect(await ClusterTests.eventually(15) { await ClusterTests.text(session, path) == expected })
        await consumer.close()
        _ = try? await run.value
        await client.shutdown()
        let stored = await ClusterTests.text(session, path)
        #expect(stored == expected, "\(stored ?? "nil")")
    }
}
