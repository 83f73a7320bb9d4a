import BrokerCore
import ProtocolCore
import Sim
import StoreCore
import Testing

/// The broker node fed by hand (DESIGN.md §4, "The broker node"): the rules both drivers run —
/// when a put is answered, what a failed sync does, what a graceful stop waits for, when a topic
/// registers, what retention removes. Storage is a `SimDisk`; syncs run when the test says so.
@Suite("Broker node: the shared pipeline")
struct BrokerNodeTests {
    static let wallMs: Int64 = 1_795_000_000_000
    let c1 = ConnectionID(1)

    /// A node over a fresh disk with the given `[system]` flush lines (and `extra` ini text).
    static func node(flush: String, extra: String = "", disk: SimDisk = SimDisk()) throws -> BrokerNode {
        let ini = "[system]\nbrokerId=1\nnumPartitions=2\ndataPath=/data\nmaxSegmentSize=256\n\(flush)\n\n[topic=test]\n\(extra)"
        let config = try ServerConfig(parsing: ini, path: "test.ini")
        disk.nowMs = wallMs
        let settings = BrokerNode.Settings(brokerURI: "meta://test:8123", version: "t", configFile: Array(ini.utf8), seed: 1)
        return try BrokerNode.open(storage: disk, config: config, defaultDataPath: "/data", settings: settings, clock: clock()).0
    }

    static func clock(_ ms: Int64 = 0) -> NodeClock {
        NodeClock(now: Instant(nanoseconds: ms * 1_000_000), wallMs: wallMs + ms)
    }

    func feed(_ node: BrokerNode, _ event: BrokerNode.Event, at ms: Int64 = 0) -> [BrokerNode.Action] {
        var actions: [BrokerNode.Action] = []
        node.handle(event, clock: Self.clock(ms), into: &actions)
        return actions
    }

    func put(_ node: BrokerNode, topic: String = "test", partition: Int32 = 0, opaque: Int32, at ms: Int64 = 0) -> [BrokerNode.Action] {
        let body = Array("message \(opaque)".utf8)
        let command = PutCommand(topic: topic, partition: partition, flag: 0, checksum: CRC32.metaqChecksum(body), body: body,
                                 opaque: opaque)
        return feed(node, .request(c1, .put(command)), at: ms) + feed(node, .tickEnded, at: ms)
    }

    /// A sync's completion as a driver feeds it: `.syncFinished`, then `.tickEnded` when the node
    /// asks for it (`.endTickNow`), which is when the durable puts are answered.
    func finish(_ node: BrokerNode, _ job: SyncJob, _ result: Result<Void, StorageError>? = nil, at ms: Int64 = 0)
        -> [BrokerNode.Action] {
        let finished = feed(node, .syncFinished(job.partition, id: job.id, result ?? job.batch.performed()), at: ms)
        let endsTick = finished.contains { if case .endTickNow = $0 { return true } else { return false } }
        return finished + (endsTick ? feed(node, .tickEnded, at: ms) : [])
    }

    func answers(_ actions: [BrokerNode.Action]) -> [Int32: String] {
        var found: [Int32: String] = [:]
        for action in actions {
            switch action {
            case .putAnswer(_, let answer): found[answer.opaque] = "200"
            case .reply(_, let response): found[response.opaque] = "\(response.code) \(response.text)"
            default: continue
            }
        }
        return found
    }

    func syncs(_ actions: [BrokerNode.Action]) -> [SyncJob] {
        actions.compactMap { if case .startSync(let job) = $0 { return job } else { return nil } }
    }

    @Test func groupCommitAnswersAPutOnlyAfterTheSyncThatCoversIt() throws {
        let node = try Self.node(flush: "unflushThreshold=0")
        _ = feed(node, .connectionOpened(c1))
        let staged = put(node, opaque: 1)
        #expect(answers(staged).isEmpty, "no answer before the sync")
        let job = try #require(syncs(staged).first)
        #expect(node.unansweredPuts == 1)
        #expect(node.checkInvariants().isEmpty)
        let finished = feed(node, .syncFinished(job.partition, id: job.id, job.batch.performed()), at: 1)
        #expect(answers(finished).isEmpty && syncs(finished).isEmpty, "answered at the end of the tick")
        #expect(finished.contains { if case .endTickNow = $0 { return true } else { return false } })
        let done = feed(node, .tickEnded, at: 1)
        #expect(answers(done) == [1: "200"])
        #expect(node.unansweredPuts == 0)
    }

    @Test func thresholdPolicyAnswersOnceWrittenAndSyncsLater() throws {
        let node = try Self.node(flush: "unflushThreshold=100\nunflushInterval=1000")
        _ = feed(node, .connectionOpened(c1))
        let written = put(node, opaque: 1)
        #expect(answers(written) == [1: "200"])
        #expect(syncs(written).isEmpty, "not due yet")
        #expect(written.contains { if case .armTimer(.syncDeadline, _) = $0 { return true } else { return false } })
        let fired = feed(node, .timerFired(.syncDeadline(TopicPartition("test", 0))), at: 1000)
        #expect(syncs(fired).count == 1, "the interval makes the sync due")
    }

