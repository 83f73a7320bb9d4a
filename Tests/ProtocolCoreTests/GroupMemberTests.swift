import Testing
@testable import ProtocolCore

/// Test helpers over the action log.
extension GroupHarness {
    func fetching(_ i: Int) -> [BrokerPartition] {
        var current: [BrokerPartition: Bool] = [:]
        for action in log[i] {
            if case .startFetching(let a) = action { current[a.partition] = true }
            if case .stopFetching(_, let p) = action { current[p] = false }
        }
        return current.filter(\.value).keys.sorted()
    }

    func starts(_ i: Int) -> [GroupMember.Assignment] {
        log[i].compactMap { if case .startFetching(let a) = $0 { return a } else { return nil } }
    }

    func index(_ i: Int, of match: (GroupMember.Action) -> Bool) -> Int? { log[i].firstIndex(where: match) }
}

func bp(_ text: String) -> BrokerPartition { BrokerPartition(text)! }

@Suite struct GroupMemberTests {
    /// §3.1, §3.4 step 1: the ids node is ephemeral, named by the consumer id string, data the
    /// topics; its parents are created on demand.
    @Test func registrationCreatesTheEphemeralIdsNode() {
        var h = GroupHarness()
        let c1 = h.addMember("c1")
        h.send(c1, .start)
        let first = h.log[c1].first
        #expect(first == .coordinate(.create(path: "/meta/consumers/g/ids/g_c1", data: Array("test".utf8), mode: .ephemeral), tag: 1))
        #expect(h.zk.nodes["/meta/consumers/g/ids/g_c1"] == .init(data: Array("test".utf8), ephemeralOwner: h.sessions[c1]))
        #expect(h.zk.children(of: "/meta/consumers/g/ids") == ["g_c1"])
        #expect(h.members[c1].counters.registrations == 1)
    }

