import BrokerCore
import ProtocolCore
import Sim
import StoreCore
import Testing

/// A master node and a slave node wired to each other by hand (issue 17, reference §6.1): the
/// slave's requests reach the master as an ordinary connection, the master's answers come back on
/// the slave's master link. Syncs run when the pump says so; timers fire when the test moves time.
final class ReplicatedPair {
    static let wallMs: Int64 = 1_795_000_000_000
    var master: BrokerNode
    var slave: BrokerNode
    let masterConfig: ServerConfig
    let masterDisk = SimDisk()
    let slaveDisk = SimDisk()
    /// The slave's connection as the master sees it.
    let slaveConnection = ConnectionID(99)
    let client = ConnectionID(1)
    var nowMs: Int64 = 0
    var link: UInt64?
    /// Work waiting to be carried out, oldest first.
    var inbox: [(toMaster: Bool, event: BrokerNode.Event)] = []
    var pendingSyncs: [(master: Bool, job: SyncJob)] = []
    var timers: [(master: Bool, at: Int64)] = []
    var answers: [Int32: String] = [:]
    var clientReplies: [ResultResponse] = []
    var slaveReplies: [ResultResponse] = []
    var notices: [String] = []
    /// While false, the slave's syncs wait (its copy is written, not durable).
    var slaveSyncs = true
    var linkUp = true
    /// Which node follows on the link (the other one leads); `master` is the first one built.
    var followerIsMaster = false
    /// In-sync sets the nodes published for the election.
    var published: [(fromMaster: Bool, ids: [Int])] = []
    var promotions: [(fromMaster: Bool, force: Bool)] = []
    /// What each node told its election about its logs (`.logsConsistent`).
    var logsTerms: [(fromMaster: Bool, term: Int64?)] = []
    /// Changes what the master sends the slave (a broken or hostile master).
    var tamper: ((Frame) -> Frame)?

    init(masterIni: String = "", slaveIni: String = "", flush: String = "unflushThreshold=0") throws {
        func open(_ disk: SimDisk, _ extra: String, uri: String) throws -> (BrokerNode, ServerConfig) {
            // `extra`: replication settings as `key=value` lines (set directly: the section's
            // parsing is tested with the configuration).
            let ini = "[system]\nbrokerId=1\nnumPartitions=2\ndataPath=/data\nmaxSegmentSize=256\n\(flush)\n\n[topic=test]\n"
            var config = try ServerConfig(parsing: ini, path: "test.ini")
            if extra.contains("slaveId") { config.replication.slave = .init(slaveId: 1, maxDelayMs: 500, master: "meta://master:8123") }
            if extra.contains("synchronous") { config.replication.synchronous = true }
            if let line = extra.split(separator: "\n").first(where: { $0.hasPrefix("minInSyncReplicas=") }) {
                config.replication.minInSyncReplicas = Int(line.dropFirst("minInSyncReplicas=".count))!
            }
            if let line = extra.split(separator: "\n").first(where: { $0.hasPrefix("maxLagMs=") }) {
                config.replication.maxLagMs = Int64(line.dropFirst("maxLagMs=".count))!
            }
            disk.nowMs = Self.wallMs
            let settings = BrokerNode.Settings(brokerURI: uri, version: "t", configFile: Array(ini.utf8), seed: 1)
            return (try BrokerNode.open(storage: disk, config: config, defaultDataPath: "/data", settings: settings,
                                        clock: Self.clock(0)).0, config)
        }
        (master, masterConfig) = try open(masterDisk, masterIni, uri: "meta://master:8123")
        slave = try open(slaveDisk, "slaveId=1\n" + slaveIni, uri: "meta://slave:8124").0
        handle(master: true, .start)
        handle(master: false, .start)
        handle(master: true, .connectionOpened(client))
    }

    static func clock(_ ms: Int64) -> NodeClock { NodeClock(now: Instant(nanoseconds: ms * 1_000_000), wallMs: wallMs + ms) }

    func handle(master toMaster: Bool, _ event: BrokerNode.Event) {
        var actions: [BrokerNode.Action] = []
        (toMaster ? master : slave).handle(event, clock: Self.clock(nowMs), into: &actions)
        for action in actions { perform(action, fromMaster: toMaster) }
    }

    func perform(_ action: BrokerNode.Action, fromMaster: Bool) {
        switch action {
        case .reply(let connection, let response):
            if connection == slaveConnection {
                deliver(.result(response), to: !fromMaster)
            } else if connection == client {
                clientReplies.append(response)
                answers[response.opaque] = "\(response.code) \(response.text)"
            } else {
                slaveReplies.append(response)
            }
        case .putAnswer(_, let answer): answers[answer.opaque] = "200 \(answer.offset)"
        case .sendValue(let connection, let body, let opaque):
            if connection == slaveConnection { deliver(.value(ValueResponse(body: body, opaque: opaque)), to: !fromMaster) }
        case .sendFile(let connection, let slice, let opaque):
            let bytes = try! slice.file.read(at: slice.position, count: slice.count)
            try? slice.file.close()
            if connection == slaveConnection { deliver(.value(ValueResponse(body: bytes, opaque: opaque)), to: !fromMaster) }
        case .startSync(let job): pendingSyncs.append((fromMaster, job))
        case .endTickNow: inbox.append((fromMaster, .tickEnded))
        case .armTimer(_, let at): timers.append((fromMaster, at.nanoseconds / 1_000_000))
        case .collectProcessFacts(let token): inbox.append((fromMaster, .processFacts(token: token, ProcessFacts(pid: 1, threads: 1))))
        case .notice(let notice): notices.append("\(fromMaster ? "master" : "slave"): \(notice)")
        case .connectToMaster(let number, _):
            if linkUp {
                link = number
                followerIsMaster = fromMaster
                inbox.append((!fromMaster, .connectionOpened(slaveConnection)))
                inbox.append((fromMaster, .masterLinkOpened(link: number)))
            } else {
                inbox.append((fromMaster, .masterLinkClosed(link: number)))
            }
        case .sendToMaster(let number, let frame):
            guard number == link else { return }
            inbox.append((!fromMaster, .request(slaveConnection, frame)))
            inbox.append((!fromMaster, .tickEnded))
        case .closeMasterLink(let number):
            if number == link {
                link = nil
                inbox.append((!fromMaster, .connectionClosed(slaveConnection)))
            }
        case .publishInSync(let ids): published.append((fromMaster, ids))
        case .promote(let force): promotions.append((fromMaster, force))
        case .logsConsistent(let term): logsTerms.append((fromMaster, term))
        case .startJournalSync(let job): inbox.append((fromMaster, .journalSyncFinished(id: job.id, job.batch.performed())))
        case .flush, .close, .registerTopic, .syncAnswered, .stopped, .reloadConfig: break
        }
    }

