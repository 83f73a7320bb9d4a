import Testing
@testable import ProtocolCore

/// Manual acknowledgement (§5.3) meeting the hand-off of a failing message (§5.2) and the
/// broker's 301 (§1.4.2): the committable position never passes a message that is neither
/// acknowledged nor kept, and a rollback never loses one.
@Suite("Consumer manual ack with hand-offs and moves (reference §5.2, §5.3)")
struct ConsumerAckHandOffTests {
    let ack = ConsumerAckTests()
    let retry = ConsumerRetryTests()

    func at(_ ms: Int64) -> Instant { .milliseconds(ms) }

    /// A manual-ack machine whose message 2 failed its only attempt after `ackUpTo` was acked.
    func handingOff(ackUpTo: Int64?) -> ConsumerMachine {
        var consumer = ack.started(retry: RetryPolicy(maxFetchRetries: 0))
        _ = ack.answer(&consumer, now: at(1))
        if let ackUpTo { _ = consumer.handle(.ack(upTo: ackUpTo), now: at(1)) }
        let actions = consumer.handle(.processed(nextOffset: 25), now: at(2))
        #expect(retry.recovered(actions).map(\.id) == [2])
        return consumer
    }

    /// Everything before the handed-off message is acknowledged: once the policy keeps it, it
    /// counts as acknowledged too (and is not fetched again).
    @Test func aKeptMessageRightAtTheAckIsAcknowledged() {
        var consumer = handingOff(ackUpTo: 25)
        #expect(consumer.acknowledged == ack.acked(1, 25), "not before the hand-off is confirmed")
        #expect(retry.gets(consumer.handle(.handedOff, now: at(3))) == [50])
        #expect(consumer.acknowledged == ack.acked(2, 50))
    }

    /// Message 1 is handled but not acknowledged: the kept message does not move the ack past it;
    /// a rollback then delivers both again (a duplicate of the kept one, never a loss).
    @Test func aKeptMessageAfterUnacknowledgedOnesWaitsForTheNextAck() {
        var consumer = handingOff(ackUpTo: nil)
        #expect(retry.gets(consumer.handle(.handedOff, now: at(3))) == [50])
        #expect(consumer.acknowledged == ack.acked(-1, 0))
        _ = consumer.handle(.rollback(to: nil), now: at(4))
        _ = consumer.handle(.tick, now: at(504))
        #expect(ack.delivered(ack.answer(&consumer, now: at(505))) == [1, 2, 3])
    }

    /// A rollback while the hand-off is pending moves the offset back but the machine still waits
    /// for the policy's answer before its next `get`.
    @Test func rollbackDuringAPendingHandOffWaitsForIt() {
        var consumer = handingOff(ackUpTo: nil)
        _ = consumer.handle(.rollback(to: nil), now: at(3))
        #expect(retry.gets(consumer.handle(.tick, now: at(10_000))).isEmpty, "the hand-off is still pending")
        #expect(retry.gets(consumer.handle(.handedOff, now: at(10_001))) == [0])
        #expect(consumer.acknowledged == ack.acked(-1, 0))
    }

    /// A rollback to the failing message itself, right at the ack: once kept, the partition moves
    /// past it rather than fetching it again.
    @Test func rollbackToTheKeptMessageMovesPastItOnceKept() {
        var consumer = handingOff(ackUpTo: 25)
        _ = consumer.handle(.rollback(to: 25), now: at(3))
        #expect(consumer.offset == 25)
        _ = consumer.handle(.handedOff, now: at(4))
        #expect(consumer.acknowledged == ack.acked(2, 50) && consumer.offset == 50)
        #expect(retry.gets(consumer.handle(.tick, now: at(504))) == [50])
    }

    /// A 301 (§1.4.2) moves the ack along only when nothing delivered is unacknowledged, and
    /// always when it moves below the ack.
    @Test func brokerMovesAndTheAck() {
        var consumer = ack.started()
        _ = ack.answer(&consumer, now: at(1))
        _ = consumer.handle(.processed(nextOffset: 75), now: at(2))
        let opaque = try! #require(consumer.inFlightOpaque)
        _ = consumer.handle(.frame(.result(ResultResponse(code: 301, text: "200", opaque: opaque))), now: at(3))
        #expect(consumer.offset == 200 && consumer.acknowledged == ack.acked(-1, 0), "messages 1-3 are not acknowledged")
        _ = consumer.handle(.ack(upTo: 200), now: at(4))
        #expect(consumer.acknowledged.offset == 200)
        let next = try! #require(consumer.inFlightOpaque)
        _ = consumer.handle(.frame(.result(ResultResponse(code: 301, text: "300", opaque: next))), now: at(5))
        #expect(consumer.acknowledged == ack.acked(-1, 300), "nothing pending: the ack follows")
        let more = try! #require(consumer.inFlightOpaque)
        _ = consumer.handle(.frame(.value(ValueResponse(body: ConsumerRetryTests.records[0], opaque: more))), now: at(6))
        _ = consumer.handle(.processed(nextOffset: 325), now: at(6))
        #expect(consumer.offset == 325 && consumer.acknowledged.offset == 300, "the message at 300 is unacknowledged")
        let back = try! #require(consumer.inFlightOpaque)
        _ = consumer.handle(.frame(.result(ResultResponse(code: 301, text: "100", opaque: back))), now: at(7))
        #expect(consumer.acknowledged == ack.acked(-1, 100), "never past the offset")
    }
}
