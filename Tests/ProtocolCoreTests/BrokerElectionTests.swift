import Testing
@testable import ProtocolCore

/// Brokers of one broker id over one `FakeZooKeeper` (versioned nodes, ephemerals owned by
/// sessions, one-shot watches). A request is applied when the machine emits it; its reply and
/// the watches it fires are queued per machine, so each machine sees its session's events in
/// order while the test chooses how machines interleave.
struct ElectionHarness {
    var zk = FakeZooKeeper()
    var machines: [BrokerElection] = []
    var sessions: [Int] = []
    var queues: [[BrokerElection.Event]] = []
    var log: [[BrokerElection.Action]] = []
    /// The term each machine accepts puts in, from its actions.
    var accepting: [Int64?] = []
    /// Expired at the server, not yet told: requests fail with `.sessionExpired`.
    var dead: [Bool] = []
    /// Disconnected: requests fail with `.connectionLoss` without taking effect.
    var cut: [Bool] = []
    var now = Instant.zero
    private var nextSession = 1

    static let id = 0
    static func uri(_ i: Int) -> String { "meta://10.0.0.\(i + 1):8123" }

    var settingsTemplate = BrokerElection.Settings(brokerId: ElectionHarness.id, uri: "", role: .master)
    /// The term node's term (its raw text when it is not a record).
    var term: String? { record.map { "\($0.term)" } ?? zk.text(settingsTemplate.termPath) }
    var record: BrokerElection.Record? { zk.text(settingsTemplate.termPath).flatMap { BrokerElection.Record.parse(Array($0.utf8)) } }
    var masterURI: String? { zk.text(settingsTemplate.masterPath) }

    @discardableResult
    mutating func add(_ role: BrokerElection.Role, rejoinSlaveId: Int? = nil, clean: Bool = false, logsTerm: Int64? = nil) -> Int {
        let i = machines.count
        var settings = BrokerElection.Settings(brokerId: Self.id, uri: Self.uri(i), role: role, rejoinSlaveId: rejoinSlaveId,
                                               retryDelayMs: 1000)
        settings.cleanTakeoverOnly = clean
        machines.append(BrokerElection(settings: settings, logsTerm: logsTerm))
        sessions.append(nextSession)
        nextSession += 1
        queues.append([])
        log.append([])
        accepting.append(nil)
        dead.append(false)
        cut.append(false)
        return i
    }

    mutating func feed(_ i: Int, _ event: BrokerElection.Event) {
        let actions = machines[i].handle(event, now: now)
        log[i] += actions
        for action in actions {
            switch action {
            case .coordinate(let request, let tag):
                if dead[i] {
                    queues[i].append(.coordination(.reply(tag: tag, .failed(.sessionExpired))))
                } else if cut[i] {
                    queues[i].append(.coordination(.reply(tag: tag, .failed(.connectionLoss))))
                } else {
                    let (reply, watches) = zk.apply(request, session: sessions[i])
                    queues[i].append(.coordination(.reply(tag: tag, reply)))
                    deliver(watches)
                }
            case .acceptPuts(let term):
                accepting[i] = term
                // The node saves the term its logs now follow (`BrokerNode.saveConsistentTerm`).
                queues[i].append(.logsConsistent(term: term))
            case .follow:
                // A follower adopts its leader's history at once here (the node does on its hello).
                if let term = record?.term { queues[i].append(.logsConsistent(term: term)) }
            case .stopAcceptingPuts: accepting[i] = nil
            default: break
            }
        }
        #expect(machines[i].checkInvariants() == [])
    }

    mutating func deliver(_ watches: [(session: Int, WatchEvent)]) {
        for (session, event) in watches {
            if let j = sessions.firstIndex(of: session) { queues[j].append(.coordination(.watch(event))) }
        }
    }

    /// Delivers the next queued event of machine `i`; false when it has none.
    @discardableResult
    mutating func step(_ i: Int) -> Bool {
        guard !queues[i].isEmpty else { return false }
        feed(i, queues[i].removeFirst())
        return true
    }

    /// Delivers queued events one machine after another, round robin, until all queues are empty.
    mutating func settle() {
        for _ in 0..<10_000 {
            var any = false
            for i in machines.indices where step(i) { any = true }
            if !any { return }
        }
        Issue.record("no quiescence")
    }

