import BrokerCore
import ProtocolCore
import Sim
import StoreCore
import Testing

/// The admin verbs' rules in the pure node (issue 19; reference §8.4, §8.5), on a `SimDisk`:
/// a close is persisted before it is answered and survives a power loss and restart (our
/// difference from the original's in-memory close, §11.10); reload applies topic sections only.
@Suite("Broker node: admin verbs")
struct BrokerNodeAdminTests {
    let c1 = ConnectionID(1)
    let base = BrokerNodeTests()

    func stats(_ node: BrokerNode, _ item: String, opaque: Int32 = 7) -> [BrokerNode.Action] {
        base.feed(node, .request(c1, .stats(StatsCommand(item: item, opaque: opaque))))
    }

    func answer(_ actions: [BrokerNode.Action]) -> String? {
        for case .reply(_, let response) in actions { return "\(response.code) \(response.text)" }
        return nil
    }

    @Test func aClosePersistsAcrossAPowerLossAndOpenUndoesIt() throws {
        let disk = SimDisk()
        var node = try BrokerNodeTests.node(flush: "unflushThreshold=0", disk: disk)
        _ = base.feed(node, .connectionOpened(c1))
        let closed = try #require(answer(stats(node, AdminCommand.closePartitions(topic: "test", start: 0, end: 1).statsItem)))
        #expect(closed.hasPrefix("200 closed partitions 0..1 of topic test"), "\(closed)")
        #expect(node.machine.closedPartitions == [TopicPartition("test", 0), TopicPartition("test", 1)])
        #expect(base.answers(base.put(node, partition: 1, opaque: 3))[3]?.hasPrefix("403 ") == true)

        // Answered means durable: a power loss right after the answer keeps the close.
        var rng = SimRandom(seed: 42)
        disk.powerLoss(using: &rng)
        node = try BrokerNodeTests.node(flush: "unflushThreshold=0", disk: disk)
        _ = base.feed(node, .connectionOpened(c1))
        #expect(node.machine.closedPartitions == [TopicPartition("test", 0), TopicPartition("test", 1)])
        #expect(base.answers(base.put(node, partition: 0, opaque: 4))[4]?.hasPrefix("403 ") == true)

        let opened = try #require(answer(stats(node, AdminCommand.openPartitions(topic: "test").statsItem)))
        #expect(opened.hasPrefix("200 opened partitions 0,1 of topic test"), "\(opened)")
        disk.powerLoss(using: &rng)
        node = try BrokerNodeTests.node(flush: "unflushThreshold=0", disk: disk)
        #expect(node.machine.closedPartitions.isEmpty)
        #expect(!disk.fileExists("/data/closed-partitions"))
    }

    @Test func malformedOrUnknownTopicsAreRefusedAndChangeNothing() throws {
        let disk = SimDisk()
        let node = try BrokerNodeTests.node(flush: "unflushThreshold=0", disk: disk)
        _ = base.feed(node, .connectionOpened(c1))
        #expect(answer(stats(node, "admin@close-partitions@other@0@1")) == "400 topic other is neither configured nor stored on broker meta://test:8123")
        #expect(answer(stats(node, "admin@close-partitions@test@1"))?.hasPrefix("400 ") == true)
        #expect(answer(stats(node, "admin@close-partitions@test@-1@2"))?.hasPrefix("400 invalid start partition") == true)
        #expect(node.machine.closedPartitions.isEmpty && !disk.fileExists("/data/closed-partitions"))
    }

