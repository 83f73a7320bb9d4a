import Foundation
import Logging
import MetaQClient
import ProtocolCore
import Synchronization
import Testing

/// The dedup cache of handled message ids (§5.1) and client-side filters (§5.7) through
/// `MetaQClient` against a real broker.
@Suite("MetaQClient dedup cache and filters", .serialized)
struct ClientDedupFilterTests {
    final class Log: Sendable {
        let texts = Mutex<[String]>([])
        var seen: [String] { texts.withLock { $0 } }
        func add(_ text: String) { texts.withLock { $0.append(text) } }
    }

    static let both = [BrokerPartition(brokerId: 0, partition: 0), BrokerPartition(brokerId: 0, partition: 1)]
    static let all = (0..<6).map { "m\($0)" }

    func settings(_ directory: String, offsets: String, cache: Int = 4096, rejection: RejectionPolicy = .drop,
                  retries: Int = 5, recoverMs: Int64 = 300_000) -> ConsumerSettings {
        ConsumerSettings(offsetStorage: .localFile(directory + "/" + offsets), commitIntervalMs: 100, maxFetchDelayMs: 200,
                         directPartitions: Self.both, maxFetchRetries: retries, rejection: rejection,
                         recoverIntervalMs: recoverMs, dedupCacheSize: cache)
    }

    /// Runs a consumer until `until` holds and then `extraMs` more; returns what it handled.
    func consume(_ client: MetaQClient, _ settings: ConsumerSettings, extraMs: Int = 500,
                 until: @escaping @Sendable (Log) -> Bool = { _ in true }) async throws -> [String] {
        let log = Log()
        let consumer = try client.consumer(group: "g", settings)
        try consumer.subscribe("test")
        let run = Task { try await consumer.run { log.add($0.text) } }
        let deadline = Date().addingTimeInterval(20)
        while !until(log) && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try await Task.sleep(for: .milliseconds(extraMs))
        await consumer.close()
        _ = try? await run.value
        return log.seen
    }

    /// A second consumer of the group starting from no stored offset fetches everything again:
    /// within the process the cache skips it, and its offsets still advance; with the cache
    /// disabled everything reaches the handler again.
    @Test func messagesHandledBeforeAreSkippedWithinTheProcess() async throws {
        let env = try DirectBroker("metaq-dedup")
        defer { env.stop() }
        let (directory, client) = (env.directory, env.client)
        for text in Self.all { _ = try await client.producer().send(topic: "test", data: Array(text.utf8)) }
        let first = try await consume(client, settings(directory, offsets: "a.json"), extraMs: 100) { $0.seen.count >= 6 }
        #expect(first.sorted() == Self.all)
        let second = try await consume(client, settings(directory, offsets: "b.json"))
        #expect(second.isEmpty, "all in the cache: \(second)")
        let third = try await consume(client, settings(directory, offsets: "b.json", cache: 0))
        #expect(third.isEmpty, "the skipped messages were committed past: \(third)")
        let fourth = try await consume(client, settings(directory, offsets: "c.json", cache: 0)) { $0.seen.count >= 6 }
        #expect(fourth.sorted() == Self.all, "without the cache everything comes again")
        await client.shutdown()
    }

    /// A message kept in the recover store (§5.2) that the group handled meanwhile (here: a
    /// second consumer fetching it again) is removed from the store without reaching the handler.
    @Test func aRecoveredMessageHandledMeanwhileIsRemovedUnhandled() async throws {
        let env = try DirectBroker("metaq-dedup")
        defer { env.stop() }
        let (directory, client) = (env.directory, env.client)
        for text in Self.all { _ = try await client.producer().send(topic: "test", data: Array(text.utf8)) }
        let recover = RejectionPolicy.recoverLocally(path: directory + "/recover")
        let log = Log()
        let failedOnce = Mutex(false)
        let keeper = try client.consumer(group: "g", settings(directory, offsets: "a.json", rejection: recover,
                                                             retries: 0, recoverMs: 3_000))
        try keeper.subscribe("test")
        let run = Task {
            try await keeper.run { message in
                if message.text == "m1", failedOnce.withLock({ done in defer { done = true }; return !done }) {
                    throw CancellationError()  // handed off at once: maxFetchRetries 0
                }
                log.add(message.text)
            }
        }
        let deadline = Date().addingTimeInterval(20)
        while log.seen.count < 5 && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let other = try await consume(client, settings(directory, offsets: "b.json")) { $0.seen.contains("m1") }
        #expect(other == ["m1"], "only the message not handled yet: \(other)")
        try await Task.sleep(for: .milliseconds(3_500))  // the keeper's first recover round
        await keeper.close()
        _ = try? await run.value
        #expect(log.seen.sorted() == ["m0", "m2", "m3", "m4", "m5"], "m1 not handled from the store: \(log.seen)")

        // A new process (no cache) on the same store: it is empty now.
        let fresh = try MetaQClient(servers: ["meta://127.0.0.1:\(env.broker.port)"], logger: DirectBroker.silent)
        let later = try await consume(fresh, settings(directory, offsets: "a.json", rejection: recover, recoverMs: 200),
                                      extraMs: 1_000)
        #expect(later.isEmpty, "nothing left in the store or the partition: \(later)")
        await fresh.shutdown()
        await client.shutdown()
    }

    /// §5.7: only accepted messages reach the handler; a throwing filter rejects; the offsets move
    /// past the rejected ones, so a restarted consumer without a filter does not see them.
    @Test func filteredMessagesAreSkippedAndCommittedPast() async throws {
        let env = try DirectBroker("metaq-filter")
        defer { env.stop() }
        let (directory, client) = (env.directory, env.client)
        let producer = client.producer()
        for i in 0..<10 { _ = try await producer.send(topic: "test", data: Array("m\(i)".utf8)) }
        struct Refused: Error {}
        let filtered = Mutex<[String]>([])
        let log = Log()
        let consumer = try client.consumer(group: "g", settings(directory, offsets: "offsets.json"))
        try consumer.subscribe("test") { message in
            filtered.withLock { $0.append(message.text) }
            if message.text == "m4" { throw Refused() }
            return Int(message.text.dropFirst())! % 2 == 0
        }
        let run = Task { try await consumer.run { log.add($0.text) } }
        let deadline = Date().addingTimeInterval(20)
        while filtered.withLock({ $0.count }) < 10 && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try await Task.sleep(for: .milliseconds(300))
        await consumer.close()
        _ = try? await run.value
        #expect(log.seen.sorted() == ["m0", "m2", "m6", "m8"], "\(log.seen)")
        #expect(filtered.withLock { $0.sorted() } == (0..<10).map { "m\($0)" }.sorted(), "the filter saw each once")

        let restarted = try await consume(client, settings(directory, offsets: "offsets.json", cache: 0), extraMs: 800)
        #expect(restarted.isEmpty, "the rejected messages were committed past: \(restarted)")
        await client.shutdown()
    }
}