    /// Moves the clock and ticks every machine.
    mutating func advance(ms: Int64) {
        now = now.adding(milliseconds: ms)
        for i in machines.indices { feed(i, .tick) }
        settle()
    }

    /// The server ends machine `i`'s session: its ephemeral nodes go, watches fire for others.
    mutating func expireAtServer(_ i: Int) {
        deliver(zk.expire(sessions[i]))
        dead[i] = true
    }

    /// Machine `i` hears of the expiry and gets a new session.
    mutating func tellExpired(_ i: Int) {
        sessions[i] = nextSession
        nextSession += 1
        dead[i] = false
        queues[i].append(.coordination(.session(.expired)))
        queues[i].append(.coordination(.session(.connected)))
    }

    /// Machine `i`'s process starts again (a fresh machine, the same settings, a new session)
    /// with its logs consistent with `logsTerm` (nil: a new or destroyed disk).
    mutating func restart(_ i: Int, logsTerm: Int64?) {
        machines[i] = BrokerElection(settings: machines[i].settings, logsTerm: logsTerm)
        sessions[i] = nextSession
        nextSession += 1
        dead[i] = false
        accepting[i] = nil
        feed(i, .start)
        settle()
    }

    mutating func expire(_ i: Int) {
        expireAtServer(i)
        tellExpired(i)
    }

    func requests(_ i: Int) -> [CoordinationRequest] {
        log[i].compactMap { if case .coordinate(let r, _) = $0 { r } else { nil } }
    }

    func follows(_ i: Int) -> [String] {
        log[i].compactMap { if case .follow(let uri) = $0 { uri } else { nil } }
    }

    /// A master with the given slaves, all started, the master leading term 1 and publishing
    /// `inSync` as its in-sync set.
    static func cluster(slaves: [Int], inSync: [Int], rejoinSlaveId: Int? = nil) -> ElectionHarness {
        var h = ElectionHarness()
        h.add(.master, rejoinSlaveId: rejoinSlaveId)
        for slave in slaves { h.add(.slave(slaveId: slave)) }
        for i in h.machines.indices { h.feed(i, .start) }
        h.settle()
        h.feed(0, .publishInSync(inSync))
        h.settle()
        return h
    }
}

@Suite struct BrokerElectionTests {
    @Test func masterStartRaisesTermThenRegistersThenAccepts() {
        var h = ElectionHarness()
        h.add(.master)
        h.feed(0, .start)
        h.settle()
        #expect(h.term == "1")
        #expect(h.masterURI == ElectionHarness.uri(0))
        #expect(h.zk.nodes[h.settingsTemplate.masterPath]?.ephemeralOwner == h.sessions[0])
        #expect(h.accepting[0] == 1)
        // Order of rule 1: the term is ours (CAS) before the master node is created, and puts
        // are accepted only after both.
        let log = h.log[0]
        let cas = log.firstIndex {
            if case .coordinate(.setDataAtVersion(_, let data, 0), _) = $0 { BrokerElection.Record.parse(data)?.term == 1 } else { false }
        }
        let create = log.firstIndex { if case .coordinate(.create(let p, _, .ephemeral), _) = $0 { p == h.settingsTemplate.masterPath } else { false } }
        let accept = log.firstIndex(of: .acceptPuts(term: 1))
        #expect(cas != nil && create != nil && accept != nil)
        #expect(cas! < create! && create! < accept!)
        // The original's master node holds only the URI (§3.1); the term lives under our root.
        #expect(h.settingsTemplate.termPath == "/metaq-swift/brokers/0/term")
        // The record names its owner; no in-sync set was ever published.
        #expect(h.record == BrokerElection.Record(term: 1, owner: ElectionHarness.uri(0), inSync: .never))
    }

    @Test func inSyncSlaveTakesOverWhenMasterNodeVanishes() {
        var h = ElectionHarness.cluster(slaves: [1], inSync: [1])
        #expect(h.record?.ids == [1])
        #expect(h.follows(1) == [ElectionHarness.uri(0)])
        #expect(h.machines[1].isInSync)
        h.expire(0)
        h.settle()
        #expect(h.term == "2")
        #expect(h.masterURI == ElectionHarness.uri(1))
        #expect(h.accepting[1] == 2)
        // The deposed master came back with a new session, read term 2 and follows.
        #expect(h.accepting[0] == nil)
        #expect(h.follows(0).last == ElectionHarness.uri(1))
        #expect(h.log[0].contains(.stopAcceptingPuts(.sessionExpired)))
        #expect(h.log[0].filter { if case .acceptPuts = $0 { true } else { false } } == [.acceptPuts(term: 1)])
    }

