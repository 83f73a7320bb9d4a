import Testing
@testable import ProtocolCore

/// Retries of a failing message and its hand-off (reference §5.2), the consumer machine fed by
/// hand: a partition of three 25-byte records (ids 1, 2, 3 at offsets 0, 25, 50; end 75).
@Suite("Consumer retry and hand-off (reference §5.2)")
struct ConsumerRetryTests {
    typealias Action = ConsumerMachine.Action
    static let records = (1...3).map { Record.encode(msgId: Int64($0), flag: 0, payload: bytes("hello")) }

    func at(_ ms: Int64) -> Instant { .milliseconds(ms) }

    func settings(_ retry: RetryPolicy?) -> ConsumerMachine.Settings {
        .init(topic: "test", group: "group1", partition: 0, startOffset: 0, maxSizeBytes: 1024,
              fetchBackoff: Backoff(stepMs: 500, maxMs: 5_000), awaitsProcessing: true, retry: retry)
    }

    /// A connected machine with its first `get` (offset 0) in flight.
    func started(_ retry: RetryPolicy?) -> ConsumerMachine {
        var consumer = ConsumerMachine(settings: settings(retry))
        _ = consumer.handle(.start, now: at(0))
        _ = consumer.handle(.connected, now: at(0))
        return consumer
    }

    func gets(_ actions: [Action]) -> [Int64] {
        actions.compactMap { if case .sendFrame(.get(let get)) = $0 { return get.offset } else { return nil } }
    }

    func recovered(_ actions: [Action]) -> [(id: Int64, offset: Int64, attempts: Int)] {
        actions.compactMap { if case .recover(let m, let n) = $0 { return (m.id, m.offset, n) } else { return nil } }
    }

    /// Answers the `get` in flight with the partition from the machine's offset, then reports the
    /// delivery processed up to `upTo` (a failure when it is before the delivery's end).
    func attempt(_ consumer: inout ConsumerMachine, upTo: Int64, now: Instant) -> [Action] {
        let opaque = try! #require(consumer.inFlightOpaque)
        let body = Self.records[Int(consumer.offset / 25)...].flatMap { $0 }
        _ = consumer.handle(.frame(.value(ValueResponse(body: body, opaque: opaque))), now: now)
        return consumer.handle(.processed(nextOffset: upTo), now: now)
    }

    /// A failed message is fetched again after a growing back-off, message 1 before it stays
    /// committed, and the offset never passes it until its sixth failure (§5.2: `retries >
    /// maxFetchRetries`); then it is handed off and the partition moves on to message 3.
    @Test func failingMessageIsHandedOffAfterMaxFetchRetriesPlusOneAttempts() throws {
        var consumer = started(RetryPolicy())
        var now: Int64 = 0
        for failure in 1...5 {
            let actions = attempt(&consumer, upTo: 25, now: at(now))
            #expect(recovered(actions).isEmpty && gets(actions).isEmpty, "attempt \(failure)")
            #expect(consumer.offset == 25 && consumer.counters.retries == failure)
            let delay = min(500 * Int64(failure), 5_000)
            #expect(gets(consumer.handle(.tick, now: at(now + delay - 1))).isEmpty, "no get before the back-off")
            now += delay
            #expect(gets(consumer.handle(.tick, now: at(now))) == [25], "fetched again from the failed message")
        }
        let last = attempt(&consumer, upTo: 25, now: at(now))
        let handedOff = try #require(recovered(last).first)
        #expect(recovered(last).count == 1 && handedOff == (2, 25, 6))
        #expect(gets(last).isEmpty && consumer.offset == 50, "past it, waiting for the hand-off")
        #expect(gets(consumer.handle(.handedOff, now: at(now))) == [50], "moves on once it is kept")
        #expect(consumer.counters.handOffs == 1 && consumer.counters.retries == 5)
        let next = attempt(&consumer, upTo: 75, now: at(now))
        #expect(recovered(next).isEmpty && gets(next) == [75])
        #expect(consumer.counters.handOffs == 1)
    }

    /// A message that succeeds on its third attempt is not handed off; the next get follows its end.
    @Test func successOnTheThirdAttemptIsNotHandedOff() {
        var consumer = started(RetryPolicy())
        var now: Int64 = 0
        for failure in 1...2 {
            _ = attempt(&consumer, upTo: 25, now: at(now))
            now += 500 * Int64(failure)
            _ = consumer.handle(.tick, now: at(now))
        }
        let actions = attempt(&consumer, upTo: 75, now: at(now))
        #expect(recovered(actions).isEmpty && gets(actions) == [75])
        #expect(consumer.counters.retries == 2 && consumer.counters.handOffs == 0 && consumer.counters.processingFailures == 2)
    }