    func deliver(_ frame: Frame, to toMaster: Bool) {
        guard let link, toMaster == followerIsMaster else { return }
        inbox.append((toMaster, .masterLinkFrame(link: link, tamper?(frame) ?? frame)))
    }

    /// Cuts the link as a network failure would: both sides hear of it.
    func cutLink() {
        guard let number = link else { return }
        link = nil
        linkUp = false
        inbox.append((!followerIsMaster, .connectionClosed(slaveConnection)))
        inbox.append((followerIsMaster, .masterLinkClosed(link: number)))
    }

    /// Carries out everything until nothing is left to do at the current time (syncs included,
    /// the slave's only while `slaveSyncs`).
    func pump(limit: Int = 100_000) {
        var steps = 0
        while steps < limit {
            steps += 1
            if !inbox.isEmpty {
                let (toMaster, event) = inbox.removeFirst()
                handle(master: toMaster, event)
                continue
            }
            if let index = pendingSyncs.firstIndex(where: { $0.master || slaveSyncs }) {
                let (isMaster, job) = pendingSyncs.remove(at: index)
                handle(master: isMaster, .syncFinished(job.partition, id: job.id, job.batch.performed()))
                continue
            }
            if let index = timers.firstIndex(where: { $0.at <= nowMs }) {
                let timer = timers.remove(at: index)
                handle(master: timer.master, .timerFired(.replication))
                continue
            }
            return
        }
        Issue.record("the pump did not settle in \(limit) steps")
    }

    /// Moves time forward by `ms` in steps, pumping at each.
    func advance(_ ms: Int64, step: Int64 = 10) {
        var left = ms
        while left > 0 {
            nowMs += min(step, left)
            left -= step
            pump()
        }
    }

    func put(_ text: String, partition: Int32 = 0, opaque: Int32, toMaster: Bool = true) {
        let body = Array(text.utf8)
        handle(master: toMaster, .request(client, .put(PutCommand(topic: "test", partition: partition, flag: 0,
                                                                  checksum: CRC32.metaqChecksum(body), body: body, opaque: opaque))))
        handle(master: toMaster, .tickEnded)
    }

    /// The first node's process dies with a power loss and starts again from its disk (what it
    /// synced survives); its pending work is dropped.
    func restartMaster() throws {
        inbox.removeAll { $0.toMaster }
        pendingSyncs.removeAll { $0.master }
        timers.removeAll { $0.master }
        masterDisk.crash()
        let settings = BrokerNode.Settings(brokerURI: "meta://master:8123", version: "t", configFile: [], seed: 2)
        master = try BrokerNode.open(storage: masterDisk, config: masterConfig, defaultDataPath: "/data", settings: settings,
                                     clock: Self.clock(nowMs)).0
        handle(master: true, .start)
    }

    func stats(_ node: BrokerNode) -> [String] {
        var actions: [BrokerNode.Action] = []
        node.handle(.connectionOpened(ConnectionID(7)), clock: Self.clock(nowMs), into: &actions)
        node.handle(.request(ConnectionID(7), .stats(StatsCommand(item: "replication", opaque: 5))), clock: Self.clock(nowMs),
                    into: &actions)
        for action in actions {
            if case .reply(_, let response) = action { return response.text.split(separator: "\r\n").map(String.init) }
        }
        return []
    }

    /// Every segment file of a partition, concatenated in offset order, with the first offset.
    func bytes(_ disk: SimDisk, _ partition: String = "test-0") throws -> (start: Int64, bytes: [UInt8]) {
        let directory = "/data/\(partition)"
        let names = try disk.list(directory).filter { $0.hasSuffix(".meta") }.sorted()
        var all: [UInt8] = []
        for name in names {
            let file = try disk.open(directory + "/" + name, create: false)
            all += try file.read(at: 0, count: Int(try file.size()))
            try file.close()
        }
        return (names.first.flatMap { Int64($0.dropLast(5)) } ?? 0, all)
    }
}