    @Test func slaveNotInSyncDoesNotTakeOver() {
        var h = ElectionHarness.cluster(slaves: [1], inSync: [])
        #expect(!h.machines[1].isInSync)
        h.expireAtServer(0)
        h.settle()
        for _ in 0..<5 { h.advance(ms: 1000) }
        #expect(h.masterURI == nil)
        #expect(h.term == "1")
        #expect(h.accepting[1] == nil)
        #expect(!h.requests(1).contains { if case .setDataAtVersion = $0 { true } else { false } })
    }

    @Test func twoInSyncSlavesRaceAndOnlyTheCASWinnerAccepts() {
        var h = ElectionHarness.cluster(slaves: [1, 2], inSync: [1, 2])
        h.expireAtServer(0)
        h.settle()
        // Versions: created (0), claimed term 1 (1), published [1, 2] (2).
        let casAtVersion2 = { (i: Int) in
            h.requests(i).filter { if case .setDataAtVersion(_, _, 2) = $0 { true } else { false } }.count
        }
        // Both read term 1 at version 2 and tried to write 2: the race really happened.
        #expect(casAtVersion2(1) == 1 && casAtVersion2(2) == 1)
        #expect(h.term == "2")
        let winners = [1, 2].filter { h.accepting[$0] != nil }
        #expect(winners.count == 1)
        guard let winner = winners.first else { return }
        let loser = winner == 1 ? 2 : 1
        #expect(h.accepting[winner] == 2)
        #expect(h.masterURI == ElectionHarness.uri(winner))
        #expect(h.follows(loser).last == ElectionHarness.uri(winner))
        // The loser's compare-and-set failed: it never owned term 2 (rule 1).
        #expect(!h.log[loser].contains(.notice("broker 0: owns term 2")))
        #expect(h.log[winner].contains(.notice("broker 0: owns term 2")))
        // After the retry delay the loser sees a master and does not claim again.
        h.advance(ms: 2000)
        #expect(h.term == "2")
        #expect(h.accepting[loser] == nil)
    }

    @Test func deposedMasterStopsOnExpiryAndRejoinsUnderNewerTerm() {
        var h = ElectionHarness.cluster(slaves: [1], inSync: [1])
        h.expireAtServer(0)
        h.settle()
        // Until it hears of the expiry, the old master still accepts, in term 1; the slave in 2.
        #expect(h.accepting[0] == 1)
        #expect(h.accepting[1] == 2)
        h.queues[0].append(.coordination(.session(.expired)))
        h.step(0)
        #expect(h.log[0].last(where: { if case .stopAcceptingPuts = $0 { true } else { false } }) == .stopAcceptingPuts(.sessionExpired))
        #expect(h.accepting[0] == nil)
        // New session: it reads term 2 > 1, stays stopped, follows, leaves the new node alone.
        h.sessions[0] = 99
        h.dead[0] = false
        h.queues[0].append(.coordination(.session(.connected)))
        h.settle()
        #expect(h.accepting[0] == nil)
        #expect(h.follows(0).last == ElectionHarness.uri(1))
        #expect(h.masterURI == ElectionHarness.uri(1))
        #expect(!h.requests(0).contains(.delete(path: h.settingsTemplate.masterPath)))
    }

    @Test func masterReconnectingInItsOwnTermAcceptsAgain() {
        var h = ElectionHarness.cluster(slaves: [1], inSync: [])
        // Connection drop: stop at once; back within the session: same term, node ours → accept.
        h.queues[0].append(.coordination(.session(.connecting)))
        h.step(0)
        #expect(h.accepting[0] == nil)
        #expect(h.log[0].contains(.stopAcceptingPuts(.disconnected)))
        h.queues[0].append(.coordination(.session(.connected)))
        h.settle()
        #expect(h.accepting[0] == 1)
        // Expiry with no slave able to take over: the node is re-created in the same term.
        h.expire(0)
        h.settle()
        #expect(h.term == "1")
        #expect(h.accepting[0] == 1)
        #expect(h.masterURI == ElectionHarness.uri(0))
        #expect(h.zk.nodes[h.settingsTemplate.masterPath]?.ephemeralOwner == h.sessions[0])
    }

