import Foundation
import MetaQClient
import ProtocolCore
import Testing

/// Transactions in cluster mode (reference §3, §4): a real ZooKeeper, two brokers, and
/// `MetaQClient` finding them through ZooKeeper. A local transaction stays on the broker its first
/// send chose; its messages appear there, all at once, at commit; a rolled-back one never does.
@Suite("Transactions in cluster mode (reference §3, §4)", .serialized)
struct ClusterTransactionTests {
    @Test func aLocalTransactionFindsItsBrokerThroughZooKeeperAndCommitsThere() async throws {
        let zk = try ZooKeeperServer()
        try zk.start()
        defer { zk.stop() }
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("metaq-cluster-tx-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let brokers = try ClusterTests.startBrokers(2, zk: zk, base: base)
        defer { for broker in brokers { _ = broker.stop() } }
        let client = try MetaQClient(zooKeeper: zk.connectString, sessionTimeoutMs: 4000, logger: ClusterTests.silent)
        let producer = client.producer()
        #expect(try await producer.publish("test").count == 6, "both brokers registered their 3 partitions")

        // The timeout travels on BEGIN; 60 s (the broker's cap) because a busy CI machine once took
        // more than 10 s between two sends and the broker rightly rolled the transaction back.
        let results = try await producer.transaction(timeout: .seconds(60)) { tx in
            try await (0..<4).asyncMap { try await tx.send(topic: "test", data: Array("c\($0)".utf8)) }
        }
        let broker = try #require(Set(results.map(\.partition.brokerId)).first)
        #expect(Set(results.map(\.partition.brokerId)).count == 1, "one broker per local transaction: \(results)")
        #expect(Set(results.map(\.transactionId)).count == 1)
        var stored: [String] = []
        for partition in Set(results.map(\.partition.partition)).sorted() {
            stored += try brokers[broker].readAll(partition: Int32(partition)).values.map { String(decoding: $0.data, as: UTF8.self) }
        }
        #expect(stored.sorted() == ["c0", "c1", "c2", "c3"], "committed on broker \(broker): \(stored)")

        struct Abort: Error {}
        var abortedOn: BrokerPartition?
        await #expect(throws: Abort.self) {
            try await producer.transaction { tx in
                abortedOn = try await tx.send(topic: "test", data: Array("never".utf8)).partition
                throw Abort()
            }
        }
        let aborted = try #require(abortedOn)
        // A transaction after the rollback, on the same broker connection, commits; "never" is not
        // stored (the rollback was answered before it).
        _ = try await producer.transaction { tx in try await tx.send(topic: "test", data: Array("after".utf8)) }
        var everything: [String] = []
        for id in 0..<2 {
            for partition in Int32(0)..<3 {
                everything += try brokers[id].readAll(partition: partition).values.map { String(decoding: $0.data, as: UTF8.self) }
            }
        }
        #expect(!everything.contains("never") && everything.contains("after"), "rolled back on \(aborted): \(everything)")

        // The tool in cluster mode: one transaction of two messages.
        let produced = try BrokerProcess.tool(["produce", "test", "--zookeeper", zk.connectString, "--transaction", "z1", "z2"])
        #expect(produced.status == 0 && produced.output.contains("committed"), "\(produced.output)")
        await client.shutdown()
    }
}

extension Sequence {
    /// `map` with an async body, in order.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