@Suite("Broker node: replication (issue 17, reference §6)")
struct BrokerNodeReplicationTests {
    @Test func anAsyncSlaveCopiesEveryPartitionByteForByteAtTheSameOffsets() throws {
        let pair = try ReplicatedPair()
        for i in 0..<20 { pair.put("message \(i) " + String(repeating: "x", count: i * 3), partition: Int32(i % 2), opaque: Int32(i)) }
        pair.pump()
        #expect(pair.answers.count == 20 && pair.answers.values.allSatisfy { $0.hasPrefix("200") })
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        pair.advance(3000)
        for partition in ["test-0", "test-1"] {
            let masterCopy = try pair.bytes(pair.masterDisk, partition)
            let slaveCopy = try pair.bytes(pair.slaveDisk, partition)
            #expect(masterCopy.bytes.count > 256, "several segments (maxSegmentSize 256)")
            #expect(slaveCopy.start == masterCopy.start && slaveCopy.bytes == masterCopy.bytes,
                    "\(partition) identical: \(slaveCopy.bytes.count) vs \(masterCopy.bytes.count) \((try? pair.slaveDisk.list("/data/\(partition)")) ?? []) \((try? pair.masterDisk.list("/data/\(partition)")) ?? []) \(pair.notices)")
        }
        // Later puts follow without a restart; the slave's stats say it is caught up.
        pair.put("late", opaque: 100)
        pair.advance(1500)
        #expect(try pair.bytes(pair.slaveDisk).bytes == pair.bytes(pair.masterDisk).bytes)
        let stats = pair.stats(pair.slave)
        #expect(stats.contains("role slave") && stats.contains("master meta://master:8123") && stats.contains("master_link open"))
        #expect(stats.contains { $0.hasPrefix("test part 0 local_end ") && $0.hasSuffix("lag_bytes 0 lag_ms 0") }, "\(stats)")
        let masterStats = pair.stats(pair.master)
        #expect(masterStats.contains("role master") && masterStats.contains("slaves_connected 1"), "\(masterStats)")
        #expect(pair.master.checkInvariants().isEmpty && pair.slave.checkInvariants().isEmpty)
    }

    @Test func aSlaveRefusesPutsAndTransactionsAndSaysWhoItsMasterIs() throws {
        let pair = try ReplicatedPair()
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        pair.pump()
        var actions: [BrokerNode.Action] = []
        let body = Array("x".utf8)
        pair.slave.handle(.connectionOpened(ConnectionID(5)), clock: ReplicatedPair.clock(0), into: &actions)
        pair.slave.handle(.request(ConnectionID(5), .put(PutCommand(topic: "test", partition: 0, flag: 0, checksum: CRC32.metaqChecksum(body),
                                                                    body: body, opaque: 3))),
                          clock: ReplicatedPair.clock(0), into: &actions)
        let replies = actions.compactMap { if case .reply(_, let r) = $0 { return r } else { return nil } }
        #expect(replies.count == 1 && replies[0].code == 500 && replies[0].opaque == 3)
        #expect(replies.first?.text.contains("is slave 1 of broker 1") == true && replies.first?.text.contains("meta://master:8123") == true)
    }

    @Test func aSynchronousMasterAnswersAPutOnlyOnceItsSlaveHasItDurably() throws {
        let pair = try ReplicatedPair(masterIni: "synchronous\nminInSyncReplicas=2")
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        pair.advance(100)
        pair.slaveSyncs = false
        pair.put("must be on two disks", opaque: 1)
        pair.advance(500)
        #expect(pair.answers[1] == nil, "written on the slave but not durable there: no answer")
        #expect(pair.master.unansweredPuts == 1)
        pair.slaveSyncs = true
        pair.advance(100)
        #expect(pair.answers[1] == "200 0", "\(pair.answers) \(pair.notices) \(pair.stats(pair.slave)) \(pair.stats(pair.master))")
        #expect(try pair.bytes(pair.slaveDisk).bytes == pair.bytes(pair.masterDisk).bytes)
        #expect(pair.master.checkInvariants().isEmpty)
    }

    @Test func withoutASlaveInSyncASynchronousMasterRefusesWithTheOriginalsText() throws {
        let pair = try ReplicatedPair(masterIni: "synchronous\nminInSyncReplicas=2")
        pair.put("no slave", opaque: 1)
        pair.pump()
        #expect(pair.answers[1]?.hasPrefix("500 ") == true && pair.answers[1]?.contains("Slave is disconnected") == true,
                "\(pair.answers)")
        // A slave that catches up rejoins by itself and puts are answered again.
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        pair.advance(200)
        pair.put("now answered", opaque: 2)
        pair.advance(200)
        #expect(pair.answers[2]?.hasPrefix("200 ") == true, "\(pair.answers)")
    }

    @Test func minInSyncReplicasOfOneLetsTheMasterAnswerAlone() throws {
        let pair = try ReplicatedPair(masterIni: "synchronous\nminInSyncReplicas=1")
        pair.put("alone", opaque: 1)
        pair.pump()
        #expect(pair.answers[1] == "200 0")
    }

    @Test func aSlaveThatDisconnectsLeavesTheInSyncSetAndWaitingPutsAreRefused() throws {
        let pair = try ReplicatedPair(masterIni: "synchronous\nminInSyncReplicas=2")
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        pair.advance(100)
        pair.slaveSyncs = false
        pair.put("caught by the cut", opaque: 1)
        pair.advance(50)
        #expect(pair.answers[1] == nil)
        pair.cutLink()
        pair.pump()
        #expect(pair.answers[1]?.contains("Slave is disconnected") == true, "\(pair.answers)")
        #expect(pair.notices.contains { $0.contains("slave 1 disconnected") })
        // The network comes back: the slave reconnects by itself (after its delay) and catches up.
        pair.linkUp = true
        pair.slaveSyncs = true
        pair.advance(2000)
        #expect(pair.stats(pair.master).contains("slaves_in_sync 1"))
        pair.put("after", opaque: 2)
        pair.advance(200)
        #expect(pair.answers[2]?.hasPrefix("200 ") == true)
    }

    @Test func aSlowSlaveLeavesTheInSyncSetAfterMaxLag() throws {
        let pair = try ReplicatedPair(masterIni: "synchronous\nminInSyncReplicas=2\nmaxLagMs=300")
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        pair.advance(100)
        pair.slaveSyncs = false
        pair.put("slow", opaque: 1)
        pair.advance(200)
        #expect(pair.answers[1] == nil, "still in sync: the put waits")
        pair.advance(400)
        #expect(pair.answers[1]?.contains("Slave is disconnected") == true, "dropped after maxLagMs: \(pair.answers)")
    }

    @Test func aFetchAtTheEndIsHeldUntilAPutIsDurable() throws {
        let pair = try ReplicatedPair()
        pair.put("first", opaque: 1)
        pair.pump()
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        pair.advance(100)
        let before = pair.stats(pair.slave).first { $0.hasPrefix("fetches ") }
        // Nothing new for a while: the held fetch is answered at fetchHoldMs (200 ms) and the
        // slave backs off; far fewer fetches than one per 5 ms.
        pair.advance(1000)
        let fetches = Int(pair.stats(pair.slave).first { $0.hasPrefix("fetches ") }!.dropFirst("fetches ".count))!
        #expect(fetches < 20, "held, not polled: \(fetches) fetches (before: \(before ?? "-"))")
        pair.put("second", opaque: 2)
        pair.pump()
        #expect(try pair.bytes(pair.slaveDisk).bytes == pair.bytes(pair.masterDisk).bytes, "delivered without waiting for time")
    }

    /// A master that lost power resets nothing: the link goes silent. The slave's partitions
    /// question (held at most a second by a live master) times out, and the slave connects again
    /// well before a held fetch's 70 s timeout.
    @Test func aSlaveGivesUpASilentMasterWithinTenSeconds() throws {
        let pair = try ReplicatedPair()
        pair.put("before", opaque: 1)
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        pair.advance(200)
        let first = try #require(pair.link)
        pair.link = nil  // silent: nothing reaches either side, nobody is told
        pair.advance(9_000, step: 100)
        #expect(!pair.notices.contains { $0.contains("no answer in time") })
        pair.advance(2_000, step: 100)
        #expect(pair.notices.contains { $0.contains("no answer in time") }, "\(pair.notices)")
        #expect(pair.link != nil && pair.link != first, "connected again")
        #expect(pair.slave.checkInvariants().isEmpty)
    }

    @Test func aSlaveFollowsAMasterThatMovesAndStopsFollowingAGoneOne() throws {
        let pair = try ReplicatedPair()
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        pair.pump()
        #expect(pair.link != nil)
        pair.handle(master: false, .masterAddress(nil))
        pair.pump()
        #expect(pair.link == nil && pair.stats(pair.slave).contains("master_link closed"))
        #expect(pair.notices.contains { $0.contains("the master is gone") })
    }
}