    @Test func restartedMasterFindingASlaveInChargeRejoinsWithoutRaisingTheTerm() {
        var h = ElectionHarness.cluster(slaves: [1], inSync: [1])
        h.expireAtServer(0)
        h.settle()
        #expect(h.accepting[1] == 2)
        // The old master's process restarts: a fresh machine with the same settings.
        h.machines[0] = BrokerElection(settings: h.machines[0].settings)
        h.sessions[0] = 50
        h.dead[0] = false
        h.accepting[0] = nil
        h.feed(0, .start)
        h.settle()
        #expect(h.term == "2")
        #expect(h.accepting[0] == nil)
        #expect(h.accepting[1] == 2)
        #expect(h.follows(0).last == ElectionHarness.uri(1))
    }

    @Test func promoteMovesLeadershipWhileTheMasterIsAlive() {
        var h = ElectionHarness.cluster(slaves: [1], inSync: [1])
        h.feed(1, .promote(force: false))
        h.settle()
        #expect(h.term == "2")
        #expect(h.accepting[1] == 2)
        #expect(h.masterURI == ElectionHarness.uri(1))
        // The old master saw term 2 through its term watch, stopped, gave up the node, follows.
        #expect(h.accepting[0] == nil)
        #expect(h.log[0].contains(.stopAcceptingPuts(.newerTerm(2))))
        #expect(h.requests(0).contains(.delete(path: h.settingsTemplate.masterPath)))
        #expect(h.follows(0).last == ElectionHarness.uri(1))
    }

    @Test func promoteOfASlaveNotInSyncIsRefusedUnlessForced() {
        var h = ElectionHarness.cluster(slaves: [1], inSync: [])
        h.feed(1, .promote(force: false))
        h.settle()
        #expect(h.term == "1")
        #expect(h.accepting[0] == 1)
        #expect(h.log[1].contains { if case .notice(let text) = $0 { text.contains("refused") } else { false } })
        h.feed(1, .promote(force: true))
        h.settle()
        #expect(h.term == "2")
        #expect(h.accepting[1] == 2)
        #expect(h.accepting[0] == nil)
    }

    @Test func badVersionIsRetriedAfterTheDelayWithFreshReads() {
        var h = ElectionHarness()
        h.add(.master)
        h.zk.failures.append(({ if case .setDataAtVersion = $0 { true } else { false } }, .badVersion))
        h.feed(0, .start)
        h.settle()
        #expect(h.accepting[0] == nil)
        #expect(h.log[0].contains(.scheduleTick(at: .milliseconds(1000))))
        h.advance(ms: 999)
        #expect(h.accepting[0] == nil)
        h.advance(ms: 1)
        #expect(h.accepting[0] == 1)
        #expect(h.term == "1")
        #expect(h.requests(0).filter { if case .setDataAtVersion = $0 { true } else { false } }.count == 2)
    }

    @Test func casWithUnknownOutcomeIsNotTakenAsWon() {
        var h = ElectionHarness()
        h.add(.master)
        // The CAS applies but the reply is lost: the term is 1 without the machine knowing it is its own.
        h.zk.lostReplies.append { if case .setDataAtVersion = $0 { true } else { false } }
        h.feed(0, .start)
        h.settle()
        #expect(h.accepting[0] == nil)
        h.advance(ms: 1000)
        // A second claim owns term 2; term 1 had no leader at all.
        #expect(h.term == "2")
        #expect(h.accepting[0] == 2)
    }

    @Test func recordsRoundTripAndAnEarlierBareTermIsReadSafely() {
        let record = BrokerElection.Record(term: 7, owner: "meta://10.0.0.2:8123", inSync: .ids([1, 3]))
        #expect(String(decoding: record.data, as: UTF8.self) == "term=7 owner=meta://10.0.0.2:8123 in-sync=1,3")
        #expect(BrokerElection.Record.parse(record.data) == record)
        #expect(BrokerElection.Record.parse(Array("term=0 in-sync=-".utf8)) == .init(term: 0, owner: nil, inSync: .never))
        #expect(BrokerElection.Record.parse(Array("term=2 owner=u in-sync=".utf8)) == .init(term: 2, owner: "u", inSync: .ids([])))
        // A bare term (before owners were recorded): no owner, nobody in sync — nobody is
        // eligible by rule 10 on it but a configured master in an unclean world.
        #expect(BrokerElection.Record.parse(Array("5\n".utf8)) == .init(term: 5, owner: nil, inSync: .ids([])))
        #expect(BrokerElection.Record.parse(Array("term=x".utf8)) == nil)
        #expect(BrokerElection.Record.parse(Array("owner=u".utf8)) == nil)
        #expect(BrokerElection.Record.parse(Array("term=3 junk".utf8)) == nil)
        // A later version's field is skipped.
        #expect(BrokerElection.Record.parse(Array("term=3 epoch=9 in-sync=2".utf8)) == .init(term: 3, owner: nil, inSync: .ids([2])))
    }