    /// Failures count per message: message 2 fails five times then succeeds, message 3 then
    /// fails — it gets its own six attempts, and being last in the delivery, the hand-off moves
    /// the offset to the delivery's end.
    @Test func retriesResetPerMessage() throws {
        var consumer = started(RetryPolicy())
        var now: Int64 = 0
        func failAndWait(_ upTo: Int64, _ failure: Int) -> [Action] {
            let actions = attempt(&consumer, upTo: upTo, now: at(now))
            now += min(500 * Int64(failure), 5_000)
            _ = consumer.handle(.tick, now: at(now))
            return actions
        }
        for failure in 1...5 { #expect(recovered(failAndWait(25, failure)).isEmpty) }
        for failure in 1...5 {
            #expect(recovered(failAndWait(50, failure)).isEmpty, "message 3 attempt \(failure)")
            #expect(consumer.offset == 50)
        }
        let last = attempt(&consumer, upTo: 50, now: at(now))
        let handedOff = try #require(recovered(last).first)
        #expect(handedOff == (3, 50, 6) && gets(last).isEmpty && consumer.offset == 75)
        #expect(gets(consumer.handle(.handedOff, now: at(now))) == [75])
        #expect(consumer.counters.retries == 10 && consumer.counters.handOffs == 1)
    }

    /// `maxFetchRetries: 0` hands a message off on its first failure.
    @Test func zeroRetriesHandsOffAtOnce() {
        var consumer = started(RetryPolicy(maxFetchRetries: 0))
        let actions = attempt(&consumer, upTo: 0, now: at(0))
        #expect(recovered(actions).map(\.id) == [1] && consumer.counters.retries == 0)
        #expect(gets(consumer.handle(.handedOff, now: at(0))) == [25])
    }

    /// Without a policy (the existing behaviour) a failing message is fetched again for ever.
    @Test func withoutPolicyNothingIsHandedOff() {
        var consumer = started(nil)
        var now: Int64 = 0
        for failure in 1...10 {
            #expect(recovered(attempt(&consumer, upTo: 25, now: at(now))).isEmpty)
            now += min(500 * Int64(failure), 5_000)
            #expect(gets(consumer.handle(.tick, now: at(now))) == [25])
        }
        #expect(consumer.counters.handOffs == 0 && consumer.counters.retries == 0 && consumer.offset == 25)
    }
}

/// The hand-off is confirmed by the driver (§5.2): the partition moves past a message only after
/// the rejection policy kept it, so a failing recover store never turns into a skipped message.
@Suite("Consumer hand-off confirmation (reference §5.2)")
struct ConsumerHandOffTests {
    let retry = ConsumerRetryTests()

    /// A machine whose message 2 has just failed its last attempt (`maxFetchRetries: 0`).
    func handingOff() -> (ConsumerMachine, [ConsumerMachine.Action]) {
        var consumer = retry.started(RetryPolicy(maxFetchRetries: 0))
        let actions = retry.attempt(&consumer, upTo: 25, now: retry.at(0))
        return (consumer, actions)
    }

    @Test func noGetGoesOutUntilTheHandOffIsConfirmed() {
        var (consumer, actions) = handingOff()
        #expect(retry.recovered(actions).map(\.id) == [2] && retry.gets(actions).isEmpty)
        #expect(consumer.inFlightOpaque == nil)
        #expect(retry.gets(consumer.handle(.tick, now: retry.at(60_000))).isEmpty, "time alone does not move past it")
        let next = consumer.handle(.handedOff, now: retry.at(60_000))
        #expect(retry.gets(next) == [50] && consumer.offset == 50)
        #expect(consumer.handle(.handedOff, now: retry.at(60_001)).isEmpty, "a second confirmation is ignored")
    }

    @Test func aFailedHandOffIsAskedForAgainAfterTheBackOff() {
        var (consumer, _) = handingOff()
        let failed = consumer.handle(.handOffFailed, now: retry.at(0))
        #expect(retry.recovered(failed).isEmpty && retry.gets(failed).isEmpty)
        #expect(failed.contains(.scheduleTick(at: retry.at(500))))
        #expect(retry.recovered(consumer.handle(.tick, now: retry.at(499))).isEmpty)
        let again = consumer.handle(.tick, now: retry.at(500))
        #expect(retry.recovered(again).map(\.id) == [2] && retry.gets(again).isEmpty)
        #expect(consumer.counters.handOffFailures == 1 && consumer.counters.handOffs == 1)
        _ = consumer.handle(.handOffFailed, now: retry.at(500))
        #expect(retry.recovered(consumer.handle(.tick, now: retry.at(1_499))).isEmpty, "the back-off grows")
        #expect(retry.recovered(consumer.handle(.tick, now: retry.at(1_500))).map(\.id) == [2])
        #expect(retry.gets(consumer.handle(.handedOff, now: retry.at(1_600))) == [50])
    }

    /// A connection lost while the hand-off is pending: after reconnecting the machine still
    /// waits for the confirmation before its next `get`.
    @Test func reconnectingDoesNotSkipThePendingHandOff() {
        var (consumer, _) = handingOff()
        _ = consumer.handle(.connectionLost, now: retry.at(0))
        _ = consumer.handle(.tick, now: retry.at(10_000))
        #expect(retry.gets(consumer.handle(.connected, now: retry.at(10_000))).isEmpty)
        #expect(retry.gets(consumer.handle(.handedOff, now: retry.at(10_001))) == [50])
    }
}
