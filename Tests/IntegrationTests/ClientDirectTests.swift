import Foundation
import MetaQClient
import ProtocolCore
import Synchronization
import Testing

/// `MetaQClient` without ZooKeeper (direct mode, §1.7) against a real local broker: partition `-1`
/// sends, fetches of given partitions, a failing handler (§5.1: the partition does not move past a
/// failed message; order is kept), and offsets in a local file in LocalOffsetStorage's format (§5.4).
@Suite("MetaQClient in direct mode", .serialized)
struct ClientDirectTests {
    /// How long a wait for an expected delivery may take before the test gives up. Generous:
    /// a passing run stops waiting at once, and in the full suite the sweeps can hold the
    /// cooperative threads for many seconds (a 20 s window once ran out before any delivery).
    static let patience: TimeInterval = 120

    final class Log: Sendable {
        let entries = Mutex<[(partition: BrokerPartition, offset: Int64, text: String)]>([])
        let failuresLeft = Mutex<Int>(2)
        var texts: [String] { entries.withLock { $0.map(\.text) } }
    }

    @Test func failedMessagesAreRedeliveredInOrderAndOffsetsSurviveARestart() async throws {
        let env = try DirectBroker("metaq-direct")
        defer { env.stop() }
        let (directory, broker, client) = (env.directory, env.broker, env.client)
        let producer = client.producer()
        var results: [SendResult] = []
        for i in 0..<10 { results.append(try await producer.send(topic: "test", data: Array("m\(i)".utf8))) }
        #expect(results.allSatisfy { $0.broker == "meta://127.0.0.1:\(broker.port)" && $0.partition.brokerId == 0 })
        // The broker has two partitions (numPartitions=2); the consumer fetches both.
        let used = [BrokerPartition(brokerId: 0, partition: 0), BrokerPartition(brokerId: 0, partition: 1)]

        let offsets = directory + "/offsets.json"
        let settings = ConsumerSettings(offsetStorage: .localFile(offsets), commitIntervalMs: 200,
                                        maxFetchDelayMs: 200, directPartitions: used,
                                        rejection: .recoverLocally(path: directory + "/recover"))
        let log = Log()
        let consumer = try client.consumer(group: "g", settings)
        try consumer.subscribe("test")
        let run = Task {
            try await consumer.run { message in
                if message.text == "m3", log.failuresLeft.withLock({ left in defer { left -= 1 }; return left > 0 }) {
                    throw CancellationError()
                }
                log.entries.withLock { $0.append((message.partition, message.offset, message.text)) }
            }
        }
        let deadline = Date().addingTimeInterval(Self.patience)
        while log.texts.count < 10 && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(Set(log.texts) == Set((0..<10).map { "m\($0)" }) && log.texts.count == 10, "\(log.texts)")
        #expect(log.failuresLeft.withLock { $0 } < 0, "m3 failed twice before it was handled")
        // Per partition, offsets strictly increase: m3's partition did not move past it while it failed.
        for partition in used {
            let seen = log.entries.withLock { $0.filter { $0.partition == partition }.map(\.offset) }
            #expect(seen == seen.sorted() && Set(seen).count == seen.count, "\(partition): \(seen)")
        }
        await consumer.close()
        _ = try? await run.value
        let file = try String(contentsOfFile: offsets, encoding: .utf8)
        #expect(file.contains(#""g":"#) && file.contains(#""topic":"test""#), "\(file)")

        // A new consumer with the same file starts where the first stopped: it gets the markers
        // put into both partitions now and nothing else (a partition is consumed in order, so an
        // old message would have come before its partition's marker).
        let again = Log()
        let second = try client.consumer(group: "g", settings)
        try second.subscribe("test")
        let secondRun = Task { try await second.run { message in again.entries.withLock { $0.append((message.partition, message.offset, message.text)) } } }
        let markers = try env.putMarkers("after-restart")
        let until = Date().addingTimeInterval(Self.patience)
        while !Set(again.texts).isSuperset(of: markers) && Date() < until { try await Task.sleep(for: .milliseconds(50)) }
        #expect(again.texts.sorted() == markers, "nothing before the stored offsets is delivered again: \(again.texts)")
        await second.close()
        _ = try? await secondRun.value
        await client.shutdown()
    }

    /// A burst of async sends, drained by the client's loop many at a time and handed to the
    /// producer machine together: every send completes exactly once, a send beyond the window
    /// and the queue bound fails as not sent, and per partition the stored order is the send order.
    @Test func burstOfAsyncSendsCompletesOnceInOrderWithinBounds() async throws {
        let env = try DirectBroker("metaq-direct-burst")
        defer { env.stop() }
        let producer = env.client.producer(ProducerSettings(requestTimeoutMs: 60_000, maxInFlight: 8, maxQueued: 50))
        let total = 500
        let outcomes = Mutex<[Int: [Result<SendResult, SendError>]]>([:])
        for i in 0..<total {
            producer.send(topic: "test", data: Array("b\(i)".utf8)) { result in outcomes.withLock { $0[i, default: []].append(result) } }
        }
        let deadline = Date().addingTimeInterval(Self.patience)
        while outcomes.withLock({ $0.count }) < total && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let results = outcomes.withLock { $0 }
        #expect(results.count == total && results.values.allSatisfy { $0.count == 1 })
        var stored: [BrokerPartition: [(index: Int, offset: Int64)]] = [:]
        for (index, result) in results {
            switch result[0] {
            case .success(let sent): stored[sent.partition, default: []].append((index, sent.offset))
            case .failure(let error):
                guard case .notSent = error.kind else { Issue.record("send \(index): \(error)"); continue }
            }
        }
        #expect(stored.values.map(\.count).reduce(0, +) >= 50, "the first 50 sends fit the queue whatever the timing")
        for (partition, puts) in stored {
            let offsets = puts.sorted { $0.index < $1.index }.map(\.offset)
            #expect(offsets == offsets.sorted() && Set(offsets).count == offsets.count, "\(partition): \(offsets)")
        }
        await env.client.shutdown()
    }
}
