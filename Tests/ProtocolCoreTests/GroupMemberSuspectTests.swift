import Testing
@testable import ProtocolCore

/// Owner nodes whose create or delete has an unknown outcome (found by the simulator, §3.4
/// step 5): the member must neither believe it holds a partition whose node is gone, nor leave
/// a node with its id behind for a partition that is no longer its.
@Suite struct GroupMemberSuspectTests {
    static let owner01 = "/meta/consumers/g/owners/test/0-1"

    /// c1 gives 0-1 up to c2; its delete takes effect but the reply is lost. c1 must not keep
    /// believing it holds 0-1 — and must not delete c2's node when it gives it up "again" on its
    /// next attempt (a slow one: c2 claims first).
    @Test func aReleaseWhoseReplyWasLostIsNotHeldAnyMore() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 2)
        let c1 = h.addMember("c1") { $0.syncTimeMs = 20_000 }
        h.send(c1, .start)
        #expect(h.members[c1].owned == ["test": [bp("0-0"), bp("0-1")]])
        h.zk.lostReplies = [{ $0 == .delete(path: Self.owner01) }]
        let c2 = h.addMember("c2")
        h.send(c2, .start)
        h.settle(stepMs: 1000)
        #expect(h.members[c1].owned == ["test": [bp("0-0")]])
        #expect(h.members[c2].owned == ["test": [bp("0-1")]])
        #expect(h.zk.text(Self.owner01) == "g_c2", "c2's node survived c1's doubt")
        #expect(h.fetching(c1) == [bp("0-0")] && h.fetching(c2) == [bp("0-1")])
        #expect(h.members[c1].suspects.isEmpty)
    }

    /// c1's claims of 0-0 and 0-1 take effect but the first reply is lost: the attempt aborts and
    /// the second reply is ignored. When c2 joins, 0-1 is c2's: c1 must remove its node, or c2
    /// would find it held forever.
    @Test func claimsOfAnAbortedAttemptAreRemovedWhenNoLongerMine() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 2)
        h.zk.put("/meta/consumers/g/owners/test", "")
        let c1 = h.addMember("c1")
        h.zk.lostReplies = [{ if case .create(let path, _, .ephemeral) = $0 { path.hasSuffix("owners/test/0-0") } else { false } }]
        h.send(c1, .start)
        #expect(h.members[c1].owned.isEmpty && h.members[c1].counters.abortedAttempts == 1)
        #expect(h.zk.text(Self.owner01) == "g_c1", "the second claim happened, its reply came too late")
        let c2 = h.addMember("c2")
        h.send(c2, .start)
        h.settle(stepMs: 1000)
        #expect(h.members[c1].owned == ["test": [bp("0-0")]])
        #expect(h.members[c2].owned == ["test": [bp("0-1")]])
        #expect(h.zk.text(Self.owner01) == "g_c2")
        #expect(h.zk.nodes["/meta/consumers/g/owners/test/0-0"]?.ephemeralOwner == h.sessions[c1])
    }
}