    @Test func registrationReplacesANodeLeftByAnOldSession() {
        var h = GroupHarness()
        h.zk.put("/meta/consumers/g/ids/g_c1", "test", owner: 77)
        let c1 = h.addMember("c1")
        h.send(c1, .start)
        #expect(h.zk.nodes["/meta/consumers/g/ids/g_c1"]?.ephemeralOwner == h.sessions[c1])
        #expect(h.requests(c1).prefix(3) == [
            .create(path: "/meta/consumers/g/ids/g_c1", data: Array("test".utf8), mode: .ephemeral),
            .delete(path: "/meta/consumers/g/ids/g_c1"),
            .create(path: "/meta/consumers/g/ids/g_c1", data: Array("test".utf8), mode: .ephemeral),
        ])
    }

    /// §3.4 steps 2–3: three members over 2 brokers × 3 partitions end with the formula's shares
    /// (partitions sorted as strings 0-0 … 1-2, consumers g_c1 < g_c2 < g_c3: two each), the owner
    /// nodes say so, and each fetches its own from its broker's master.
    @Test func threeMembersSplitSixPartitionsByTheFormula() {
        var h = GroupHarness()
        h.addBrokers(2, partitions: 3)
        for id in ["c1", "c2", "c3"] { h.send(h.addMember(id), .start) }
        h.settle()
        let all = ["0-0", "0-1", "0-2", "1-0", "1-1", "1-2"]
        let consumers = ["g_c1", "g_c2", "g_c3"]
        for (i, id) in consumers.enumerated() {
            let expected = RebalanceStrategy.default.assign(partitions: all, consumers: consumers, me: id).map(bp)
            #expect(expected.count == 2)
            #expect(h.members[i].owned == ["test": expected], "\(id)")
            #expect(h.fetching(i) == expected, "\(id)")
            for p in expected {
                #expect(h.zk.text("/meta/consumers/g/owners/test/\(p)") == id)
            }
            #expect(h.members[i].pending.isEmpty, "no request left outstanding")
        }
        #expect(h.zk.children(of: "/meta/consumers/g/owners/test") == all)
        let start = h.starts(1).first { $0.partition == bp("1-0") }
        #expect(start?.brokerURI == h.uri(1))
    }

    /// §3.4 step 5: an owner node held by another consumer fails the attempt; this attempt's other
    /// claims are released, the member waits `syncTimeMs` and tries again, and after 7 attempts
    /// reports `.rebalanceFailed(attempts: 7)` — then starts a new series after `retryAfterFailureMs`.
    @Test func persistentConflictFailsAfterSevenAttemptsThenRetries() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 2)
        h.zk.put("/meta/consumers/g/owners/test/0-0", "g_other", owner: 99)
        let c1 = h.addMember("c1") { $0.retryAfterFailureMs = 30_000 }
        h.send(c1, .start)
        #expect(h.members[c1].counters.claimConflicts == 1)
        #expect(h.zk.nodes["/meta/consumers/g/owners/test/0-1"] == nil, "the attempt's own claim was released")
        #expect(h.requests(c1).last == .delete(path: "/meta/consumers/g/owners/test/0-1"))
        #expect(h.log[c1].contains(.scheduleTick(at: .milliseconds(5000))))
        #expect(h.members[c1].owned.isEmpty)

        for attempt in 2...7 {
            h.advance(ms: 4999)
            #expect(h.members[c1].counters.rebalanceAttempts == attempt - 1, "waits the full syncTimeMs")
            h.advance(ms: 1)
            #expect(h.members[c1].counters.rebalanceAttempts == attempt)
        }
        #expect(h.log[c1].filter { if case .rebalanceFailed = $0 { true } else { false } } == [.rebalanceFailed(attempts: 7)])
        #expect(h.members[c1].counters.claimConflicts == 7)
        h.advance(ms: 29_999)
        #expect(h.members[c1].counters.rebalanceAttempts == 7)
        h.advance(ms: 1)
        #expect(h.members[c1].counters.rebalanceAttempts == 8, "never gives up for good")
    }

    @Test func conflictThatClearsOnTheThirdAttemptSucceeds() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 2)
        h.zk.put("/meta/consumers/g/owners/test/0-0", "g_other", owner: 99)
        let c1 = h.addMember("c1")
        h.send(c1, .start)
        h.advance(ms: 5000)
        #expect(h.members[c1].counters.claimConflicts == 2)
        h.zk.remove("/meta/consumers/g/owners/test/0-0")
        h.advance(ms: 5000)
        #expect(h.members[c1].counters.rebalanceAttempts == 3)
        #expect(h.members[c1].owned == ["test": [bp("0-0"), bp("0-1")]])
        #expect(h.fetching(c1) == [bp("0-0"), bp("0-1")])
        #expect(!h.log[c1].contains { if case .rebalanceFailed = $0 { true } else { false } })
        #expect(h.log[c1].contains(.rebalanced(topic: "test", owned: [bp("0-0"), bp("0-1")])))
    }

    /// An owner node with my own id (a claim whose reply was lost) is already mine, not a conflict.
    @Test func anOwnerNodeWithMyIdIsMine() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 1)
        h.zk.put("/meta/consumers/g/owners/test/0-0", "g_c1", owner: 1)
        let c1 = h.addMember("c1")
        h.send(c1, .start)
        #expect(h.members[c1].counters.claimConflicts == 0)
        #expect(h.members[c1].owned == ["test": [bp("0-0")]])
    }

    /// A restart with the same consumer id within the session timeout (found by the simulator):
    /// the owner nodes of the previous process carry my id but belong to its session, which
    /// expires later and takes them along — leaving partitions fetched with no owner node, free
    /// for a second member to claim. They are replaced by this session's.
    @Test func anOwnerNodeOfMyPreviousSessionIsReplacedByThisSessions() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 2)
        let oldSession = 77
        h.zk.put("/meta/consumers/g/ids/g_c1", "test", owner: oldSession)
        h.zk.put("/meta/consumers/g/owners/test/0-0", "g_c1", owner: oldSession)
        h.zk.put("/meta/consumers/g/owners/test/0-1", "g_c1", owner: oldSession)
        let c1 = h.addMember("c1")
        h.send(c1, .start)
        #expect(h.members[c1].owned == ["test": [bp("0-0"), bp("0-1")]])
        #expect(h.members[c1].counters.claimConflicts == 0)
        for p in ["0-0", "0-1"] {
            #expect(h.zk.nodes["/meta/consumers/g/owners/test/\(p)"]?.ephemeralOwner == h.sessions[c1])
        }
        h.deliver(h.zk.expire(oldSession))
        h.run()
        #expect(h.zk.children(of: "/meta/consumers/g/owners/test") == ["0-0", "0-1"], "the old session's expiry took none of them")
        #expect(h.fetching(c1) == [bp("0-0"), bp("0-1")])
    }

    /// §3.4 step 2: watches that fire while a rebalance is under way are coalesced into exactly one more.
    @Test func watchesDuringARebalanceCauseExactlyOneMore() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 4)
        let c1 = h.addMember("c1")
        h.enqueue(c1, .start)
        // Registration, then the first reads are out (their watches set).
        while h.members[c1].counters.rebalanceAttempts == 0 { h.step() }
        h.deliver(h.zk.put("/meta/consumers/g/ids/g_c9", "other-topic", owner: 50))
        h.deliver(h.zk.put(h.layout.topicSubPath("test") + "/1-m", TopicRegistration(numParts: 2, broker: "1-m").json, owner: 51))
        h.run()
        #expect(h.members[c1].counters.rebalanceAttempts == 2)
        #expect(h.members[c1].counters.rebalances == 2)
        #expect(h.members[c1].isSettled)
    }

    /// A rebalance that changes nothing touches no fetcher; a new broker URI restarts only the
    /// partitions of that broker, from the in-memory offset (§3.4 step 7).
    @Test func keptPartitionsKeepFetchingUnlessTheirBrokerMoved() {
        var h = GroupHarness()
        h.addBrokers(2, partitions: 1)
        let c1 = h.addMember("c1")
        h.send(c1, .start)
        let before = h.log[c1].count
        h.send(c1, .coordination(.watch(.childrenChanged(path: "/meta/consumers/g/ids"))))
        #expect(h.members[c1].counters.rebalances == 2)
        #expect(!h.log[c1][before...].contains { if case .startFetching = $0 { true } else if case .stopFetching = $0 { true } else { false } })
        #expect(!h.log[c1][before...].contains { if case .rebalanced = $0 { true } else { false } })

        h.send(c1, .processed(topic: "test", partition: bp("1-0"), nextOffset: 300, msgId: 9))
        let mark = h.log[c1].count
        h.deliver(h.zk.put(h.layout.masterPath(1), "meta://moved:8123"))
        h.run()
        let after = Array(h.log[c1][mark...]).filter { if case .coordinate = $0 { false } else { true } }
        #expect(after == [
            .stopFetching(topic: "test", partition: bp("1-0")),
            .startFetching(.init(topic: "test", partition: bp("1-0"), brokerURI: "meta://moved:8123", offset: 300)),
            .rebalanced(topic: "test", owned: [bp("0-0"), bp("1-0")]),
        ])
    }

    /// §3.4 step 1 (session watch): expiry loses everything; on `.connected` the member registers
    /// again and takes its share afresh. Replies from the old session are ignored.
    @Test func expiryStopsEverythingAndStartsOverWhenConnected() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 2)
        let c1 = h.addMember("c1")
        h.send(c1, .start)
        h.send(c1, .processed(topic: "test", partition: bp("0-0"), nextOffset: 50, msgId: 1))
        // An offset commit is in flight when the session expires.
        h.advance(ms: 5000)
        let mark = h.log[c1].count
        h.expire(c1)
        h.run()
        #expect(Array(h.log[c1][mark...]) == [
            .stopFetching(topic: "test", partition: bp("0-0")),
            .stopFetching(topic: "test", partition: bp("0-1")),
        ])
        #expect(h.members[c1].owned.isEmpty)
        #expect(h.zk.children(of: "/meta/consumers/g/ids").isEmpty)

        h.send(c1, .coordination(.session(.connected)))
        #expect(h.zk.nodes["/meta/consumers/g/ids/g_c1"]?.ephemeralOwner == h.sessions[c1])
        #expect(h.members[c1].owned == ["test": [bp("0-0"), bp("0-1")]])
        #expect(h.fetching(c1) == [bp("0-0"), bp("0-1")])
        #expect(h.members[c1].counters.expiries == 1)
        #expect(h.members[c1].counters.registrations == 2)
    }

    @Test func repliesFromBeforeAnExpiryAreIgnored() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 2)
        let c1 = h.addMember("c1")
        h.enqueue(c1, .start)
        while h.members[c1].counters.rebalanceAttempts == 0 { h.step() }
        h.step()  // the consumer ids reply: the data reads go out
        // The expiry overtakes the replies still queued.
        let actions = h.members[c1].handle(.coordination(.session(.expired)), now: h.now)
        #expect(actions.isEmpty, "nothing was fetching yet")
        let before = h.log[c1].count
        h.run()
        #expect(h.members[c1].counters.staleReplies == 3, "topic and broker listings, the consumer data")
        #expect(h.log[c1].count == before, "stale replies cause no action")
        #expect(h.members[c1].owned.isEmpty)
        #expect(h.members[c1].pending.isEmpty)
    }

    /// A request that fails mid-rebalance (connection loss) aborts the attempt; it is retried after
    /// `syncTimeMs`.
    @Test func connectionLossAbortsTheAttemptAndRetries() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 1)
        h.zk.failures.append(({ if case .getChildren(let p, _) = $0 { p == "/meta/brokers/ids" } else { false } }, .connectionLoss))
        let c1 = h.addMember("c1")
        h.send(c1, .start)
        #expect(h.members[c1].counters.abortedAttempts == 1)
        #expect(h.members[c1].owned.isEmpty)
        #expect(h.members[c1].pending.isEmpty)
        h.advance(ms: 5000)
        #expect(h.members[c1].owned == ["test": [bp("0-0")]])
        #expect(h.members[c1].counters.rebalances == 1)
    }

    /// A member whose ids node vanished while its session lives registers again (§3.4 step 1).
    @Test func aMemberMissingFromTheGroupRegistersAgain() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 1)
        let c1 = h.addMember("c1")
        h.send(c1, .start)
        h.deliver(h.zk.remove("/meta/consumers/g/ids/g_c1"))
        h.run()
        #expect(h.zk.nodes["/meta/consumers/g/ids/g_c1"]?.ephemeralOwner == h.sessions[c1])
        #expect(h.members[c1].counters.registrations == 2)
        #expect(h.members[c1].owned == ["test": [bp("0-0")]])
        #expect(h.fetching(c1) == [bp("0-0")], "kept fetching throughout")
        #expect(h.starts(c1).count == 1)
    }

    /// A topic nobody registered yet: its `topics-sub` node is created so the watch can be set.
    @Test func aMissingTopicNodeIsCreatedAndWatched() {
        var h = GroupHarness()
        let c1 = h.addMember("c1")
        h.send(c1, .start)
        #expect(h.zk.nodes["/meta/brokers/topics-sub/test"] != nil)
        #expect(h.members[c1].isSettled)
        h.addBrokers(1, partitions: 1)
        h.run()
        #expect(h.members[c1].owned == ["test": [bp("0-0")]])
    }
}