    @Test func aDamagedClosedPartitionsFileStopsTheStart() throws {
        let disk = SimDisk()
        try disk.makeDirectory("/data")
        try disk.replaceAtomically("/data/closed-partitions", with: Array("test 0\nend 1 12345\n".utf8))
        #expect(throws: ClosedPartitionsFileError.self) { try BrokerNodeTests.node(flush: "unflushThreshold=0", disk: disk) }
        #expect(ClosedPartitionsFile.decode(ClosedPartitionsFile.encode([TopicPartition("a", 3), TopicPartition("b", 0)]))
            == [TopicPartition("a", 3), TopicPartition("b", 0)])
    }

    static let ini = "[system]\nbrokerId=1\nnumPartitions=2\ndataPath=/data\nmaxSegmentSize=256\nunflushThreshold=0\n\n[topic=test]\n"

    @Test func reloadAppliesTopicSectionsOnlyAndReRegistersChangedTopics() throws {
        let node = try BrokerNodeTests.node(flush: "unflushThreshold=0")
        _ = base.feed(node, .connectionOpened(c1))
        #expect(base.answers(base.put(node, topic: "fresh", opaque: 1))[1]?.hasPrefix("500 ") == true)

        // The helper's file plus a new topic and a changed [system] value.
        let text = Self.ini.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0 == "maxSegmentSize=256" ? "maxSegmentSize=512" : String($0) }.joined(separator: "\n")
            + "\n[topic=fresh]\nnumPartitions=3\ndeleteWhen=0 0 3 * * ?\n"
        let config = try ServerConfig(parsing: text, path: "test.ini")
        var actions: [BrokerNode.Action] = []
        let outcome = node.reload(.loaded(config, file: Array(text.utf8), path: "test.ini"), replyTo: (c1, 9),
                                  clock: BrokerNodeTests.clock(), into: &actions)
        #expect(outcome == "reloaded test.ini; topics added: fresh; not applied, needs a restart: maxSegmentSize")
        #expect(answer(actions) == "200 " + outcome)
        let registered = actions.compactMap { if case .registerTopic(let topic) = $0 { return topic } else { return nil } }
        #expect(registered.map(\.name) == ["fresh"] && registered.first?.numPartitions == 3)
        #expect(actions.contains { if case .armTimer(.retention, _) = $0 { return true } else { return false } },
                "the new deleteWhen schedule is armed")
        #expect(node.config.maxSegmentSize == 256, "[system] is not applied")
        #expect(node.settings.configFile == Array(text.utf8))
        #expect(node.configChecksum == Int64(CRC32.checksum(Array(text.utf8))))
        // Usable at once, with its partition count.
        let stored = base.put(node, topic: "fresh", partition: 2, opaque: 2)
        let syncs = base.syncs(stored)
        var answered = base.answers(stored)
        for job in syncs { answered.merge(base.answers(base.finish(node, job)), uniquingKeysWith: { a, _ in a }) }
        #expect(answered[2] == "200", "\(answered)")
        #expect(base.answers(base.put(node, topic: "fresh", partition: 3, opaque: 3))[3]?.hasPrefix("500 ") == true)

        // A changed section is registered again; its data path waits for the restart.
        let changedText = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0 == "numPartitions=3" ? "numPartitions=5\ndataPath=/elsewhere" : String($0) }.joined(separator: "\n")
        var changed: [BrokerNode.Action] = []
        let changedOutcome = node.reload(.loaded(try ServerConfig(parsing: changedText, path: "test.ini"), file: Array(changedText.utf8),
                                                 path: "test.ini"), clock: BrokerNodeTests.clock(), into: &changed)
        #expect(changedOutcome == "reloaded test.ini; topics changed: fresh; not applied, needs a restart: maxSegmentSize,dataPath of fresh")
        #expect(changed.compactMap { if case .registerTopic(let topic) = $0 { return topic.numPartitions } else { return nil } } == [5])
        #expect(node.stores.dataPath(of: "fresh") == "/data")
        #expect(answer(changed) == nil, "no connection to answer")

        // A file that does not parse changes nothing.
        var failed: [BrokerNode.Action] = []
        let refused = node.reload(.unreadable("test.ini:3: bad"), replyTo: (c1, 10), clock: BrokerNodeTests.clock(), into: &failed)
        #expect(refused.hasPrefix("reload failed, the running config is unchanged") && answer(failed)?.hasPrefix("500 ") == true)
        #expect(node.settings.configFile == Array(changedText.utf8))
    }

    /// §8.4: a reload reschedules flush timers. An open threshold-mode log takes the new interval
    /// and threshold at once; a switch to group commit waits for the restart and says so.
    @Test func reloadReschedulesTheSyncOfOpenLogs() throws {
        let node = try BrokerNodeTests.node(flush: "unflushThreshold=1000\nunflushInterval=10000")
        _ = base.feed(node, .connectionOpened(c1))
        let stored = base.put(node, opaque: 1, at: 0)
        let firstDeadline = stored.compactMap { if case .armTimer(.syncDeadline, let at) = $0 { return at } else { return nil } }
        #expect(firstDeadline == [Instant(nanoseconds: 10_000 * 1_000_000)], "armed for the old interval")
        let ini = String(decoding: node.settings.configFile, as: UTF8.self)

        // A shorter interval for topic test: at 2 s the sync is due at once (no waiting for 10 s).
        let shorter = ini + "unflushInterval=1000\n"
        var actions: [BrokerNode.Action] = []
        let outcome = node.reload(.loaded(try ServerConfig(parsing: shorter, path: "test.ini"), file: Array(shorter.utf8),
                                          path: "test.ini"), clock: BrokerNodeTests.clock(2_000), into: &actions)
        #expect(outcome == "reloaded test.ini; topics changed: test")
        #expect(node.stores.log(TopicPartition("test", 0))?.config.flushPolicy.unflushIntervalMs == 1_000)
        #expect(node.configLoadedWallMs == BrokerNodeTests.clock(2_000).wallMs, "the dashboard's lastLoaded")
        #expect(!base.syncs(actions).isEmpty, "the sync the new interval makes due starts at the reload")

        // Group commit instead: refused for the open log until the restart, and said.
        let groupCommit = ini + "unflushThreshold=0\n"
        var refused: [BrokerNode.Action] = []
        let modeOutcome = node.reload(.loaded(try ServerConfig(parsing: groupCommit, path: "test.ini"), file: Array(groupCommit.utf8),
                                              path: "test.ini"), clock: BrokerNodeTests.clock(3_000), into: &refused)
        #expect(modeOutcome == "reloaded test.ini; topics changed: test; not applied, needs a restart: flush mode (group commit or not) of test")
        #expect(node.stores.log(TopicPartition("test", 0))?.config.flushPolicy.isGroupCommit == false)
    }
}
