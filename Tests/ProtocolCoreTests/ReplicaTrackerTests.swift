import ProtocolCore
import Testing

/// The master's side of replication (issue 17) fed by hand: positions, the in-sync set, the high
/// watermark, and when synchronous puts are answered or refused.
@Suite("Replica tracker")
struct ReplicaTrackerTests {
    let p0 = TopicPartition("t", 0)
    let p1 = TopicPartition("t", 1)
    func at(_ ms: Int64) -> Instant { Instant(nanoseconds: ms * 1_000_000) }

    @Test func aSynchronousPutIsAnsweredOnceTheInSyncSlaveHasItDurably() {
        var tracker = ReplicaTracker(settings: .init(synchronous: true, maxLagMs: 1000, minInSyncReplicas: 2))
        #expect(tracker.slaveConnected(1, now: at(0)) == [.inSyncChanged([1])], "caught up: the master has nothing yet")
        #expect(tracker.slaveReported(1, p0, offset: 0, now: at(0)) == [])
        #expect(tracker.localDurable(p0, end: 100, now: at(1)) == [])
        #expect(tracker.putWaiting(token: 7, p0, end: 100, now: at(1)) == [], "the slave does not have it yet")
        #expect(tracker.highWatermark(p0) == 0 && tracker.lag(of: 1, p0) == 100)
        #expect(tracker.slaveReported(1, p0, offset: 60, now: at(2)) == [], "a fetch at 60: only the first 60 bytes are on the slave")
        #expect(tracker.slaveReported(1, p0, offset: 100, now: at(3)) == [.answer(token: 7)])
        #expect(tracker.highWatermark(p0) == 100 && tracker.waitingPuts == 0)
        #expect(tracker.checkInvariants().isEmpty)
    }

    @Test func aSlaveThatFallsBehindLeavesTheInSyncSetAndRejoinsWhenCaughtUp() {
        var tracker = ReplicaTracker(settings: .init(synchronous: false, maxLagMs: 1000))
        _ = tracker.slaveReported(1, p0, offset: 0, now: at(0))
        _ = tracker.slaveReported(2, p0, offset: 0, now: at(0))
        #expect(tracker.inSync == [1, 2])
        _ = tracker.localDurable(p0, end: 500, now: at(100))
        _ = tracker.slaveReported(1, p0, offset: 500, now: at(200))
        #expect(tracker.tick(now: at(1_000)) == [], "slave 2 was last caught up at 0: within maxLagMs still")
        #expect(tracker.tick(now: at(1_001)) == [.inSyncChanged([1])], "more than maxLagMs since it was caught up")
        #expect(tracker.inSync == [1])
        #expect(tracker.slaveReported(2, p0, offset: 500, now: at(2_100)) == [.inSyncChanged([1, 2])], "it rejoins by itself")
        #expect(tracker.slaveDisconnected(1, now: at(2_200)) == [.inSyncChanged([2])], "a closed connection leaves at once")
    }

    /// With `minInSyncReplicas` 2 (the safe default), no in-sync slave means refusals with the
    /// original's text (§6.2); with 1, the master answers alone.
    @Test func tooFewCopiesRefuseOrAnswerAsConfigured() {
        var safe = ReplicaTracker(settings: .init(synchronous: true, maxLagMs: 1000, minInSyncReplicas: 2))
        _ = safe.localDurable(p0, end: 10, now: at(0))
        #expect(safe.putWaiting(token: 1, p0, end: 10, now: at(0)) == [.refuse(token: 1, text: "Slave is disconnected ")])
        var available = ReplicaTracker(settings: .init(synchronous: true, maxLagMs: 1000, minInSyncReplicas: 1))
        _ = available.localDurable(p0, end: 10, now: at(0))
        #expect(available.putWaiting(token: 1, p0, end: 10, now: at(0)) == [.answer(token: 1)])
        // A waiting put whose only in-sync slave drops out is refused, not left waiting.
        _ = safe.slaveReported(3, p0, offset: 10, now: at(1))
        _ = safe.localDurable(p0, end: 20, now: at(2))
        #expect(safe.putWaiting(token: 2, p0, end: 20, now: at(2)) == [])
        #expect(safe.slaveDisconnected(3, now: at(3)) == [.inSyncChanged([]), .refuse(token: 2, text: "Slave is disconnected ")])
        #expect(safe.checkInvariants().isEmpty)
    }

    /// The high watermark is the slowest in-sync copy's, per partition; puts of each partition are
    /// answered in offset order as it passes them.
    @Test func theHighWatermarkFollowsTheSlowestInSyncCopy() {
        var tracker = ReplicaTracker(settings: .init(synchronous: true, maxLagMs: 10_000, minInSyncReplicas: 2))
        _ = tracker.slaveReported(1, p0, offset: 0, now: at(0))
        _ = tracker.slaveReported(2, p0, offset: 0, now: at(0))
        _ = tracker.localDurable(p0, end: 30, now: at(1))
        _ = tracker.localDurable(p1, end: 5, now: at(1))
        for (token, end) in [(UInt64(1), Int64(10)), (2, 20), (3, 30)] { _ = tracker.putWaiting(token: token, p0, end: end, now: at(1)) }
        _ = tracker.putWaiting(token: 4, p1, end: 5, now: at(1))
        #expect(tracker.slaveReported(1, p0, offset: 30, now: at(2)) == [])
        #expect(tracker.slaveReported(2, p0, offset: 20, now: at(3)) == [.answer(token: 1), .answer(token: 2)])
        #expect(tracker.slaveReported(1, p1, offset: 5, now: at(4)) == [])
        #expect(tracker.slaveReported(2, p1, offset: 5, now: at(5)) == [.answer(token: 4)])
        #expect(tracker.highWatermark(p0) == 20 && tracker.waitingPuts == 1)
        #expect(tracker.slaveReported(2, p0, offset: 30, now: at(6)) == [.answer(token: 3)])
    }

