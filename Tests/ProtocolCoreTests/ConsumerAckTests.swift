import Testing
@testable import ProtocolCore

/// Manual acknowledgement and rollback (reference §5.3) in the consumer machine, fed by hand: the
/// partition of ConsumerRetryTests (ids 1, 2, 3 at offsets 0, 25, 50; end 75).
@Suite("Consumer manual ack and rollback (reference §5.3)")
struct ConsumerAckTests {
    typealias Action = ConsumerMachine.Action
    let retry = ConsumerRetryTests()

    func at(_ ms: Int64) -> Instant { .milliseconds(ms) }

    /// A connected machine with its first `get` (offset 0) in flight.
    func started(manual: Bool = true, retry policy: RetryPolicy? = nil, awaits: Bool = true) -> ConsumerMachine {
        var settings = retry.settings(policy)
        settings.manualAck = manual
        settings.awaitsProcessing = awaits
        var consumer = ConsumerMachine(settings: settings)
        _ = consumer.handle(.start, now: at(0))
        _ = consumer.handle(.connected, now: at(0))
        return consumer
    }

    /// Answers the `get` in flight with the partition from the machine's offset.
    func answer(_ consumer: inout ConsumerMachine, now: Instant) -> [Action] {
        let opaque = try! #require(consumer.inFlightOpaque)
        let body = ConsumerRetryTests.records[Int(consumer.offset / 25)...].flatMap { $0 }
        return consumer.handle(.frame(.value(ValueResponse(body: body, opaque: opaque))), now: now)
    }

    func delivered(_ actions: [Action]) -> [Int64] {
        actions.flatMap { action -> [Int64] in if case .deliver(let m, _) = action { return m.map(\.id) } else { return [] } }
    }

    func acked(_ id: Int64, _ offset: Int64) -> StoredOffset { StoredOffset(msgId: id, offset: offset) }

    // MARK: automatic mode

    /// Without `manualAck` the committable position follows `.processed` (up to a failed
    /// message), and without `awaitsProcessing` each delivery; acks are ignored.
    @Test func automaticModeAcknowledgesWhatWasProcessed() {
        var consumer = started(manual: false)
        #expect(consumer.acknowledged == acked(-1, 0))
        _ = answer(&consumer, now: at(1))
        #expect(consumer.acknowledged == acked(-1, 0), "nothing handled yet")
        _ = consumer.handle(.ack(upTo: 50), now: at(1))
        #expect(consumer.acknowledged == acked(-1, 0) && consumer.counters.ignoredAcks == 1)
        _ = consumer.handle(.processed(nextOffset: 50), now: at(2))
        #expect(consumer.acknowledged == acked(2, 50), "message 3 failed: up to message 2")

        var eager = started(manual: false, awaits: false)
        _ = answer(&eager, now: at(1))
        #expect(eager.acknowledged == acked(3, 75))
    }

    // MARK: manual mode

    /// With `manualAck` the fetch offset moves on with `.processed` while the committable
    /// position moves only with acks: forward, never past what was delivered.
    @Test func manualModeCommitsOnlyWhatWasAcknowledged() {
        var consumer = started()
        _ = answer(&consumer, now: at(1))
        let next = consumer.handle(.processed(nextOffset: 75), now: at(2))
        #expect(retry.gets(next) == [75], "the next fetch does not wait for acks")
        #expect(consumer.acknowledged == acked(-1, 0) && consumer.offset == 75)
        _ = consumer.handle(.ack(upTo: 50), now: at(3))
        #expect(consumer.acknowledged == acked(2, 50))
        _ = consumer.handle(.ack(upTo: 25), now: at(3))
        _ = consumer.handle(.ack(upTo: 100), now: at(3))
        #expect(consumer.acknowledged == acked(2, 50), "not backwards, not past what was delivered")
        #expect(consumer.counters.acks == 1 && consumer.counters.ignoredAcks == 2)
    }

    /// An ack in the middle of a delivery (the handler acks message 1 of 3) counts at once.
    @Test func ackInTheMiddleOfADelivery() {
        var consumer = started()
        #expect(delivered(answer(&consumer, now: at(1))) == [1, 2, 3])
        #expect(retry.gets(consumer.handle(.ack(upTo: 25), now: at(2))).isEmpty, "still processing")
        #expect(consumer.acknowledged == acked(1, 25))
        #expect(retry.gets(consumer.handle(.processed(nextOffset: 75), now: at(3))) == [75])
        #expect(consumer.acknowledged == acked(1, 25))
    }

    /// A failed message stops acks at it: an ack past it is ignored.
    @Test func noAckPastAFailedMessage() {
        var consumer = started(retry: RetryPolicy())
        _ = answer(&consumer, now: at(1))
        _ = consumer.handle(.processed(nextOffset: 25), now: at(2))
        _ = consumer.handle(.ack(upTo: 50), now: at(2))
        #expect(consumer.acknowledged == acked(-1, 0) && consumer.offset == 25)
        _ = consumer.handle(.ack(upTo: 25), now: at(2))
        #expect(consumer.acknowledged.offset == 25)
    }

