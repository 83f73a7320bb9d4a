import Testing
@testable import ProtocolCore

/// `awaitsProcessing` (§5.1: a partition's fetch is queued again only after its messages were
/// processed): the next `get` waits for `.processed`; a partly processed delivery is fetched again
/// from the failed message after the back-off.
@Suite("Consumer machine back-pressure (reference §5.1)")
struct ConsumerProcessingTests {
    let base = ConsumerMachineTests()
    /// A record of a one-byte payload: the 20-byte header and the byte (§1.5).
    let one = Int64(Record.headerSize + 1)

    func awaiting() -> ConsumerMachine {
        var s = base.settings()
        s.awaitsProcessing = true
        return base.fetching(s)
    }

    @Test func nextFetchWaitsForProcessed() {
        var consumer = awaiting()
        let actions = consumer.handle(base.value(base.record("a") + base.record("b"), ConsumerMachineTests.firstOpaque), now: base.at(1))
        #expect(base.delivered(actions).count == 2)
        #expect(base.gets(actions).isEmpty, "no get while the application holds the batch")
        #expect(consumer.handle(.tick, now: base.at(60_000)).isEmpty, "holding has no deadline")
        let next = base.gets(consumer.handle(.processed(nextOffset: 2 * one), now: base.at(60_001)))
        #expect(next.map(\.offset) == [2 * one])
    }

    @Test func failedMessageIsFetchedAgainAfterTheBackoff() {
        var consumer = awaiting()
        _ = consumer.handle(base.value(base.record("a") + base.record("b"), ConsumerMachineTests.firstOpaque), now: base.at(1))
        // The second message (at offset 21) failed: only the first counts as consumed.
        #expect(base.gets(consumer.handle(.processed(nextOffset: one), now: base.at(2))).isEmpty)
        #expect(consumer.offset == one && consumer.counters.processingFailures == 1)
        #expect(base.gets(consumer.handle(.tick, now: base.at(400))).isEmpty, "back-off: 500 ms after one miss")
        let again = base.gets(consumer.handle(.tick, now: base.at(502)))
        #expect(again.map(\.offset) == [one])
    }

    @Test func processedAfterAReconnectDoesNotDoubleFetch() {
        var consumer = awaiting()
        _ = consumer.handle(base.value(base.record("a"), ConsumerMachineTests.firstOpaque), now: base.at(1))
        _ = consumer.handle(.connectionLost, now: base.at(2))
        _ = consumer.handle(.tick, now: base.at(300))  // reconnect back-off of 200 ms
        let reconnected = consumer.handle(.connected, now: base.at(301))
        #expect(base.gets(reconnected).isEmpty, "still holding the delivery")
        #expect(base.gets(consumer.handle(.processed(nextOffset: one), now: base.at(302))).map(\.offset) == [one])
    }
}
