import Testing
@testable import ProtocolCore

/// The member's invariants (`GroupMember+Invariants.swift`): each test breaks one in an
/// otherwise sound state and expects exactly that violation, so a check that is lost or
/// weakened fails here. `handle` runs them after every event, so every other group test and
/// the simulator sweeps exercise them on real histories.
@Suite struct GroupMemberInvariantTests {
    typealias Violation = GroupMember.InvariantViolation

    /// c1 and c2 settled over one broker with 4 partitions, each fetching its two.
    static func settled() -> (harness: GroupHarness, member: GroupMember) {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 4)
        let c1 = h.addMember("c1")
        h.send(c1, .start)
        h.send(h.addMember("c2"), .start)
        h.settle()
        return (h, h.members[c1])
    }

    static func slot(_ partition: String) -> GroupMember.Slot { .init(topic: "test", partition: bp(partition)) }

    @Test func soundStatesHaveNoViolations() {
        var (h, member) = Self.settled()
        #expect(member.isSettled && member.owned == ["test": [bp("0-0"), bp("0-1")]])
        #expect(member.invariantViolations() == [])
        #expect(h.members[1].invariantViolations() == [])
        h.send(0, .processed(topic: "test", partition: bp("0-0"), nextOffset: 40, msgId: 7))
        h.expire(1)
        h.run()
        #expect(h.members[1].invariantViolations() == [])
        h.send(0, .close)
        #expect(h.log[0].contains(.closed) && h.members[0].invariantViolations() == [])
        member = GroupMember(settings: member.settings)
        #expect(member.invariantViolations() == [])
    }

    @Test func ownershipAndRequestsDoNotOutliveTheSession() {
        let (_, settled) = Self.settled()
        var member = settled
        member.phase = .sessionExpired
        member.pending = [:]
        member.suspects = []
        member.applied = [:]
        #expect(member.invariantViolations() == [.outlivesSession(what: "ownership")])
        member.holdings = [:]
        member.pending[99] = .init(purpose: .consumerIds, scope: .round)
        #expect(member.invariantViolations() == [.outlivesSession(what: "a request"), .requestOutsideItsPhase(.round)])
        member.pending = [:]
        member.suspects = [Self.slot("0-2")]
        #expect(member.invariantViolations() == [.outlivesSession(what: "a suspect")])
        member.phase = .closed
        #expect(member.invariantViolations() == [], "close keeps the suspects; nothing reads them")
    }

    @Test func commitsAreScheduledOnlyInTheGroup() {
        var member = GroupMember(settings: Self.settled().member.settings)
        member.phase = .closed
        member.commitDue = Instant.zero.adding(milliseconds: 5000)
        #expect(member.invariantViolations() == [.commitOutsideMembership])
        member.phase = .waiting(until: .zero, then: .rebalance(failedAttempts: 0))
        #expect(member.invariantViolations() == [])
    }

    @Test func failedAttemptsStayBelowTheLimit() {
        var member = GroupMember(settings: Self.settled().member.settings)
        let limit = member.settings.maxClaimRetries
        member.phase = .waiting(until: .zero, then: .rebalance(failedAttempts: limit - 1))
        #expect(member.invariantViolations() == [])
        member.phase = .waiting(until: .zero, then: .rebalance(failedAttempts: limit))
        #expect(member.invariantViolations() == [.failedAttemptsOutOfRange(limit)])
        member.phase = .registering(failedAttempts: -1)
        #expect(member.invariantViolations() == [.failedAttemptsOutOfRange(-1)])
        member.phase = .rebalancing(.init(failedAttempts: limit))
        #expect(member.invariantViolations() == [.failedAttemptsOutOfRange(limit)])
    }

    @Test func externalLoadsAreAwaitedOnlyWithExternalStorage() {
        var member = GroupMember(settings: Self.settled().member.settings)
        var round = GroupMember.Round(failedAttempts: 0)
        round.step = .loadingOffsets(.init(), awaitingLoads: ["test": [bp("0-0")]])
        member.phase = .rebalancing(round)
        #expect(member.invariantViolations() == [.awaitingLoadsWithZooKeeperStorage])
        var settings = member.settings
        settings.offsetStorage = .external
        var external = GroupMember(settings: settings)
        external.phase = .rebalancing(round)
        #expect(external.invariantViolations() == [])
    }

    @Test func requestsBelongToTheirPhase() {
        var member = Self.settled().member
        member.pending[99] = .init(purpose: .consumerIds, scope: .round)
        #expect(member.invariantViolations() == [.requestOutsideItsPhase(.round)])
        member.pending[99] = .init(purpose: .register(recreate: false, retried: false), scope: .registration)
        #expect(member.invariantViolations() == [.requestOutsideItsPhase(.registration)])
        member.pending[99] = .init(purpose: .unclaim(Self.slot("0-3")), scope: .cleanup)
        #expect(member.invariantViolations() == [], "a conflicting attempt's releases are answered whenever")
    }

    @Test func aHeldPartitionIsNotClaimed() {
        var member = Self.settled().member
        var round = GroupMember.Round(failedAttempts: 0)
        round.step = .claiming(.init(), .init())
        member.phase = .rebalancing(round)
        member.pending[99] = .init(purpose: .claim(Self.slot("0-2"), retried: false), scope: .round)
        #expect(member.invariantViolations() == [])
        member.pending[100] = .init(purpose: .reclaim(Self.slot("0-1")), scope: .round)
        #expect(member.invariantViolations() == [.claimingHeldPartition(Self.slot("0-1"))])
    }

    @Test func aPartitionIsNotUsedBeforeItsOffsetIsRead() {
        var member = GroupMember(settings: Self.settled().member.settings)
        member.phase = .rebalancing(.init(failedAttempts: 0))
        member.holdings["test"] = [bp("0-0"): .init()]
        #expect(member.invariantViolations() == [])
        member.holdings["test"]![bp("0-0")]!.fetchingFrom = "meta://host0:8123"
        #expect(member.invariantViolations() == [.unreadPartitionInUse(Self.slot("0-0"))])
        member.holdings["test"]![bp("0-0")] = .init(offset: StoredOffset(msgId: 1, offset: 10))
        #expect(member.invariantViolations() == [.unreadPartitionInUse(Self.slot("0-0"))])
    }

    @Test func aSettledMemberHoldsOnlyItsShare() {
        var member = Self.settled().member
        member.holdings["test"]![bp("0-2")] = .init(loaded: true, fetchingFrom: "meta://host0:8123")
        #expect(member.invariantViolations() == [.heldOutsideShare(Self.slot("0-2"))])
    }

    @Test func aSettledMemberFetchesWhatItHoldsFromTheAppliedMaster() {
        var member = Self.settled().member
        member.holdings["test"]![bp("0-1")]!.fetchingFrom = "meta://elsewhere:8123"
        #expect(member.invariantViolations() == [.notFetchingAsApplied(Self.slot("0-1"))])
        member.holdings["test"]![bp("0-1")] = .init()
        #expect(member.invariantViolations() == [.notFetchingAsApplied(Self.slot("0-1"))], "held but never read")
    }

    @Test func offsetsOnlyMoveForward() {
        var member = Self.settled().member
        member.holdings["test"]![bp("0-0")]!.offset = StoredOffset(msgId: 9, offset: 100)
        member.holdings["test"]![bp("0-0")]!.committed = StoredOffset(msgId: 5, offset: 50)
        let before = member.holdings
        #expect(member.offsetRegressions(since: before) == [])
        member.holdings["test"]![bp("0-0")]!.committed = StoredOffset(msgId: 9, offset: 100)
        #expect(member.offsetRegressions(since: before) == [])
        member.holdings["test"]![bp("0-0")]!.committed = StoredOffset(msgId: 4, offset: 40)
        #expect(member.offsetRegressions(since: before) == [.offsetWentBack(Self.slot("0-0"))])
        member.holdings = before
        member.holdings["test"]![bp("0-0")]!.offset = nil
        #expect(member.offsetRegressions(since: before) == [.offsetWentBack(Self.slot("0-0"))])
        member.holdings = before
        member.holdings["test"]![bp("0-0")] = nil
        #expect(member.offsetRegressions(since: before) == [], "given up: a new holding starts from the stored offset")
    }

    /// `handle` itself checks: a member left holding partitions in `.sessionExpired` stops at
    /// the next event instead of acting on ownership it no longer has.
    @Test func handleStopsOnABrokenInvariant() async {
        await #expect(processExitsWith: .failure) {
            var member = GroupMemberInvariantTests.settled().member
            member.phase = .sessionExpired
            member.pending = [:]
            member.suspects = []
            member.applied = [:]
            _ = member.handle(.tick, now: .zero)
        }
    }
}