@Suite("Broker node: replication edge cases (issue 17)")
struct BrokerNodeReplicationEdgeTests {
    @Test func aSlaveWhoseCopyEndsBeforeTheMastersFirstSegmentStartsAgainThere() throws {
        let pair = try ReplicatedPair()
        pair.put("early", opaque: 1)
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        pair.advance(300)
        pair.handle(master: false, .masterAddress(nil))
        pair.pump()
        // The master writes several segments (maxSegmentSize 256), then its retention removes
        // all but the last while the slave is away.
        for i in 2..<30 { pair.put("while away \(i) " + String(repeating: "y", count: 20), opaque: Int32(i)) }
        pair.pump()
        pair.handle(master: true, .retentionRequested(asOfWallMs: ReplicatedPair.wallMs + 30 * 24 * 3_600_000))
        pair.pump()
        let masterCopy = try pair.bytes(pair.masterDisk)
        #expect(masterCopy.start > 0, "retention removed the first segments")
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        pair.advance(2000)
        let slaveCopy = try pair.bytes(pair.slaveDisk)
        #expect(slaveCopy.start == masterCopy.start && slaveCopy.bytes == masterCopy.bytes)
        #expect(pair.notices.contains { $0.contains("now starts at the master's first offset \(masterCopy.start)") }, "\(pair.notices)")
        #expect(pair.stats(pair.slave).contains("log_restarts 1"))
    }

    @Test func aSynchronousMasterWithAThresholdPolicyStillWaitsForItsSlaveAndSyncsAtOnce() throws {
        let pair = try ReplicatedPair(masterIni: "synchronous\nminInSyncReplicas=2",
                                      flush: "unflushThreshold=1000\nunflushInterval=600000")
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        pair.advance(100)
        pair.put("threshold", opaque: 1)
        pair.pump()
        #expect(pair.answers[1] == "200 0", "answered without waiting for the 10-minute interval: \(pair.answers)")
        #expect(try pair.bytes(pair.slaveDisk).bytes == pair.bytes(pair.masterDisk).bytes)
    }

    @Test func aSynchronousMasterAnswersACommitOnlyOnceItsSlaveHasTheMessages() throws {
        let pair = try ReplicatedPair(masterIni: "synchronous\nminInSyncReplicas=2")
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        pair.advance(100)
        pair.put("first", opaque: 1)
        pair.advance(100)
        #expect(pair.answers[1]?.hasPrefix("200 ") == true)
        pair.slaveSyncs = false
        let key = "TX:session:1"
        func command(_ type: TransactionType, _ opaque: Int32) -> Frame {
            .transaction(TransactionCommand(transactionKey: key, sessionId: "session", type: type, timeoutSeconds: nil,
                                            uniqueQualifier: nil, opaque: opaque))
        }
        pair.handle(master: true, .request(pair.client, command(.begin, 10)))
        let body = Array("in a transaction".utf8)
        pair.handle(master: true, .request(pair.client, .put(PutCommand(topic: "test", partition: 0, flag: 0, checksum: CRC32.metaqChecksum(body),
                                                                        transactionKey: key, body: body, opaque: 11))))
        pair.handle(master: true, .tickEnded)
        pair.handle(master: true, .request(pair.client, command(.commitOnePhase, 12)))
        pair.handle(master: true, .tickEnded)
        pair.advance(300)
        #expect(pair.answers[12] == nil, "stored on the master, not yet durable on the slave: \(pair.answers)")
        pair.slaveSyncs = true
        pair.advance(200)
        #expect(pair.answers[12]?.hasPrefix("200") == true, "\(pair.answers)")
        #expect(try pair.bytes(pair.slaveDisk).bytes == pair.bytes(pair.masterDisk).bytes)
        #expect(pair.master.checkInvariants().isEmpty, "\(pair.master.checkInvariants())")
    }

    @Test func aGracefulStopRefusesPutsStillWaitingForTheirSlave() throws {
        let pair = try ReplicatedPair(masterIni: "synchronous\nminInSyncReplicas=2")
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        pair.advance(100)
        pair.slaveSyncs = false
        pair.put("unconfirmed", opaque: 1)
        pair.advance(50)
        #expect(pair.answers[1] == nil)
        pair.handle(master: true, .stopRequested)
        pair.pump()
        #expect(pair.answers[1]?.contains("before its slaves confirmed") == true, "\(pair.answers)")
        #expect(pair.master.isStopped && pair.master.violations.isEmpty, "\(pair.master.violations)")
    }

    @Test func aHostileOrNonSlaveGroupIsAnOrdinaryGet() throws {
        let pair = try ReplicatedPair()
        pair.put("x", opaque: 1)
        pair.pump()
        for group in ["meta-slave-group_", "meta-slave-group_x", "meta-slave-group_99999", "meta-slave-group_-1", "group"] {
            var actions: [BrokerNode.Action] = []
            pair.master.handle(.request(pair.client, .get(GetCommand(topic: "test", group: group, partition: 0, offset: 37,
                                                                     maxSize: 100, opaque: 9))),
                               clock: ReplicatedPair.clock(pair.nowMs), into: &actions)
            let replies = actions.compactMap { if case .reply(_, let r) = $0 { return r.code } else { return nil } }
            #expect(replies == [404], "\(group): answered at once, not held: \(actions)")
        }
        #expect(pair.stats(pair.master).contains("slaves_connected "), "no slave was recorded")
        #expect(!pair.stats(pair.master).contains { $0.hasPrefix("slave ") })
    }