    @Test func aFailedSyncAnswersEveryWaitingPutWithItsCauseAndTheLogRefusesLaterPuts() throws {
        let node = try Self.node(flush: "unflushThreshold=0")
        _ = feed(node, .connectionOpened(c1))
        let job = try #require(syncs(put(node, opaque: 1)).first)
        #expect(answers(put(node, opaque: 2)).isEmpty, "rides the next sync")
        let failure = StorageError.io(path: "/data/test-0/x.meta", detail: "fdatasync: Input/output error (EIO)")
        let failed = finish(node, job, .failure(failure), at: 1)
        let answered = answers(failed)
        #expect(answered.keys.sorted() == [1, 2])
        #expect(answered.values.allSatisfy { $0.hasPrefix("500 ") && $0.contains("sync failed") })
        #expect(failed.contains { if case .notice(.partitionFailed) = $0 { return true } else { return false } })
        #expect(answers(put(node, opaque: 3), )[3]?.contains("refuses writes since") == true)
        #expect(answers(put(node, partition: 1, opaque: 4)).isEmpty, "another partition still works")
        #expect(node.checkInvariants().isEmpty)
    }

    /// Issue 18: the runtime feeds every sync that ended meanwhile before it ends the tick once
    /// (`drainSyncInbox`), so one tick may hold several completions — of two partitions, one of
    /// them failed. Each put is answered exactly once with its own outcome (a durable one at that
    /// tick's end); the next sync starts at once; the invariants hold between the completions too.
    @Test func severalSyncsFinishingInOneTickAnswerEachPutOnceAtItsEnd() throws {
        let node = try Self.node(flush: "unflushThreshold=0")
        _ = feed(node, .connectionOpened(c1))
        let job0 = try #require(syncs(put(node, partition: 0, opaque: 1)).first)
        let job1 = try #require(syncs(put(node, partition: 1, opaque: 2)).first)
        #expect(answers(put(node, partition: 0, opaque: 3)).isEmpty, "rides partition 0's next sync")
        let first = feed(node, .syncFinished(job0.partition, id: job0.id, job0.batch.performed()), at: 1)
        #expect(answers(first).isEmpty, "nothing answered before the tick ends")
        #expect(first.contains { if case .endTickNow = $0 { return true } else { return false } })
        let next = try #require(syncs(first).first, "partition 0's next sync starts at once")
        #expect(next.partition == job0.partition)
        #expect(node.checkInvariants().isEmpty)
        let failure = StorageError.io(path: "/data/test-1/x.meta", detail: "fdatasync: Input/output error (EIO)")
        let second = feed(node, .syncFinished(job1.partition, id: job1.id, .failure(failure)), at: 1)
        // A failed sync's puts are answered with its cause at once; partition 0's durable put
        // still waits for the tick's end.
        let refused = answers(second)
        #expect(refused.keys.sorted() == [2] && refused[2]?.hasPrefix("500 ") == true)
        #expect(node.checkInvariants().isEmpty)
        #expect(answers(feed(node, .tickEnded, at: 1)) == [1: "200"], "the durable put at the one tick end")
        #expect(answers(feed(node, .tickEnded, at: 1)).isEmpty, "answered once")
        #expect(answers(finish(node, next, at: 2)) == [3: "200"])
        #expect(node.unansweredPuts == 0 && node.checkInvariants().isEmpty)
    }

    @Test func aGracefulStopWaitsForTheSyncInFlightThenSyncsAndAnswers() throws {
        let node = try Self.node(flush: "unflushThreshold=0")
        _ = feed(node, .connectionOpened(c1))
        let job = try #require(syncs(put(node, opaque: 1)).first)
        #expect(answers(put(node, opaque: 2)).isEmpty)
        let requested = feed(node, .stopRequested, at: 1)
        #expect(!requested.contains { if case .stopped = $0 { return true } else { return false } }, "a sync is in flight")
        #expect(syncs(requested).isEmpty, "no new sync while stopping")
        let finished = finish(node, job, at: 2)
        #expect(answers(finished) == [1: "200", 2: "200"], "the final sync answers what it made durable")
        let stopped = finished.compactMap { if case .stopped(let report) = $0 { return report } else { return nil } }
        #expect(stopped.count == 1 && stopped[0].failedPartitions.isEmpty && stopped[0].answeredByFinalSync == 1)
        #expect(finished.contains { if case .close(let id) = $0 { return id == c1 } else { return false } })
        #expect(node.isStopped && node.unansweredPuts == 0)
    }

