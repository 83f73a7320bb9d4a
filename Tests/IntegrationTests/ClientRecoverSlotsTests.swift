import Foundation
import MetaQClient
import ProtocolCore
import Runtime
import StoreCore
import Synchronization
import Testing

/// Two consumers of one group on one machine with the same recover path (§5.2): each keeps its
/// own store file (a locked slot: `recover.log`, `recover.1.log`), so neither overwrites the
/// other's kept messages; when one stops, the other takes its file over and redelivers it.
@Suite("MetaQClient recover store slots", .serialized)
struct ClientRecoverSlotsTests {
    final class Shared: Sendable {
        let failing = Mutex(true)
        let handled = Mutex<[String]>([])
    }

    func stores(_ root: String) throws -> [RecoverStoreContents] {
        try RecoverStore.inspect(storage: FileStorage(), root: root)
    }

    func waitUntil(seconds: Double, _ condition: () throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while try !condition() && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
    }

    @Test func consumersOfOneGroupKeepSeparateFilesAndTheSurvivorTakesOverTheOther() async throws {
        let env = try DirectBroker("metaq-recover-slots")
        defer { env.stop() }
        let (directory, client) = (env.directory, env.client)
        let root = directory + "/recover"
        // Bad messages on both partitions (the broker picks the partition of a direct-mode send).
        let producer = client.producer()
        var bad: [String] = []
        var partitionsHit: Set<BrokerPartition> = []
        while partitionsHit.count < 2 || bad.count < 4 {
            let text = "bad-\(bad.count)"
            let result = try await producer.send(topic: "test", data: Array(text.utf8))
            bad.append(text)
            partitionsHit.insert(result.partition)
            _ = try await producer.send(topic: "test", data: Array("ok-\(bad.count)".utf8))
            #expect(bad.count < 64, "the broker never chose one of the partitions")
            if bad.count >= 64 { return }
        }
        let shared = Shared()
        func consumer(_ name: String, _ partition: Int) throws -> MetaQConsumer {
            let consumer = try client.consumer(group: "g", ConsumerSettings(
                consumerId: name, offsetStorage: .localFile(directory + "/offsets-\(name).json"), commitIntervalMs: 100,
                maxFetchDelayMs: 100, directPartitions: [BrokerPartition(brokerId: 0, partition: partition)],
                maxFetchRetries: 0, rejection: .recoverLocally(path: root), recoverIntervalMs: 200))
            try consumer.subscribe("test")
            return consumer
        }
        let (a, b) = (try consumer("a", 0), try consumer("b", 1))
        let handler: @Sendable (ReceivedMessage) async throws -> Void = { message in
            if message.text.hasPrefix("bad"), shared.failing.withLock({ $0 }) { throw CancellationError() }
            shared.handled.withLock { $0.append(message.text) }
        }
        let runs = [Task { try await a.run(handler) }, Task { try await b.run(handler) }]

        try await waitUntil(seconds: 30) { try stores(root).reduce(0) { $0 + $1.pending.count } == bad.count }
        let separate = try stores(root)
        #expect(separate.map { URL(fileURLWithPath: $0.path).lastPathComponent }.sorted() == ["recover.1.log", "recover.log"],
                "one file per consumer: \(separate.map(\.path))")
        #expect(separate.allSatisfy { !$0.pending.isEmpty })
        #expect(separate.flatMap(\.pending).map { String(decoding: $0.message.data, as: UTF8.self) }.sorted() == bad.sorted())

        await b.close()
        try await waitUntil(seconds: 30) { try stores(root).count == 1 }
        let merged = try stores(root)
        #expect(merged.count == 1 && merged.first?.pending.count == bad.count, "the survivor took the stopped consumer's file over")

        shared.failing.withLock { $0 = false }
        try await waitUntil(seconds: 30) { try stores(root).first?.pending.isEmpty ?? false }
        await a.close()
        for run in runs { _ = try? await run.value }
        await client.shutdown()
        #expect(try stores(root).first?.pending.isEmpty == true, "redelivered and removed")
        let handled = shared.handled.withLock { $0 }
        #expect(Set(bad).isSubset(of: Set(handled)), "every kept message was handled in the end: \(handled)")
    }
}
