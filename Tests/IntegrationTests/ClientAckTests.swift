import Foundation
import MetaQClient
import ProtocolCore
import Synchronization
import Testing

/// Manual acknowledgement and rollback (§5.3) through `MetaQClient` against a real broker with one
/// partition: only acks are committed, a rollback delivers again from the last ack, and a consumer
/// reopened on the offset file resumes from the last ack, not from the last handled message.
@Suite("MetaQClient manual ack and rollback", .serialized)
struct ClientAckTests {
    final class Log: Sendable {
        let texts = Mutex<[String]>([])
        let offsets = Mutex<[String: Int64]>([:])
        let rolledBack = Mutex(false)
        var seen: [String] { texts.withLock { $0 } }

        func add(_ message: ReceivedMessage) {
            texts.withLock { $0.append(message.text) }
            offsets.withLock { $0[message.text] = message.offset }
        }
    }

    static func waitUntil(seconds: Double = 20, _ done: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !done() && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
    }

    @Test func acksEveryThirdRollbackOnceAndResumeFromTheLastAck() async throws {
        let env = try DirectBroker("metaq-ack", config: DirectBroker.onePartition)
        defer { env.stop() }
        let (directory, client) = (env.directory, env.client)
        let producer = client.producer()
        for i in 0..<10 { _ = try await producer.send(topic: "test", data: Array("m\(i)".utf8)) }
        let settings = ConsumerSettings(offsetStorage: .localFile(directory + "/offsets.json"), commitIntervalMs: 100,
                                        maxFetchDelayMs: 200, directPartitions: [BrokerPartition(brokerId: 0, partition: 0)],
                                        rejection: .drop)
        let log = Log()
        let consumer = try client.consumer(group: "g", settings)
        try consumer.subscribe("test")
        let run = Task {
            try await consumer.run(manualAck: { message, ack in
                log.add(message)
                let n = Int(message.text.dropFirst())!
                if n == 7, log.rolledBack.withLock({ done in defer { done = true }; return !done }) {
                    ack.rollback()
                } else if n % 3 == 2 {
                    ack.ack()  // m2, m5, m8
                }
            })
        }
        // m10 goes last: once it is handled, everything before it was (one partition, in order).
        try await Self.waitUntil { log.seen.count >= 12 }
        try env.put("m10", partition: 0)
        try await Self.waitUntil { log.seen.contains("m10") }
        let expected = ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m6", "m7", "m8", "m9", "m10"]
        #expect(log.seen == expected, "after the rollback at m7, again from m6 (after the ack of m5)")
        await consumer.close()
        _ = try? await run.value

        // m9 was handled but never acknowledged: the reopened consumer starts there.
        let again = Log()
        let reopened = try client.consumer(group: "g", settings)
        try reopened.subscribe("test")
        let secondRun = Task { try await reopened.run(manualAck: { message, ack in again.add(message); ack.ack() }) }
        try env.put("m11", partition: 0)
        try await Self.waitUntil { again.seen.contains("m11") }
        #expect(again.seen == ["m9", "m10", "m11"], "resumed from the last ack: \(again.seen)")
        #expect(again.offsets.withLock { $0["m9"] } == log.offsets.withLock { $0["m9"] })
        await reopened.close()
        _ = try? await secondRun.value
        await client.shutdown()
        let file = try String(contentsOfFile: directory + "/offsets.json", encoding: .utf8)
        let end = try #require(again.offsets.withLock { $0["m11"] }) + Int64(Record.headerSize) + 3  // "m11"
        #expect(file.contains(#""offset":\#(end)"#), "m11's ack committed: \(file)")
    }

    /// `setRollbackOnly` (§5.3): a message rolled back to itself comes again, the ones before it
    /// in its batch do not, and without an ack nothing is committed.
    @Test func rollbackToThisMessageRedeliversFromIt() async throws {
        let env = try DirectBroker("metaq-ack", config: DirectBroker.onePartition)
        defer { env.stop() }
        let (directory, client) = (env.directory, env.client)
        for i in 0..<4 { _ = try await client.producer().send(topic: "test", data: Array("m\(i)".utf8)) }
        let offsets = directory + "/offsets.json"
        let settings = ConsumerSettings(offsetStorage: .localFile(offsets), commitIntervalMs: 100, maxFetchDelayMs: 200,
                                        directPartitions: [BrokerPartition(brokerId: 0, partition: 0)], rejection: .drop)
        let log = Log()
        let consumer = try client.consumer(group: "g", settings)
        try consumer.subscribe("test")
        let run = Task {
            try await consumer.run(manualAck: { message, ack in
                log.add(message)
                if message.text == "m2", log.rolledBack.withLock({ done in defer { done = true }; return !done }) {
                    ack.rollback(to: .thisMessage)
                }
            })
        }
        try await Self.waitUntil { log.seen.count >= 5 }
        try env.put("m4", partition: 0)
        try await Self.waitUntil { log.seen.contains("m4") }
        #expect(log.seen == ["m0", "m1", "m2", "m2", "m3", "m4"])
        await consumer.close()
        _ = try? await run.value
        await client.shutdown()
        let file = (try? String(contentsOfFile: offsets, encoding: .utf8)) ?? ""
        #expect(!file.contains(#""offset":"#) || file.contains(#""offset":0"#), "nothing acknowledged: \(file)")
    }
}