    /// Issue 18: a graceful stop leaves each synced log a clean-stop mark, so the next start skips
    /// the last segment's scan; a start after a crash (no stop) scans.
    @Test func aGracefulStopLetsTheNextStartSkipTheScan() throws {
        let disk = SimDisk()
        let node = try Self.node(flush: "unflushThreshold=0", disk: disk)
        _ = feed(node, .connectionOpened(c1))
        let job = try #require(syncs(put(node, opaque: 1)).first)
        #expect(answers(finish(node, job, at: 1)) == [1: "200"])
        let stopped = feed(node, .stopRequested, at: 2).compactMap { if case .stopped(let r) = $0 { return r } else { return nil } }
        #expect(node.isStopped && stopped.map(\.cleanStopMarks) == [1])
        let partition = TopicPartition("test", 0)
        let (restarted, report) = try Self.open(disk)
        let recovery = try #require(report.recoveries.first { $0.partition == partition }?.report)
        #expect(recovery.lastSegmentScanSkipped)
        #expect(restarted.stores.log(partition)?.recordCount == 1)
        restarted.stores.closeAll()
        let (_, afterCrash) = try Self.open(disk)
        #expect(afterCrash.recoveries.first { $0.partition == partition }?.report.lastSegmentScanSkipped == false)
    }

    /// `node(flush:)`'s broker opened again on `disk`, with its start report.
    static func open(_ disk: SimDisk) throws -> (BrokerNode, StartReport) {
        let ini = "[system]\nbrokerId=1\nnumPartitions=2\ndataPath=/data\nmaxSegmentSize=256\nunflushThreshold=0\n\n[topic=test]\n"
        let config = try ServerConfig(parsing: ini, path: "test.ini")
        let settings = BrokerNode.Settings(brokerURI: "meta://test:8123", version: "t", configFile: Array(ini.utf8), seed: 1)
        return try BrokerNode.open(storage: disk, config: config, defaultDataPath: "/data", settings: settings, clock: clock())
    }

    @Test func theFirstPutOfAWildcardTopicAsksForItsRegistration() throws {
        let node = try Self.node(flush: "unflushThreshold=100", extra: "\n[topic=auto*]\nnumPartitions=3\n")
        #expect(node.topicsToRegister().map(\.name) == ["test"], "configured, no wildcard")
        _ = feed(node, .connectionOpened(c1))
        let first = put(node, topic: "auto-1", partition: 0, opaque: 1)
        let registered = first.compactMap { if case .registerTopic(let topic) = $0 { return topic } else { return nil } }
        #expect(registered.map(\.name) == ["auto-1"] && registered.first?.numPartitions == 3)
        let again = put(node, topic: "auto-1", partition: 1, opaque: 2)
        #expect(!again.contains { if case .registerTopic = $0 { return true } else { return false } }, "once per topic")
        #expect(node.topicsToRegister().map(\.name) == ["auto-1", "test"])
    }

    @Test func retentionRemovesExpiredSealedSegmentsButNeverTheActiveOne() throws {
        let node = try Self.node(flush: "unflushThreshold=1\nunflushInterval=1", extra: "deletePolicy=delete,1h\n")
        _ = feed(node, .connectionOpened(c1))
        for opaque in 1...40 {
            for job in syncs(put(node, opaque: Int32(opaque), at: Int64(opaque))) {
                _ = finish(node, job, at: Int64(opaque))
            }
        }
        let log = try #require(node.stores.log(TopicPartition("test", 0)))
        #expect(log.segmentCount > 2)
        let removed = feed(node, .retentionRequested(asOfWallMs: Self.wallMs + 2 * 3_600_000), at: 100)
        let notices = removed.compactMap { if case .notice(.retentionRemoved(_, _, let segments, _)) = $0 { return segments } else { return nil } }
        #expect(notices.count == 1 && !notices[0].isEmpty)
        #expect(log.segmentCount == 1, "everything sealed and synced went; the active segment stays")
    }

    /// A put whose message id is not covered by a durable id reservation is refused: a restart
    /// starts above the persisted reservation only, so using the id could repeat it (found by the
    /// simulator, seed 2618: a repeated id made a group's dedup cache skip a new message).
    @Test func aPutIsRefusedWhenItsIdReservationCannotBePersisted() throws {
        let disk = SimDisk()
        let node = try Self.node(flush: "unflushThreshold=100\nunflushInterval=1000", disk: disk)
        _ = feed(node, .connectionOpened(c1))
        disk.failNextSync = true
        let refused = answers(put(node, opaque: 1))
        #expect(refused[1]?.hasPrefix("500 ") == true && refused[1]?.contains("cannot persist the message-id reservation") == true,
                "\(refused)")
        #expect(answers(put(node, opaque: 2)) == [2: "200"], "the next put persists the reservation again")
        #expect(node.unansweredPuts == 0)
    }

    @Test func statsAsksTheDriverForProcessFactsAndAnswers() throws {
        let node = try Self.node(flush: "unflushThreshold=0")
        _ = feed(node, .connectionOpened(c1))
        let asked = feed(node, .request(c1, .stats(StatsCommand(item: nil, opaque: 9))))
        let token = try #require(asked.compactMap { if case .collectProcessFacts(let t) = $0 { return t } else { return nil } }.first)
        let answered = feed(node, .processFacts(token: token, ProcessFacts(pid: 42, threads: 3)))
        let text = try #require(answers(answered)[9])
        #expect(text.contains("pid 42") && text.contains("curr_connections 1"), "\(text)")
    }
}