    @Test func aSlaveCopiesNoMorePartitionsThanItsConfigurationCouldHold() throws {
        let pair = try ReplicatedPair(flush: "unflushThreshold=0\nmaxAutoCreatedPartitions=3")
        // A master (broken or hostile) naming 50 partitions: the slave takes 3 + the 2 of its topic.
        pair.tamper = { frame in
            guard case .result(var result) = frame, result.text.hasPrefix("STATS") else { return frame }
            let lines = (0..<50).map { "t\($0) part 0 min_offset 0 max_offset 0" }
            result.body = Array((["STATS"] + lines + ["END"]).joined(separator: "\r\n").utf8)
            return .result(result)
        }
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        pair.advance(1500)  // an empty master holds the first question up to a second
        #expect(pair.stats(pair.slave).contains("replicate_partitions 5"), "\(pair.stats(pair.slave))")
        #expect(pair.notices.contains { $0.contains("has 50 partitions; this slave copies the first 5") }, "\(pair.notices)")
        #expect(pair.slave.stores.partitions.count <= 5)
    }

    @Test func aSlaveRefusesRecordsThatFailTheirChecksum() throws {
        let pair = try ReplicatedPair()
        pair.put("payload", opaque: 1)
        pair.pump()
        pair.tamper = { frame in
            guard case .value(var value) = frame, !value.body.isEmpty else { return frame }
            value.body[value.body.count - 1] ^= 0xFF
            return .value(value)
        }
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        pair.advance(500)
        #expect(try pair.bytes(pair.slaveDisk).bytes.isEmpty, "nothing of the damaged record is stored")
        #expect(pair.notices.contains { $0.contains("did not store the master's records for test-0 at 0") && $0.contains("checksum") },
                "\(pair.notices)")
        #expect(pair.slave.checkInvariants().isEmpty)
        // Once the bytes arrive intact, the copy catches up.
        pair.tamper = nil
        pair.advance(500)
        #expect(try pair.bytes(pair.slaveDisk).bytes == pair.bytes(pair.masterDisk).bytes)
    }
}

@Suite("Broker node: failover (issue 17)")
struct BrokerNodeFailoverTests {
    @Test func aDeposedMasterRejoinsAsASlaveAndCutsTheTailItsSuccessorNeverHad() throws {
        let pair = try ReplicatedPair()
        pair.handle(master: true, .leadership(.leading(term: 1)))
        pair.handle(master: false, .leadership(.following(masterURI: "meta://master:8123")))
        for i in 0..<5 { pair.put("replicated \(i)", opaque: Int32(i)) }
        pair.advance(500)
        #expect(try pair.bytes(pair.slaveDisk).bytes == pair.bytes(pair.masterDisk).bytes)
        #expect(pair.published.contains { $0.fromMaster && $0.ids == [1] }, "the leader published its in-sync slave")
        // The network splits; the (asynchronous) master takes three more puts its slave never sees.
        pair.cutLink()
        pair.pump()
        for i in 5..<8 { pair.put("unreplicated \(i)", opaque: Int32(i)) }
        pair.pump()
        let replicatedEnd = try pair.bytes(pair.slaveDisk).bytes.count
        #expect(try pair.bytes(pair.masterDisk).bytes.count > replicatedEnd)
        // The master's session ends: the slave takes over in term 2 and takes new puts.
        pair.handle(master: false, .leadership(.leading(term: 2)))
        pair.put("new leader 8", opaque: 8, toMaster: false)
        pair.put("new leader 9", opaque: 9, toMaster: false)
        pair.pump()
        #expect(pair.answers[8]?.hasPrefix("200 \(replicatedEnd)") == true, "\(pair.answers)")
        // The old master comes back, learns it is deposed and follows the new leader.
        try pair.restartMaster()
        pair.linkUp = true
        pair.handle(master: true, .leadership(.following(masterURI: "meta://slave:8124")))
        pair.advance(1000)
        let leader = try pair.bytes(pair.slaveDisk)
        let rejoined = try pair.bytes(pair.masterDisk)
        #expect(rejoined.bytes == leader.bytes, "the rejoined broker holds exactly the new leader's log")
        let stats = pair.stats(pair.master)
        #expect(stats.contains("role slave") && stats.contains("term 2") && stats.contains("copying_again false"), "\(stats)")
        #expect(stats.contains { $0.hasPrefix("bytes_cut ") && $0 != "bytes_cut 0" }, "\(stats)")
        #expect(pair.notices.contains { $0.contains("cut ") && $0.contains("where term 2 began") }, "\(pair.notices)")
        // A put sent to it now is refused: it is a slave.
        pair.put("to the old master", opaque: 20)
        pair.pump()
        #expect(pair.answers[20]?.contains("is slave") == true)
    }

