import Foundation
import MetaQClient
import ProtocolCore
import Runtime
import Synchronization
import Testing

/// The ordered producer (reference §5.6) against a real broker in direct mode: keyed messages are
/// sent from one task per key, the broker is stopped with SIGTERM mid-stream (sends are spooled),
/// restarted on the same port and data directory (the spool is replayed), and a consumer then
/// reads every key's messages in send order with nothing missing.
@Suite("Ordered producer against a real broker (reference §5.6)", .serialized)
struct OrderedProducerTests {
    static let keys = ["alpha", "beta", "gamma", "delta", "epsilon"]
    static let perKey = 40
    static let partitions = [BrokerPartition(brokerId: 0, partition: 0), BrokerPartition(brokerId: 0, partition: 1)]

    final class Tally: Sendable {
        let results = Mutex<[String: [OrderedSendResult]]>([:])
        var count: Int { results.withLock { $0.values.reduce(0) { $0 + $1.count } } }
        var spooled: Int { results.withLock { $0.values.joined().filter { if case .spooled = $0 { true } else { false } }.count } }
    }

    final class Received: Sendable {
        let messages = Mutex<[(partition: BrokerPartition, offset: Int64, text: String)]>([])
        var count: Int { messages.withLock { $0.count } }
    }

    @Test func brokerStoppedMidStreamSpoolsAndReplaysInOrder() async throws {
        let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-ordered")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try BrokerProcess(directory: directory, config: LocalBrokerTests.config)
        defer { broker.stopHard() }
        try broker.start()
        let client = try MetaQClient(servers: ["meta://127.0.0.1:\(broker.port)"], logger: DirectBroker.silent)
        let producer = try client.orderedProducer(OrderedProducerSettings(
            partitions: Self.partitions, spoolPath: directory + "/spool", requestTimeoutMs: 1000,
            retryStepMs: 200, retryMaxMs: 1000))
        let tally = Tally()
        let senders = Self.keys.map { key in
            Task {
                for i in 0..<Self.perKey {
                    let result = try await producer.send(topic: "test", key: key, data: Array("\(key) \(i)".utf8))
                    tally.results.withLock { $0[key, default: []].append(result) }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
        }
        try await waitUntil(seconds: 20) { tally.count >= 40 }
        #expect(broker.stop() == 0, "SIGTERM stops the broker cleanly")
        try await waitUntil(seconds: 20) { tally.spooled >= 20 }
        #expect(await producer.spoolDepth() >= 20)

        let restarted = try BrokerProcess(directory: directory, config: LocalBrokerTests.config, port: broker.port)
        defer { restarted.stopHard() }
        try restarted.start()
        for sender in senders { try await sender.value }
        try await waitUntil(seconds: 30) { await producer.spoolDepth() == 0 }
        #expect(await producer.spoolDepth() == 0, "the spool is replayed once the broker is back")

        let received = try await consumeAll(client, directory, atLeast: Self.keys.count * Self.perKey)
        checkOrder(received, tally, keys: Self.keys, perKey: Self.perKey)
        #expect(Set(received.messages.withLock { $0.map(\.partition) }) == Set(Self.partitions), "both lanes were used")
        await client.shutdown()
    }

    /// What a producer spooled while the broker was down is replayed by the next producer on the
    /// same spool (another client, as after a process restart), before what that one sends.
    @Test func spoolLeftByAnEarlierProducerIsReplayedAtStart() async throws {
        let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-ordered")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Not started yet: nothing listens on its port, as when the broker is down.
        let broker = try BrokerProcess(directory: directory, config: LocalBrokerTests.config)
        let settings = OrderedProducerSettings(partitions: Self.partitions, spoolPath: directory + "/spool",
                                               requestTimeoutMs: 500, retryStepMs: 200, retryMaxMs: 1000)
        let keys = ["alpha", "beta"]
        let tally = Tally()
        let first = try MetaQClient(servers: ["meta://127.0.0.1:\(broker.port)"], logger: DirectBroker.silent)
        let early = try first.orderedProducer(settings)
        for i in 0..<10 {
            for key in keys {
                let result = try await early.send(topic: "test", key: key, data: Array("\(key) \(i)".utf8))
                tally.results.withLock { $0[key, default: []].append(result) }
            }
        }
        let depth = await early.spoolDepth()
        #expect(tally.spooled == 20 && depth == 20)
        await first.shutdown()

        // The broker runs but answers nothing (SIGSTOP) while the new producer starts replaying and
        // sends more: no put can be acknowledged meanwhile, so each new send must queue behind
        // the recovered spool, whenever the replay gets going.
        defer { broker.stopHard() }
        try broker.start()
        #expect(broker.process.send(SIGSTOP))
        let second = try MetaQClient(servers: ["meta://127.0.0.1:\(broker.port)"], logger: DirectBroker.silent)
        let late = try second.orderedProducer(settings)
        for i in 10..<15 {
            for key in keys {
                let result = try await late.send(topic: "test", key: key, data: Array("\(key) \(i)".utf8))
                tally.results.withLock { $0[key, default: []].append(result) }
            }
        }
        let lateResults = tally.results.withLock { $0.values.flatMap { $0[10...] } }
        #expect(lateResults.allSatisfy { if case .spooled = $0 { true } else { false } },
                "a new send queues behind the recovered spool: \(lateResults)")
        #expect(broker.process.send(SIGCONT))
        try await waitUntil(seconds: 30) { await late.spoolDepth() == 0 }
        let received = try await consumeAll(second, directory, atLeast: 30)
        checkOrder(received, tally, keys: keys, perKey: 15)
        await second.shutdown()
    }

    /// ZooKeeper mode: availability comes from the publish directory (§3.3). Once the stopped
    /// broker's `topics-pub` node is gone, sends are spooled at once (no timeout); when it registers
    /// again the spool is replayed.
    @Test func zooKeeperListingDecidesAvailability() async throws {
        let zk = try ZooKeeperServer()
        try zk.start()
        defer { zk.stop() }
        let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-ordered-zk")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = ClusterTests.config(brokerId: 0, zk: zk.connectString)
        let broker = try BrokerProcess(directory: directory, config: config)
        broker.local = false
        defer { broker.stopHard() }
        try broker.start()
        let client = try MetaQClient(zooKeeper: zk.connectString, sessionTimeoutMs: 4000, logger: DirectBroker.silent)
        let partitions = (0..<3).map { BrokerPartition(brokerId: 0, partition: $0) }
        let producer = try client.orderedProducer(OrderedProducerSettings(
            partitions: partitions, spoolPath: directory + "/spool", requestTimeoutMs: 600_000,
            retryStepMs: 200, retryMaxMs: 1000))
        let watcher = client.producer()
        #expect(await ClusterTests.eventually(15) { (try? await watcher.publish("test").count) == 3 })
        let keys = ["alpha", "beta", "gamma"]
        let tally = Tally()
        func send(_ i: Int) async throws {
            for key in keys {
                let result = try await producer.send(topic: "test", key: key, data: Array("\(key) \(i)".utf8))
                tally.results.withLock { $0[key, default: []].append(result) }
            }
        }
        for i in 0..<5 { try await send(i) }
        #expect(tally.spooled == 0)
        // The broker stops answering (SIGSTOP) and its publish node goes away (deleted here, as
        // when its session ends). Sends must now be spooled without trying the broker: with a
        // request timeout of ten minutes, a send that tried it would not come back in the test.
        #expect(broker.process.send(SIGSTOP))
        let session = try await ClusterTests.observer(zk)
        defer { session.close() }
        #expect(await session.perform(.delete(path: "/meta/brokers/topics-pub/test/0-m")) == .deleted)
        #expect(await ClusterTests.eventually(15) { await watcher.partitions(of: "test").isEmpty })
        let unlisted = Task { for i in 5..<10 { try await send(i) } }
        let spooledInTime = await ClusterTests.eventually(20) { tally.count == 30 }
        #expect(spooledInTime, "unlisted: spooled without trying the broker")
        guard spooledInTime else { return unlisted.cancel() }  // the broker's kill ends the hung send
        try await unlisted.value
        #expect(tally.spooled == 15)
        #expect(broker.process.send(SIGCONT))
        #expect(broker.stop() == 0)

        let restarted = try BrokerProcess(directory: directory, config: config, port: broker.port)
        restarted.local = false
        defer { restarted.stopHard() }
        try restarted.start()
        try await waitUntil(seconds: 30) { await producer.spoolDepth() == 0 }
        for i in 10..<12 { try await send(i) }
        let reader = try MetaQClient(servers: ["meta://127.0.0.1:\(broker.port)"], logger: DirectBroker.silent)
        let received = try await consumeAll(reader, directory, atLeast: 36, partitions: partitions)
        checkOrder(received, tally, keys: keys, perKey: 12)
        await reader.shutdown()
        await client.shutdown()
    }

    /// Per key: one partition (the key's), numbers in non-decreasing order (a message whose answer
    /// was lost may be stored twice, next to itself), every number present.
    func checkOrder(_ received: Received, _ tally: Tally, keys: [String], perKey: Int) {
        let messages = received.messages.withLock { $0 }
        for key in keys {
            let mine = messages.filter { $0.text.hasPrefix(key + " ") }
            let partitions = Set(mine.map(\.partition))
            let expected = tally.results.withLock { $0[key]?.first?.partition }
            #expect(partitions.count == 1 && partitions.first == expected, "\(key): \(partitions)")
            let numbers = mine.sorted { $0.offset < $1.offset }.map { Int($0.text.split(separator: " ")[1])! }
            #expect(numbers == numbers.sorted(), "\(key) out of order: \(numbers)")
            #expect(Set(numbers) == Set(0..<perKey), "\(key) incomplete: \(numbers)")
        }
        #expect(tally.spooled > 0 && tally.count == keys.count * perKey)
    }

    /// Reads both partitions from the start until `atLeast` messages arrived and nothing more comes.
    func consumeAll(_ client: MetaQClient, _ directory: String, atLeast: Int,
                    partitions: [BrokerPartition] = Self.partitions) async throws -> Received {
        let received = Received()
        let consumer = try client.consumer(group: "ordered-check", ConsumerSettings(
            offsetStorage: .localFile(directory + "/offsets.json"), maxFetchDelayMs: 200,
            directPartitions: partitions))
        try consumer.subscribe("test")
        let run = Task {
            try await consumer.run { message in
                received.messages.withLock { $0.append((message.partition, message.offset, message.text)) }
            }
        }
        try await waitUntil(seconds: 30) { received.count >= atLeast }
        await consumer.close()
        _ = try? await run.value
        return received
    }

    func waitUntil(seconds: Double, _ condition: () async -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while await !condition() && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
    }
}