    /// Rule 10, the sweep's seed 435: with synchronous replication a configured master that comes
    /// back after a slave led a term without it must not claim the next term with its stale logs,
    /// even with no master node: only the term's owner (or its in-sync slaves) holds every
    /// acknowledged put. The owner claims once it is back.
    @Test func cleanTakeoverWaitsForABrokerHoldingEveryAcknowledgedPut() {
        var h = ElectionHarness()
        h.add(.master, rejoinSlaveId: 2, clean: true)
        h.add(.slave(slaveId: 1), clean: true)
        for i in h.machines.indices { h.feed(i, .start) }
        h.settle()
        h.feed(0, .publishInSync([1]))
        h.settle()
        #expect(h.record?.ids == [1])
        h.expire(0)
        h.settle()
        #expect(h.accepting[1] == 2)
        #expect(h.record == BrokerElection.Record(term: 2, owner: ElectionHarness.uri(1), inSync: .ids([])))
        // The new leader dies before the old master is back in sync; the old master restarts.
        h.expireAtServer(1)
        h.restart(0, logsTerm: 1)
        for _ in 0..<3 { h.advance(ms: 1000) }
        #expect(h.accepting[0] == nil)
        #expect(h.term == "2")
        #expect(h.log[0].contains { if case .notice(let text) = $0 { text.contains("may not take over term 2") } else { false } })
        // The owner of term 2 comes back with its logs: it leads again (rule 7: it still holds
        // term 2) and the old master follows.
        h.tellExpired(1)
        h.settle()
        for _ in 0..<2 { h.advance(ms: 1000) }
        #expect(h.accepting[1] == 2)
        #expect(h.accepting[0] == nil)
        #expect(h.follows(0).last == ElectionHarness.uri(1))
    }

    /// A destroyed disk (no replication-term file) makes the owner ineligible — unless no in-sync
    /// set was ever published, when nothing was ever answered as replicated.
    @Test func anOwnerWithoutItsLogsClaimsOnlyWhileNothingWasEverReplicated() {
        for everPublished in [false, true] {
            var h = ElectionHarness()
            h.add(.master, clean: true)
            h.feed(0, .start)
            h.settle()
            #expect(h.accepting[0] == 1)
            if everPublished {
                h.feed(0, .publishInSync([1]))
                h.settle()
            }
            h.expireAtServer(0)
            h.restart(0, logsTerm: nil)
            for _ in 0..<3 { h.advance(ms: 1000) }
            #expect((h.accepting[0] == 2) == !everPublished, "ever published: \(everPublished)")
            // An operator may still force it (and accepts what that loses).
            h.feed(0, .promote(force: true))
            h.settle()
            #expect(h.accepting[0] != nil)
        }
    }

    /// With clean takeovers the published set never shrinks below `minInSyncSlaves`: a slave
    /// that drops out stays eligible (no put can be answered without it until another slave is
    /// published) and is replaced, not removed. The set and the term share one node, so a claim
    /// made on a set the leader has since changed fails its compare-and-set.
    @Test func thePublishedSetKeepsTheSlavesHoldingEveryAnsweredPut() {
        var h = ElectionHarness()
        h.add(.master, clean: true)
        for i in h.machines.indices { h.feed(i, .start) }
        h.settle()
        var published: [[Int]] = []
        func publish(_ ids: [Int]) {
            h.feed(0, .publishInSync(ids))
            h.settle()
            published = h.log[0].compactMap { if case .inSyncPublished(let ids) = $0 { ids } else { nil } }
        }
        publish([])
        #expect(h.record?.inSync == .never)
        publish([1])
        #expect(h.record?.ids == [1])
        publish([])
        #expect(h.record?.ids == [1])
        publish([2])
        #expect(h.record?.ids == [2])
        publish([2, 3])
        #expect(h.record?.ids == [2, 3])
        publish([3])
        #expect(h.record?.ids == [3])
        // Every write was reported to the node, in order, and only confirmed writes.
        #expect(published == [[], [1], [2], [2, 3], [3]])
        #expect(h.record?.term == 1)
        // A stale claim (made on the version before the last publish) loses.
        let (reply, _) = h.zk.apply(.setDataAtVersion(path: h.settingsTemplate.termPath,
                                                      data: BrokerElection.Record(term: 2, owner: "x", inSync: .ids([])).data,
                                                      version: 1), session: 999)
        #expect(reply == .failed(.badVersion))
    }