    /// `partition.rollback()` in the middle of a delivery: the rest of it is void, a late
    /// `.processed` for it changes nothing, and after one back-off step the partition is fetched
    /// again from the last ack.
    @Test func rollbackFetchesAgainFromTheLastAck() {
        var consumer = started()
        _ = answer(&consumer, now: at(1))
        _ = consumer.handle(.ack(upTo: 25), now: at(2))
        let rolledBack = consumer.handle(.rollback(to: nil), now: at(3))
        #expect(retry.gets(rolledBack).isEmpty && rolledBack.contains(.scheduleTick(at: at(503))))
        #expect(consumer.offset == 25 && consumer.counters.rollbacks == 1)
        #expect(retry.gets(consumer.handle(.processed(nextOffset: 75), now: at(4))).isEmpty, "the delivery is void")
        #expect(consumer.offset == 25)
        #expect(retry.gets(consumer.handle(.tick, now: at(502))).isEmpty)
        #expect(retry.gets(consumer.handle(.tick, now: at(503))) == [25])
        #expect(delivered(answer(&consumer, now: at(504))) == [2, 3])
        #expect(consumer.acknowledged == acked(1, 25))
    }

    /// A rollback while the next `get` is in flight (the last delivery was processed, not acked):
    /// the late answer is stale; the `get` after the back-off starts from the last ack.
    @Test func rollbackWithAGetInFlightIgnoresTheLateAnswer() {
        var consumer = started()
        _ = answer(&consumer, now: at(1))
        _ = consumer.handle(.processed(nextOffset: 75), now: at(2))
        let late = try! #require(consumer.inFlightOpaque)
        _ = consumer.handle(.rollback(to: nil), now: at(3))
        #expect(consumer.inFlightOpaque == nil && consumer.offset == 0)
        let stale = consumer.handle(.frame(.value(ValueResponse(body: ConsumerRetryTests.records[2], opaque: late))), now: at(4))
        #expect(delivered(stale).isEmpty && consumer.counters.staleAnswers == 1 && consumer.offset == 0)
        let again = retry.gets(consumer.handle(.tick, now: at(503)))
        #expect(again == [0] && consumer.inFlightOpaque != late)
        #expect(delivered(answer(&consumer, now: at(504))) == [1, 2, 3])
    }

    /// `setRollbackOnly()`: delivered again from that message; the earlier ones stay handled but
    /// unacknowledged. A target before the last ack is clamped to it.
    @Test func rollbackToAMessage() {
        var consumer = started()
        _ = answer(&consumer, now: at(1))
        _ = consumer.handle(.ack(upTo: 25), now: at(2))
        _ = consumer.handle(.rollback(to: 50), now: at(2))
        #expect(consumer.offset == 50 && consumer.acknowledged == acked(1, 25))
        #expect(retry.gets(consumer.handle(.tick, now: at(502))) == [50])
        #expect(delivered(answer(&consumer, now: at(503))) == [3])
        _ = consumer.handle(.rollback(to: 0), now: at(504))
        #expect(consumer.offset == 25, "never before the last ack")
    }

    /// In automatic mode a rollback to a message counts the ones before it as processed.
    @Test func automaticRollbackToAMessageCommitsTheOnesBefore() {
        var consumer = started(manual: false)
        _ = answer(&consumer, now: at(1))
        _ = consumer.handle(.rollback(to: 50), now: at(2))
        #expect(consumer.acknowledged == acked(2, 50) && consumer.offset == 50)
        #expect(consumer.counters.processingFailures == 0, "a rollback is not a failure")
    }

    /// A rollback clears the retry count of a failing message: fetched again from the last ack,
    /// it gets its full attempts before a hand-off.
    @Test func rollbackClearsRetries() {
        var consumer = started(retry: RetryPolicy(maxFetchRetries: 1))
        _ = answer(&consumer, now: at(1))
        _ = consumer.handle(.processed(nextOffset: 25), now: at(1))  // message 2, attempt 1
        _ = consumer.handle(.tick, now: at(501))
        _ = answer(&consumer, now: at(502))
        _ = consumer.handle(.rollback(to: nil), now: at(503))
        _ = consumer.handle(.tick, now: at(1_003))
        _ = answer(&consumer, now: at(1_004))
        let first = consumer.handle(.processed(nextOffset: 25), now: at(1_005))
        #expect(retry.recovered(first).isEmpty, "attempt 1 again, not 2")
        _ = consumer.handle(.tick, now: at(1_505))
        _ = answer(&consumer, now: at(1_506))
        #expect(retry.recovered(consumer.handle(.processed(nextOffset: 25), now: at(1_507))).map(\.id) == [2])
    }
}
