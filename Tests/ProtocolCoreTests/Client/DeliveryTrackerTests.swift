import Testing
@testable import ProtocolCore

/// The handler bookkeeping of one fetch run (reference §5.1 dedup, §5.3 manual ack and rollback),
/// fed by hand.
@Suite("Delivery tracker and handler batches (reference §5.1, §5.3)")
struct DeliveryTrackerTests {
    static func message(_ id: Int64, at offset: Int64) -> Message {
        Message(id: id, flag: 0, attribute: nil, data: [1], offset: offset)
    }

    static let batch = [message(1, at: 0), message(2, at: 30), message(3, at: 60)]

    /// Ids the group handled before are skipped; each delivery's end is where the next record
    /// starts, the last one's the delivery's next offset (what an ack of it commits).
    @Test func admitSkipsHandledIdsAndComputesEnds() {
        var tracker = DeliveryTracker(mode: .automatic, unackedLimit: 8)
        var cache: MessageIdCache? = MessageIdCache(capacity: 8)
        cache!.insert(2)
        let fresh = tracker.admit(Self.batch, nextOffset: 90, cache: &cache)
        #expect(fresh.map(\.message.id) == [1, 3])
        #expect(fresh.map(\.end) == [30, 90])
        #expect(tracker.skipped == 1)
        var none: MessageIdCache? = nil
        #expect(tracker.admit(Self.batch, nextOffset: 90, cache: &none).count == 3, "without dedup nothing is skipped")
    }

    /// Automatic mode: handled ids enter the cache when the batch ends; the machine hears
    /// `.processed` up to where the handler got.
    @Test func automaticModeRemembersAtTheEndOfTheBatch() {
        var tracker = DeliveryTracker(mode: .automatic, unackedLimit: 8)
        var cache: MessageIdCache? = MessageIdCache(capacity: 8)
        #expect(tracker.handle(.processed(upTo: 60, ids: [1, 2]), cache: &cache) == .processed(nextOffset: 60))
        #expect(cache!.idsByRecency == [2, 1])
        #expect(tracker.unacknowledged.isEmpty)
    }

    /// Manual mode: handled ids wait (bounded) until an ack covers them; only then do they enter
    /// the cache, together with the ack's own ids.
    @Test func manualModeRemembersOnlyWithTheAck() {
        var tracker = DeliveryTracker(mode: .manualAck, unackedLimit: 3)
        var cache: MessageIdCache? = MessageIdCache(capacity: 3)
        #expect(tracker.handle(.processed(upTo: 90, ids: [1, 2, 3, 4]), cache: &cache) == .processed(nextOffset: 90))
        #expect(cache!.count == 0, "nothing acknowledged yet")
        #expect(tracker.unacknowledged == [2, 3, 4], "bounded by the cache's size, oldest dropped")
        #expect(tracker.handle(.acknowledged(upTo: 120, ids: [5]), cache: &cache) == .ack(upTo: 120))
        #expect(cache!.idsByRecency == [5, 4, 3])
        #expect(tracker.unacknowledged.isEmpty)
    }

    /// A rollback to the last ack voids what was handled since; one to a message keeps the ids
    /// handled before it for the next ack.
    @Test func rollbackKeepsOrDropsTheUnacknowledged() {
        var tracker = DeliveryTracker(mode: .manualAck, unackedLimit: 8)
        var cache: MessageIdCache? = MessageIdCache(capacity: 8)
        _ = tracker.handle(.processed(upTo: 30, ids: [1]), cache: &cache)
        #expect(tracker.handle(.rolledBack(to: 60, ids: [2]), cache: &cache) == .rollback(to: 60))
        #expect(tracker.unacknowledged == [1, 2])
        #expect(tracker.handle(.rolledBack(to: nil, ids: []), cache: &cache) == .rollback(to: nil))
        #expect(tracker.unacknowledged.isEmpty)
        #expect(cache!.count == 0, "rolled-back messages never count as handled")
    }

    /// Without dedup a tracker keeps no unacknowledged ids at all.
    @Test func noDedupKeepsNothing() {
        var tracker = DeliveryTracker(mode: .manualAck, unackedLimit: 0)
        var none: MessageIdCache? = nil
        _ = tracker.handle(.processed(upTo: 30, ids: [1, 2]), cache: &none)
        #expect(tracker.unacknowledged.isEmpty)
    }

    // MARK: HandlerBatch

    static func deliveries() -> [DeliveryTracker.Delivery] {
        var tracker = DeliveryTracker(mode: .automatic, unackedLimit: 0)
        var none: MessageIdCache? = nil
        return tracker.admit(batch, nextOffset: 90, cache: &none)
    }

    @Test func batchRunsToTheEnd() {
        var batch = HandlerBatch(nextOffset: 90)
        for delivery in Self.deliveries() {
            #expect(batch.handled(delivery, ack: false, rollback: nil) == .init(ack: nil, end: nil))
        }
        #expect(batch.finished() == .processed(upTo: 90, ids: [1, 2, 3]))
    }

    /// A failure ends the batch at the failed message, reporting only what was handled before it.
    @Test func failureEndsTheBatchAtTheFailedMessage() {
        var batch = HandlerBatch(nextOffset: 90)
        let d = Self.deliveries()
        _ = batch.handled(d[0], ack: false, rollback: nil)
        #expect(batch.failed(at: d[1].message.offset) == .processed(upTo: 30, ids: [1]))
    }

    /// An ack reports everything handled since the previous ack, up to the acked message's end;
    /// what follows is reported with the batch's end.
    @Test func acksSplitTheBatch() {
        var batch = HandlerBatch(nextOffset: 90)
        let d = Self.deliveries()
        _ = batch.handled(d[0], ack: false, rollback: nil)
        #expect(batch.handled(d[1], ack: true, rollback: nil).ack == .acknowledged(upTo: 60, ids: [1, 2]))
        _ = batch.handled(d[2], ack: false, rollback: nil)
        #expect(batch.finished() == .processed(upTo: 90, ids: [3]))
    }

    /// `setRollbackOnly()` ends the batch at this message, which is not counted as handled;
    /// `rollback()` ends it at the last ack with nothing kept; an ack in the same call still goes out.
    @Test func rollbacksEndTheBatch() {
        let d = Self.deliveries()
        var batch = HandlerBatch(nextOffset: 90)
        _ = batch.handled(d[0], ack: false, rollback: nil)
        #expect(batch.handled(d[1], ack: false, rollback: .toThisMessage).end == .rolledBack(to: 30, ids: [1]))
        var other = HandlerBatch(nextOffset: 90)
        let step = other.handled(d[0], ack: true, rollback: .toLastAck)
        #expect(step == .init(ack: .acknowledged(upTo: 30, ids: [1]), end: .rolledBack(to: nil, ids: [])))
    }
}