    @Test func malformedNodesAreReadSafely() {
        #expect(BrokerElection.decimal(Array(" 12\n".utf8)) == 12)
        #expect(BrokerElection.decimal(nil) == 0)
        #expect(BrokerElection.decimal(Array("-1".utf8)) == nil)
        #expect(BrokerElection.decimal(Array("99999999999999999999".utf8)) == nil)
        #expect(BrokerElection.slaveIds(Array("3, 1,x,,-2,1,99999999999".utf8)) == [1, 3])
        var h = ElectionHarness()
        h.add(.master)
        h.zk.put(h.settingsTemplate.termPath, "garbage")
        h.feed(0, .start)
        h.settle()
        h.advance(ms: 5000)
        #expect(h.accepting[0] == nil)
        #expect(h.term == "garbage")
    }

    /// Random interleavings of three brokers of one id: deliveries, server-side expiries told
    /// late, connection drops, ticks, in-sync publications and promotes. After every step no two
    /// brokers accept puts in one term, and the term only grows.
    @Test(arguments: 0..<200)
    func randomFailoversNeverShareATerm(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var h = ElectionHarness()
        h.add(.master, rejoinSlaveId: 0)
        h.add(.slave(slaveId: 1))
        h.add(.slave(slaveId: 2))
        for i in h.machines.indices { h.feed(i, .start) }
        var lastTerm: Int64 = 0
        var everAccepted: [Int64: Int] = [:]
        for _ in 0..<1000 {
            let i = Int.random(in: 0..<3, using: &rng)
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<60: h.step(i)
            case 60..<64: if !h.dead[i] { h.expireAtServer(i) }
            case 64..<70: if h.dead[i] { h.tellExpired(i) }
            case 70..<74:
                if !h.cut[i] && !h.dead[i] { h.cut[i] = true; h.queues[i].append(.coordination(.session(.connecting))) }
            case 74..<80:
                if h.cut[i] { h.cut[i] = false; h.queues[i].append(.coordination(.session(.connected))) }
            case 80..<88:
                h.now = h.now.adding(milliseconds: 500)
                h.feed(i, .tick)
            case 88..<96:
                let ids = [0, 1, 2].filter { $0 != i && Bool.random(using: &rng) }
                h.feed(i, .publishInSync(ids))
            default:
                h.feed(i, .promote(force: Bool.random(using: &rng)))
            }
            // One term, one broker: whoever accepted in a term is the only one ever to.
            for (j, term) in h.accepting.enumerated() {
                guard let term else { continue }
                #expect(everAccepted[term, default: j] == j, "seed \(seed): term \(term) accepted by \(everAccepted[term]!) and \(j)")
                everAccepted[term] = j
            }
            let live = h.accepting.compactMap { $0 }
            #expect(Set(live).count == live.count)
            if let text = h.term, let value = Int64(text) {
                #expect(value >= lastTerm)
                lastTerm = value
            }
        }
        // Heal: everyone connected again; a forced promote must then produce one leader.
        for i in h.machines.indices {
            if h.dead[i] { h.tellExpired(i) }
            if h.cut[i] { h.cut[i] = false; h.queues[i].append(.coordination(.session(.connected))) }
        }
        h.settle()
        for _ in 0..<3 { h.advance(ms: 1000) }
        if !h.accepting.contains(where: { $0 != nil }) {
            h.feed(0, .promote(force: true))
            h.settle()
            for _ in 0..<3 { h.advance(ms: 1000) }
        }
        let leaders = h.accepting.indices.filter { h.accepting[$0] != nil }
        #expect(leaders.count == 1, "seed \(seed): leaders \(leaders)")
        if let leader = leaders.first {
            #expect(h.masterURI == ElectionHarness.uri(leader))
            #expect(h.term == "\(h.accepting[leader]!)")
        }
    }
}