    /// The failover sweep's seed 204: a partition only the deposed master has (its successor never
    /// copied it) is cut whole when it rejoins — the new leader's own puts to it would write other
    /// bytes at the same offsets.
    @Test func aRejoiningMasterCutsAPartitionItsSuccessorNeverHad() throws {
        let pair = try ReplicatedPair()
        pair.handle(master: true, .leadership(.leading(term: 1)))
        pair.handle(master: false, .leadership(.following(masterURI: "meta://master:8123")))
        for i in 0..<3 { pair.put("replicated \(i)", opaque: Int32(i)) }
        pair.advance(500)
        pair.cutLink()
        pair.pump()
        for i in 3..<6 { pair.put("only on the master \(i)", partition: 1, opaque: Int32(i)) }
        pair.pump()
        #expect(try pair.bytes(pair.masterDisk, "test-1").bytes.count > 0)
        pair.handle(master: false, .leadership(.leading(term: 2)))
        try pair.restartMaster()
        pair.linkUp = true
        pair.handle(master: true, .leadership(.following(masterURI: "meta://slave:8124")))
        pair.advance(1000)
        // The leader creates the partition only after the rejoined broker took its history.
        pair.put("the new leader's first message of test-1", partition: 1, opaque: 8, toMaster: false)
        pair.advance(1000)
        #expect(pair.answers[8]?.hasPrefix("200 ") == true, "\(pair.answers)")
        #expect(try pair.bytes(pair.masterDisk, "test-1").bytes == pair.bytes(pair.slaveDisk, "test-1").bytes,
                "the rejoined broker holds exactly the new leader's partition")
    }

    /// The failover sweep's seed 287: leading the same term again after a lost connection keeps
    /// the term's history, so a deposed master one term behind still cuts its tail at the term's
    /// real start instead of copying everything again (or keeping it).
    @Test func leadingTheSameTermAgainKeepsItsHistory() throws {
        let pair = try ReplicatedPair()
        pair.handle(master: true, .leadership(.leading(term: 1)))
        pair.handle(master: false, .leadership(.following(masterURI: "meta://master:8123")))
        for i in 0..<5 { pair.put("replicated \(i)", opaque: Int32(i)) }
        pair.advance(500)
        pair.cutLink()
        pair.pump()
        for i in 5..<8 { pair.put("unreplicated \(i)", opaque: Int32(i)) }
        pair.pump()
        pair.handle(master: false, .leadership(.leading(term: 2)))
        pair.put("new leader 8", opaque: 8, toMaster: false)
        pair.pump()
        pair.handle(master: false, .leadership(.fenced(reason: "disconnected")))
        pair.handle(master: false, .leadership(.leading(term: 2)))
        pair.put("new leader 9", opaque: 9, toMaster: false)
        pair.pump()
        try pair.restartMaster()
        pair.linkUp = true
        pair.handle(master: true, .leadership(.following(masterURI: "meta://slave:8124")))
        pair.advance(1000)
        #expect(try pair.bytes(pair.masterDisk).bytes == pair.bytes(pair.slaveDisk).bytes)
        #expect(pair.notices.contains { $0.contains("where term 2 began") }, "\(pair.notices)")
        #expect(!pair.notices.contains { $0.contains("copying") }, "\(pair.notices)")
        #expect(pair.notices.contains { $0.contains("leading broker 1 in term 2 (logs consistent with term 1 before)") })
        #expect(!pair.notices.contains { $0.contains("consistent with term 2 before") }, "\(pair.notices)")
    }

    /// The failover sweep's seeds 575 and 4438: a slave away while its master led two more terms
    /// reconnects. Its fetcher used to wake before the hello was answered and copy bytes of a term
    /// whose history it had not read (another slave then led saying its logs followed term 1, and
    /// a deposed master kept a tail under those bytes). On a new link nothing is fetched until the
    /// hello's answer is read and its history adopted.
    @Test func aSlaveFetchesNothingOnANewLinkBeforeTheHelloIsAnswered() throws {
        let pair = try ReplicatedPair()
        pair.handle(master: true, .leadership(.leading(term: 1)))
        pair.handle(master: false, .leadership(.following(masterURI: "meta://master:8123")))
        for i in 0..<3 { pair.put("term 1 message \(i)", opaque: Int32(i)) }
        pair.advance(500)
        pair.cutLink()
        pair.pump()
        // The master leads terms 2 and 3 while the slave is away: its logs stay two terms behind.
        pair.handle(master: true, .leadership(.fenced(reason: "session expired")))
        pair.handle(master: true, .leadership(.leading(term: 2)))
        for i in 3..<6 { pair.put("term 2 message \(i)", opaque: Int32(i)) }
        pair.handle(master: true, .leadership(.fenced(reason: "session expired")))
        pair.handle(master: true, .leadership(.leading(term: 3)))
        pair.put("term 3 message", opaque: 6)
        pair.pump()
        let before = try pair.bytes(pair.slaveDisk).bytes
        // The link comes back; the answer to the hello (term 3's history) is held back.
        var hello: Frame?
        pair.tamper = { frame in
            guard case .result(let result) = frame, String(decoding: result.body, as: UTF8.self).contains("term 3 previous 2")
            else { return frame }
            hello = frame
            return .result(ResultResponse(code: StatusCode.success, text: "", opaque: Int32.max))
        }
        pair.linkUp = true
        pair.advance(2000)
        try #require(hello != nil && pair.link != nil)
        #expect(try pair.bytes(pair.slaveDisk).bytes == before, "nothing copied before the history is read")
        pair.tamper = nil
        pair.inbox.append((false, .masterLinkFrame(link: pair.link!, hello!)))
        pair.advance(1000)
        #expect(pair.notices.contains { $0.contains("copying test-0 again from 0") }, "\(pair.notices)")
        #expect(try pair.bytes(pair.slaveDisk).bytes == pair.bytes(pair.masterDisk).bytes)
    }

    /// The failover sweep's seed 4438 on one link: a fetch in flight when the hello's answer
    /// makes the slave copy the partition again from 0 must not have its answer stored at 0 while
    /// the fetch at 0 is in flight (the copies differed from the first record on). The history
    /// forgets what was asked before it.
    @Test func aFetchSentBeforeTheHistoryIsNotStoredInTheCopyTheHistoryRemade() throws {
        let pair = try ReplicatedPair()
        pair.handle(master: true, .leadership(.leading(term: 1)))
        pair.handle(master: false, .leadership(.following(masterURI: "meta://master:8123")))
        for i in 0..<3 { pair.put("term 1 message \(i)", opaque: Int32(i)) }
        pair.advance(500)
        #expect(try pair.bytes(pair.slaveDisk).bytes == pair.bytes(pair.masterDisk).bytes)
        // Hold the answer to the next fetch that brings bytes, and the hello's answer for term 3.
        var late: Frame?
        var hello: Frame?
        pair.tamper = { frame in
            switch frame {
            case .value(let value) where !value.body.isEmpty && late == nil:
                late = frame
            case .result(let result) where String(decoding: result.body, as: UTF8.self).contains("term 3 previous 2"):
                hello = frame
            default:
                return frame
            }
            return .result(ResultResponse(code: StatusCode.success, text: "", opaque: Int32.max))
        }
        // The master leads term 2 (the slave's fetch brings its bytes, held back), then term 3;
        // the slave, on the same link, hears of neither before the hello's answer.
        pair.handle(master: true, .leadership(.fenced(reason: "session expired")))
        pair.handle(master: true, .leadership(.leading(term: 2)))
        for i in 3..<6 { pair.put("term 2 message \(i)", opaque: Int32(i)) }
        pair.advance(100)
        pair.handle(master: true, .leadership(.fenced(reason: "session expired")))
        pair.handle(master: true, .leadership(.leading(term: 3)))
        pair.advance(2000)
        try #require(late != nil && hello != nil && pair.link != nil)
        pair.tamper = nil
        // The hello's answer first, then — while the fetch at 0 it causes is in flight — the late
        // answer to the fetch at the old end.
        pair.inbox.append((false, .masterLinkFrame(link: pair.link!, hello!)))
        pair.inbox.append((false, .masterLinkFrame(link: pair.link!, late!)))
        pair.advance(1000)
        #expect(pair.notices.contains { $0.contains("copying test-0 again from 0") }, "\(pair.notices)")
        #expect(try pair.bytes(pair.slaveDisk).bytes == pair.bytes(pair.masterDisk).bytes,
                "the copy is the leader's log, byte for byte")
    }

    /// The failover sweep's seed 29960: a broker taking part in an election serves its slaves
    /// only while it leads. Waiting for the election (or fenced) it has no history to hand out;
    /// a slave that copied its bytes then held a record of no term it followed, and much later —
    /// taking a leader's history as a new copy's, with nothing to cut — kept it where the final
    /// leader's log held another.
    @Test func aBrokerThatDoesNotLeadServesNoSlave() throws {
        let pair = try ReplicatedPair()
        pair.cutLink()
        pair.pump()
        pair.handle(master: true, .leadership(.leading(term: 1)))
        for i in 0..<3 { pair.put("never replicated \(i)", opaque: Int32(i)) }
        pair.pump()
        pair.handle(master: true, .leadership(.fenced(reason: "waiting for the election in ZooKeeper")))
        pair.handle(master: false, .leadership(.following(masterURI: "meta://master:8123")))
        pair.linkUp = true
        pair.advance(3000)
        #expect(pair.link != nil, "the slave is connected")
        #expect(((try? pair.bytes(pair.slaveDisk).bytes) ?? []).isEmpty, "nothing copied from a broker that does not lead")
        #expect(pair.slave.logsConsistentTerm == nil)
        #expect(pair.notices.contains { $0.contains("does not lead broker 1 now and serves no slave") }, "\(pair.notices)")
        // Once it leads again, the slave takes the term's history and copies.
        pair.handle(master: true, .leadership(.leading(term: 2)))
        pair.advance(3000)
        #expect(pair.slave.logsConsistentTerm == 2)
        #expect(try pair.bytes(pair.slaveDisk).bytes == pair.bytes(pair.masterDisk).bytes)
    }

    /// The failover sweep's seed 12476: a leader takes puts in its term only once the term is in
    /// its replication-term file. A first leader whose fsync failed answered puts with no file;
    /// restarted, its logs followed no term, and rejoining a later leader as a new copy (nothing
    /// to cut) it kept a record where that leader's log held another.
    @Test func aLeaderWhoseTermCannotBePersistedTakesNoPutsUntilItIs() throws {
        let pair = try ReplicatedPair()
        pair.masterDisk.failNextSync = true
        pair.handle(master: true, .leadership(.leading(term: 1)))
        #expect(pair.master.currentLeadingTerm == nil)
        #expect(ReplicationTermFile.load(storage: pair.masterDisk, dataPath: "/data") == nil)
        pair.put("refused", opaque: 1)
        pair.pump()
        #expect(pair.answers[1]?.contains("cannot persist the replication term 1") == true, "\(pair.answers)")
        // The next attempt, a second later, writes the file: the term is led from then on.
        pair.advance(1100)
        #expect(pair.master.currentLeadingTerm == 1)
        #expect(ReplicationTermFile.load(storage: pair.masterDisk, dataPath: "/data") == 1)
        pair.put("accepted", opaque: 2)
        pair.advance(100)
        #expect(pair.answers[2]?.hasPrefix("200 ") == true, "\(pair.answers)")
    }

    /// The failover sweep's seed 25633: a deposed master whose cut failed on an fsync error has a
    /// failed log, which refuses writes until the broker restarts. It is reported as any failed
    /// log is (the operator's signal to restart it); unreported, the follower asked for the
    /// history every second and never converged.
    @Test func aLogThatFailsWhileBeingCutIsReportedAsFailed() throws {
        let pair = try ReplicatedPair()
        pair.handle(master: true, .leadership(.leading(term: 1)))
        pair.handle(master: false, .leadership(.following(masterURI: "meta://master:8123")))
        for i in 0..<3 { pair.put("replicated \(i)", opaque: Int32(i)) }
        pair.advance(500)
        pair.cutLink()
        pair.pump()
        for i in 3..<6 { pair.put("unreplicated \(i)", opaque: Int32(i)) }
        pair.pump()
        pair.handle(master: false, .leadership(.leading(term: 2)))
        try pair.restartMaster()
        pair.linkUp = true
        pair.masterDisk.failNextSync = true
        pair.handle(master: true, .leadership(.following(masterURI: "meta://slave:8124")))
        pair.advance(1000)
        #expect(pair.notices.contains { $0.contains("cannot make test-0 consistent with term 2") }, "\(pair.notices)")
        #expect(pair.notices.contains { $0.hasPrefix("master: ") && $0.contains("partition test-0")
                                            && $0.contains("the partition refuses writes until the broker is restarted") },
                "\(pair.notices)")
    }

    @Test func aFencedLeaderRefusesPutsAndItsWaitingPutsAreRefused() throws {
        let pair = try ReplicatedPair(masterIni: "synchronous\nminInSyncReplicas=2")
        pair.handle(master: true, .leadership(.leading(term: 1)))
        pair.handle(master: false, .leadership(.following(masterURI: "meta://master:8123")))
        pair.advance(100)
        pair.slaveSyncs = false
        pair.put("waiting", opaque: 1)
        pair.advance(50)
        #expect(pair.answers[1] == nil)
        pair.handle(master: true, .leadership(.fenced(reason: "the ZooKeeper connection dropped")))
        #expect(pair.answers[1]?.contains("stopped leading before its slaves confirmed") == true, "\(pair.answers)")
        pair.put("refused", opaque: 2)
        #expect(pair.answers[2]?.contains("does not lead broker 1 now") == true, "\(pair.answers)")
        // Leading again in the same term takes puts again.
        pair.slaveSyncs = true
        pair.handle(master: true, .leadership(.leading(term: 1)))
        pair.put("again", opaque: 3)
        pair.advance(100)
        #expect(pair.answers[3]?.hasPrefix("200 ") == true, "\(pair.answers)")
    }

    @Test func aFollowerSeveralTermsBehindCopiesItsPartitionsAgain() throws {
        let pair = try ReplicatedPair()
        // The second node led term 1 alone and kept data the first never had.
        pair.handle(master: false, .leadership(.leading(term: 1)))
        pair.put("only on the old leader", opaque: 1, toMaster: false)
        pair.pump()
        // The first node leads term 3 (term 2 had no leader) with its own data.
        pair.handle(master: true, .leadership(.leading(term: 3)))
        pair.put("term 3", opaque: 2)
        pair.pump()
        pair.handle(master: false, .leadership(.following(masterURI: "meta://master:8123")))
        pair.advance(1000)
        #expect(try pair.bytes(pair.slaveDisk).bytes == pair.bytes(pair.masterDisk).bytes)
        #expect(pair.notices.contains { $0.contains("copying test-0 again") }, "\(pair.notices)")
        // While it copied again it told its election its logs may not be relied on (nil), and
        // the term once it had reached the leader's end everywhere (the sweep's seed 4341: a
        // follower took over with half a copy).
        let told = pair.logsTerms.filter { !$0.fromMaster }.map(\.term)
        #expect(told.first == 1)
        #expect(told.dropFirst().contains(nil), "\(told)")
        #expect(told.last == 3, "\(told)")
        #expect(pair.notices.contains { $0.contains("a complete copy again") })
        #expect(pair.slave.electionLogsTerm == 3)
        #expect(ReplicationTermFile.loadCopying(storage: pair.slaveDisk, dataPath: "/data") == false)
    }

    /// A follower without a replication-term file under a leader whose logs follow a term knows
    /// nothing of where its bytes came from (a failed write of the file, a slave from before
    /// failover): it copies its partitions again instead of trusting them up to the term's start.
    /// Without a term on either side (a plain pair now under an election) it cuts as one term
    /// behind.
    @Test func aFollowerWithoutATermUnderALeaderWithOneCopiesAgain() throws {
        let pair = try ReplicatedPair()
        // A plain master and slave first: the slave copies without any term.
        pair.put("before any term", opaque: 1)
        pair.pump()
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        pair.advance(1500)
        #expect(try pair.bytes(pair.slaveDisk).bytes.count > 0)
        pair.handle(master: true, .leadership(.leading(term: 1)))
        pair.put("term 1", opaque: 2)
        pair.pump()
        pair.handle(master: true, .leadership(.fenced(reason: "test")))
        pair.handle(master: true, .leadership(.leading(term: 2)))
        pair.put("term 2", opaque: 3)
        pair.pump()
        #expect(pair.slave.logsConsistentTerm == nil)
        pair.handle(master: false, .leadership(.following(masterURI: "meta://master:8123")))
        pair.advance(1000)
        #expect(pair.notices.contains { $0.contains("copying test-0 again") && $0.contains("follow term none") }, "\(pair.notices)")
        #expect(try pair.bytes(pair.slaveDisk).bytes == pair.bytes(pair.masterDisk).bytes)
        #expect(pair.slave.logsConsistentTerm == 2)
    }

    /// The sweep's seed 1647: a broker led term 1 without its term file (its write failed), so
    /// its logs follow no known term; rejoining a later term, it was taken as one term behind and
    /// kept a term-1 tail its successor never had. Logs without a term are copied again unless the
    /// leader's term is a first one.
    @Test func aFollowerWithLogsButNoTermCopiesThemAgain() throws {
        let pair = try ReplicatedPair()
        pair.handle(master: true, .leadership(.leading(term: 1)))
        pair.handle(master: false, .leadership(.following(masterURI: "meta://master:8123")))
        pair.put("replicated", opaque: 1)
        pair.advance(500)
        pair.cutLink()
        pair.linkUp = false
        pair.put("tail", opaque: 2)
        pair.pump()
        // Its term file is gone ("cannot persist the replication term 1"), and it restarts.
        try pair.masterDisk.remove("/data/replication-term")
        try pair.restartMaster()
        pair.handle(master: false, .leadership(.leading(term: 2)))
        pair.put("term 2, longer than the old leader's tail", opaque: 3, toMaster: false)
        pair.pump()
        pair.handle(master: false, .leadership(.leading(term: 3)))
        pair.put("term 3", opaque: 4, toMaster: false)
        pair.pump()
        pair.linkUp = true
        pair.handle(master: true, .leadership(.following(masterURI: "meta://slave:8124")))
        pair.advance(1000)
        #expect(try pair.bytes(pair.masterDisk).bytes == pair.bytes(pair.slaveDisk).bytes, "\(pair.notices)")
        #expect(pair.notices.contains { $0.contains("copying test-0 again") }, "\(pair.notices)")
    }

    /// A pipelined slave fetches at its written end while its syncs run: reaching the leader's
    /// end is not yet holding it. A follower copying again stays marked as copying (not eligible
    /// to take over) until what it copied is durable — a power loss before would leave a half
    /// copy that says it is complete.
    @Test func aFollowerCopyingAgainIsCompleteOnlyOnceTheCopyIsDurable() throws {
        let pair = try ReplicatedPair()
        pair.handle(master: false, .leadership(.leading(term: 1)))
        pair.put("only on the old leader", opaque: 1, toMaster: false)
        pair.pump()
        pair.handle(master: true, .leadership(.leading(term: 3)))
        pair.put("term 3", opaque: 2)
        pair.pump()
        pair.slaveSyncs = false
        pair.handle(master: false, .leadership(.following(masterURI: "meta://master:8123")))
        pair.advance(1000)
        #expect(pair.notices.contains { $0.contains("copying test-0 again") }, "\(pair.notices)")
        #expect(!pair.notices.contains { $0.contains("a complete copy again") }, "at the leader's end, but nothing synced yet")
        #expect(ReplicationTermFile.loadCopying(storage: pair.slaveDisk, dataPath: "/data") == true)
        pair.slaveSyncs = true
        pair.advance(1000)
        #expect(pair.notices.contains { $0.contains("a complete copy again") })
        #expect(ReplicationTermFile.loadCopying(storage: pair.slaveDisk, dataPath: "/data") == false)
        #expect(try pair.bytes(pair.slaveDisk).bytes == pair.bytes(pair.masterDisk).bytes)
    }
}