    @Test func asynchronousPutsAreAnsweredAtOnce() {
        var tracker = ReplicaTracker(settings: .init(synchronous: false))
        #expect(tracker.putWaiting(token: 9, p0, end: 100, now: at(0)) == [.answer(token: 9)])
        #expect(tracker.waitingPuts == 0 && tracker.checkInvariants().isEmpty)
    }
}

extension ReplicaTrackerTests {
    /// Failover: a slave the published in-sync set still names could take over, so a synchronous
    /// put waits for it even after it left the local set — until a set without it is published.
    /// A reconnecting slave's old positions say nothing (it may have cut or re-copied its logs
    /// for a new term): it is behind until it reports again — the sweep's seed 424, where a slave
    /// that had failed to adopt the new term's history was published as in sync on connecting.
    @Test func aReconnectingSlaveIsBehindUntilItReportsAgain() {
        var tracker = ReplicaTracker(settings: .init(synchronous: true, maxLagMs: 1000, minInSyncReplicas: 2))
        _ = tracker.localDurable(p0, end: 100, now: at(0))
        #expect(tracker.slaveConnected(1, now: at(0)) == [], "the master has data the slave has not reported")
        #expect(tracker.slaveReported(1, p0, offset: 100, now: at(1)) == [.inSyncChanged([1])])
        #expect(tracker.slaveDisconnected(1, now: at(2)) == [.inSyncChanged([])])
        #expect(tracker.slaveConnected(1, now: at(3)) == [], "position 100 was the old connection's")
        #expect(tracker.position(of: 1, p0) == nil)
        #expect(tracker.slaveReported(1, p0, offset: 100, now: at(4)) == [.inSyncChanged([1])])
        #expect(tracker.checkInvariants().isEmpty)
    }

    /// Failover: a put is answered only once a slave that may take over (the published set) has
    /// it; a slave in sync but not yet published holds puts back without refusing them.
    @Test func withFailoverPutsWaitForThePublishedSetWithoutRefusals() {
        var tracker = ReplicaTracker(settings: .init(synchronous: true, maxLagMs: 1000, minInSyncReplicas: 2,
                                                     answerOnlyWithPublished: true))
        _ = tracker.slaveReported(1, p0, offset: 0, now: at(0))
        _ = tracker.localDurable(p0, end: 50, now: at(1))
        _ = tracker.slaveReported(1, p0, offset: 50, now: at(2))
        #expect(tracker.inSync == [1] && tracker.published == [])
        #expect(tracker.putWaiting(token: 1, p0, end: 50, now: at(3)) == [], "slave 1 has it but may not take over yet")
        #expect(tracker.inSyncPublished([1], now: at(4)) == [.answer(token: 1)])
        #expect(tracker.putWaiting(token: 2, p0, end: 50, now: at(5)) == [.answer(token: 2)])
        // Without the setting (no election), the in-sync slave alone suffices.
        var plain = ReplicaTracker(settings: .init(synchronous: true, maxLagMs: 1000, minInSyncReplicas: 2))
        _ = plain.slaveReported(1, p0, offset: 0, now: at(0))
        #expect(plain.putWaiting(token: 3, p0, end: 0, now: at(1)) == [.answer(token: 3)])
    }

    @Test func aDroppedSlaveHoldsPutsBackUntilASetWithoutItIsPublished() {
        var tracker = ReplicaTracker(settings: .init(synchronous: true, maxLagMs: 100, minInSyncReplicas: 2))
        _ = tracker.slaveReported(1, p0, offset: 0, now: at(0))
        _ = tracker.slaveReported(2, p0, offset: 0, now: at(0))
        #expect(tracker.inSyncPublished([1, 2], now: at(0)).isEmpty)
        _ = tracker.localDurable(p0, end: 50, now: at(1))
        _ = tracker.slaveReported(1, p0, offset: 50, now: at(2))
        _ = tracker.slaveReported(2, p0, offset: 50, now: at(2))
        // Slave 2 stops; the master goes on with slave 1, past maxLagMs.
        _ = tracker.localDurable(p0, end: 100, now: at(3))
        #expect(tracker.putWaiting(token: 9, p0, end: 100, now: at(3)).isEmpty)
        _ = tracker.slaveReported(1, p0, offset: 100, now: at(4))
        #expect(tracker.tick(now: at(200)) == [.inSyncChanged([1])], "slave 2 left the local set")
        #expect(tracker.waitingPuts == 1, "ZooKeeper still names slave 2, which lacks the put")
        #expect(tracker.inSyncPublished([1], now: at(201)) == [.answer(token: 9)])
        #expect(tracker.checkInvariants().isEmpty)
    }
}
