import Foundation
import MetaQClient
import ProtocolCore
import Synchronization
import Testing

/// Retries and the local recover store (§5.2) through `MetaQClient` against a real broker: a
/// message its handler fails 7 times is attempted 6 times from the partition, kept in the
/// recover store, and handled on a later redelivery round, while the rest of its partition is
/// consumed in order meanwhile.
@Suite("MetaQClient retry and recover store", .serialized)
struct ClientRecoverTests {
    final class Log: Sendable {
        let handled = Mutex<[(partition: BrokerPartition, offset: Int64, text: String)]>([])
        let failures = Mutex<Int>(0)
        var texts: [String] { handled.withLock { $0.map(\.text) } }
    }

    @Test func messageFailingSevenTimesIsRecoveredAndRedelivered() async throws {
        let env = try DirectBroker("metaq-recover")
        defer { env.stop() }
        let (directory, client) = (env.directory, env.client)
        let producer = client.producer()
        for i in 0..<10 { _ = try await producer.send(topic: "test", data: Array("m\(i)".utf8)) }
        let used = [BrokerPartition(brokerId: 0, partition: 0), BrokerPartition(brokerId: 0, partition: 1)]
        let settings = ConsumerSettings(offsetStorage: .localFile(directory + "/offsets.json"), commitIntervalMs: 200,
                                        maxFetchDelayMs: 200, directPartitions: used,
                                        maxFetchRetries: 5, rejection: .recoverLocally(path: directory + "/recover"),
                                        recoverIntervalMs: 500)
        let log = Log()
        let consumer = try client.consumer(group: "g", settings)
        try consumer.subscribe("test")
        let run = Task {
            try await consumer.run { message in
                if message.text == "m3", log.failures.withLock({ failures in defer { failures += 1 }; return failures < 7 }) {
                    throw CancellationError()
                }
                log.handled.withLock { $0.append((message.partition, message.offset, message.text)) }
            }
        }
        let deadline = Date().addingTimeInterval(30)
        while !log.texts.contains("m3") && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        await consumer.close()
        _ = try? await run.value
        await client.shutdown()

        #expect(log.texts.sorted() == (0..<10).map { "m\($0)" }.sorted(), "each handled once: \(log.texts)")
        #expect(log.failures.withLock { $0 } == 8, "7 failures, then the success")
        let all = log.handled.withLock { $0 }
        let m3 = try #require(all.firstIndex { $0.text == "m3" })
        #expect(m3 == all.count - 1, "m3 succeeded only on a redelivery round, after the rest: \(log.texts)")
        for partition in used {
            let offsets = all.filter { $0.partition == partition && $0.text != "m3" }.map(\.offset)
            #expect(offsets == offsets.sorted(), "\(partition) consumed in order: \(offsets)")
        }
        let store = directory + "/recover/test@g/recover.log"
        #expect(FileManager.default.fileExists(atPath: store))
    }

    /// A message that always fails stays in the store across rounds (MetaQ issue #111) and across
    /// a restart: the next consumer of the group, started on the stored offsets, gets it from the
    /// store and nothing else again.
    @Test func keptMessageSurvivesARestart() async throws {
        let env = try DirectBroker("metaq-recover")
        defer { env.stop() }
        let (directory, client) = (env.directory, env.client)
        for i in 0..<4 { _ = try await client.producer().send(topic: "test", data: Array("m\(i)".utf8)) }
        let settings = ConsumerSettings(offsetStorage: .localFile(directory + "/offsets.json"), commitIntervalMs: 100,
                                        maxFetchDelayMs: 100,
                                        directPartitions: [BrokerPartition(brokerId: 0, partition: 0), BrokerPartition(brokerId: 0, partition: 1)],
                                        maxFetchRetries: 1, rejection: .recoverLocally(path: directory + "/recover"),
                                        recoverIntervalMs: 200)
        let first = Log()
        let consumer = try client.consumer(group: "g", settings)
        try consumer.subscribe("test")
        let run = Task {
            try await consumer.run { message in
                if message.text == "m1" {
                    first.failures.withLock { $0 += 1 }
                    throw CancellationError()
                }
                first.handled.withLock { $0.append((message.partition, message.offset, message.text)) }
            }
        }
        // 2 attempts from the partition, then at least 2 failing redelivery rounds.
        let deadline = Date().addingTimeInterval(30)
        while (first.failures.withLock { $0 } < 4 || first.texts.count < 3) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        await consumer.close()
        _ = try? await run.value
        #expect(first.texts.sorted() == ["m0", "m2", "m3"] && first.failures.withLock { $0 } >= 4)
        // `metaq recover` shows the kept message: `brokerId-partition offset msgId attribute bytes data`.
        let listed = try BrokerProcess.tool(["recover", "--path", directory + "/recover"])
        let lines = listed.output.split(separator: "\n").map(String.init)
        #expect(listed.status == 0 && lines.first == "test@g: 1 message (\(directory)/recover/test@g/recover.log)", "\(lines)")
        #expect(lines.count == 2 && lines[1].hasPrefix("  0-") && lines[1].hasSuffix(" - 2 m1"), "\(lines)")

        // The next consumer gets m1 from the store, the markers put into both partitions now, and
        // nothing else: a partition is consumed in order, so an old message would come before its
        // marker; and once the store is empty, m1 cannot come from it again.
        let second = Log()
        let again = try client.consumer(group: "g", settings)
        try again.subscribe("test")
        let secondRun = Task { try await again.run { message in second.handled.withLock { $0.append((message.partition, message.offset, message.text)) } } }
        let markers = try env.putMarkers("after-restart")
        let until = Date().addingTimeInterval(30)
        func storeIsEmpty() throws -> Bool {
            let summary = try BrokerProcess.tool(["recover", "--path", directory + "/recover", "--group", "g", "--summary"])
            return summary.output.hasPrefix("test@g: 0 messages")
        }
        while Date() < until {
            if second.texts.contains("m1") && Set(second.texts).isSuperset(of: markers), try storeIsEmpty() { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        await again.close()
        _ = try? await secondRun.value
        await client.shutdown()
        #expect(second.texts.sorted() == (["m1"] + markers).sorted(), "only the kept message, once: \(second.texts)")
        let after = try BrokerProcess.tool(["recover", "--path", directory + "/recover", "--group", "g", "--summary"])
        #expect(after.output.hasPrefix("test@g: 0 messages"), "handled, so removed: \(after.output)")
    }
}
