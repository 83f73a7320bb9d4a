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
    /// How long a wait for an expected delivery may take before the test gives up. Generous:
    /// a passing run stops waiting at once, and in the full suite the sweeps can hold the
    /// cooperative threads for many seconds (a 20 s window once ran out before any delivery).
    static let patience: TimeInterval = 120

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

    /// Runs a consumer until `until` holds (or 20 s passed); returns what it handled.
    func consume(_ client: MetaQClient, _ settings: ConsumerSettings,
                 until: (Log) throws -> Bool) async throws -> [String] {
        let log = Log()
        let consumer = try client.consumer(group: "g", settings)
        try consumer.subscribe("test")
        let run = Task { try await consumer.run { log.add($0.text) } }
        let deadline = Date().addingTimeInterval(Self.patience)
        while try !until(log) && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        await consumer.close()
        _ = try? await run.value
        return log.seen
    }

    /// Runs a consumer until it handled every marker; returns what it handled. Each partition is
    /// consumed in order, so anything else it would ever hand over came before the markers.
    func consume(_ client: MetaQClient, _ settings: ConsumerSettings, through markers: [String]) async throws -> [String] {
        try await consume(client, settings) { Set($0.seen).isSuperset(of: markers) }
    }

    /// A second consumer of the group starting from no stored offset fetches everything again:
    /// within the process the cache skips it, and its offsets still advance; with the cache
    /// disabled everything reaches the handler again.
    @Test func messagesHandledBeforeAreSkippedWithinTheProcess() async throws {
        let env = try DirectBroker("metaq-dedup")
        defer { env.stop() }
        let (directory, client) = (env.directory, env.client)
        for text in Self.all { _ = try await client.producer().send(topic: "test", data: Array(text.utf8)) }
        let first = try await consume(client, settings(directory, offsets: "a.json")) { $0.seen.count >= 6 }
        #expect(first.sorted() == Self.all)
        let markers = try env.putMarkers("second")
        let second = try await consume(client, settings(directory, offsets: "b.json"), through: markers)
        #expect(second.sorted() == markers, "all but the new markers in the cache: \(second)")
        let moreMarkers = try env.putMarkers("third")
        let third = try await consume(client, settings(directory, offsets: "b.json", cache: 0), through: moreMarkers)
        #expect(third.sorted() == moreMarkers, "the skipped messages were committed past: \(third)")
        let everything = (Self.all + markers + moreMarkers).sorted()
        let fourth = try await consume(client, settings(directory, offsets: "c.json", cache: 0)) { $0.seen.count >= everything.count }
        #expect(fourth.sorted() == everything, "without the cache everything comes again")
        await client.shutdown()
    }

    /// A message kept in the recover store (§5.2) that the group handled meanwhile (here: a
    /// second consumer fetching it again) is removed from the store without reaching the handler.
    @Test func aRecoveredMessageHandledMeanwhileIsRemovedUnhandled() async throws {
        let env = try DirectBroker("metaq-dedup")
        defer { env.stop() }
        let (directory, client) = (env.directory, env.client)
        // To both partitions, each time: sent through the client in direct mode, the broker picks
        // a partition at random, and all six in one of them (1 in 32) left the other without data
        // — its `offset` answers 404 "not exists" (§1.4.3), which the wait below cannot pass.
        for (index, text) in Self.all.enumerated() { try env.put(text, partition: Int32(index % 2)) }
        let recover = RejectionPolicy.recoverLocally(path: directory + "/recover")
        let log = Log()
        // The keeper fails m1 until the other consumer handled it, so m1 goes to its store at once
        // (maxFetchRetries 0) and stays there whenever a recover round comes; once the other
        // consumer handled it, the dedup cache must keep it from the keeper's handler.
        let otherHandledM1 = Mutex(false)
        let keeper = try client.consumer(group: "g", settings(directory, offsets: "a.json", rejection: recover,
                                                             retries: 0, recoverMs: 500))
        try keeper.subscribe("test")
        let run = Task {
            try await keeper.run { message in
                if message.text == "m1", !otherHandledM1.withLock({ $0 }) { throw CancellationError() }
                log.add(message.text)
            }
        }
        func storeSummary() throws -> String {
            try BrokerProcess.tool(["recover", "--path", directory + "/recover", "--group", "g", "--summary"]).output
        }
        func handedOff() throws -> Bool { try log.seen.count >= 5 && storeSummary().hasPrefix("test@g: 1 message") }
        let deadline = Date().addingTimeInterval(Self.patience)
        while try !handedOff() && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        // Another consumer of the group in this process: everything but m1 is in the cache. It has
        // seen all it ever will once it committed the end of both partitions.
        let other = try await consume(client, settings(directory, offsets: "b.json")) { _ in
            try env.committedToTheEnd(directory + "/b.json")
        }
        #expect(other == ["m1"], "only the message not handled yet: \(other)")
        otherHandledM1.withLock { $0 = true }
        // The keeper's next recover round finds m1 in the cache and removes it unhandled.
        while try !storeSummary().hasPrefix("test@g: 0 messages") && Date() < deadline.addingTimeInterval(Self.patience) {
            try await Task.sleep(for: .milliseconds(100))
        }
        await keeper.close()
        _ = try? await run.value
        #expect(try storeSummary().hasPrefix("test@g: 0 messages"), "m1 left the store")
        #expect(log.seen.sorted() == ["m0", "m2", "m3", "m4", "m5"], "m1 not handled from the store: \(log.seen)")

        // A new process (no cache) on the same store and offsets: only the markers put now come.
        let fresh = try MetaQClient(servers: ["meta://127.0.0.1:\(env.broker.port)"], logger: DirectBroker.silent)
        let markers = try env.putMarkers("fresh")
        let later = try await consume(fresh, settings(directory, offsets: "a.json", rejection: recover, recoverMs: 200),
                                      through: markers)
        #expect(later.sorted() == markers, "nothing left in the store or the partition: \(later)")
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
        let deadline = Date().addingTimeInterval(Self.patience)
        // m10 (accepted) and m11 (rejected) go last into the two partitions: once the filter saw
        // both, it saw everything before them.
        try env.put("m10", partition: 0)
        try env.put("m11", partition: 1)
        while !(filtered.withLock { Set($0).isSuperset(of: ["m10", "m11"]) } && log.seen.contains("m10")) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        await consumer.close()
        _ = try? await run.value
        #expect(log.seen.sorted() == ["m0", "m10", "m2", "m6", "m8"], "\(log.seen)")
        #expect(filtered.withLock { $0.sorted() } == (0..<12).map { "m\($0)" }.sorted(), "the filter saw each once")

        let markers = try env.putMarkers("restarted")
        let restarted = try await consume(client, settings(directory, offsets: "offsets.json", cache: 0), through: markers)
        #expect(restarted.sorted() == markers, "the rejected messages were committed past: \(restarted)")
        await client.shutdown()
    }
}
