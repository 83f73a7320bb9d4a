import Foundation
import ProcessHarness
import ProtocolCore
import Runtime
import Testing

/// The admin verbs where ZooKeeper matters (issue 19; reference §3.1, §8.4): a reload that
/// changes a topic's partition count re-registers it, and `metaq offsets --zk` reads a group's
/// stored offsets from the original's znodes.
@Suite("metaq-server admin verbs in cluster mode", .serialized)
struct AdminVerbsClusterTests {
    @Test func reloadReRegistersAChangedTopicAndOffsetsReadsZooKeeper() async throws {
        let zk = try ZooKeeperServer()
        try zk.start()
        defer { zk.stop() }
        let base = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-admin-zk")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let broker = try ClusterTests.startBrokers(1, zk: zk, base: base)[0]
        defer { _ = broker.stop() }
        let session = try await ClusterTests.observer(zk)
        defer { session.close() }
        let pub = "/meta/brokers/topics-pub/test/0-m"
        #expect(await ClusterTests.eventually(15) { await ClusterTests.text(session, pub) == #"{"numParts":3,"broker":"0-m"}"# })

        let ini = broker.directory + "/server.ini"
        try (ClusterTests.config(brokerId: 0, zk: zk.connectString) + "\nnumPartitions=5\n").write(toFile: ini, atomically: true,
                                                                                                    encoding: .utf8)
        let reloaded = try ChildProcess.run(BrokerProcess.binary, ["reload", "-f", ini, "--port", "\(broker.port)"], error: .standardOutput)
        let text = String(decoding: reloaded.output, as: UTF8.self)
        #expect(reloaded.status == 0 && text.contains("topics changed: test"), "\(text)")
        #expect(await ClusterTests.eventually(15) { await ClusterTests.text(session, pub) == #"{"numParts":5,"broker":"0-m"}"# },
                "re-registered with the new partition count")
        #expect(await ClusterTests.text(session, "/meta/brokers/topics/test/0-m") == "5")
        #expect(broker.logLines(containing: "another broker holds this broker id").isEmpty)

        // A group's offsets as a Java consumer stores them (`<msgId>-<offset>`, or a plain offset).
        for (name, value) in [("0-0", "-5468932283484340224-126"), ("0-2", "40"), ("1-0", "garbage")] {
            let path = "/meta/consumers/g1/offsets/test/" + name
            for ancestor in MetaZooKeeperLayout.ancestors(of: path) + [path] {
                _ = await session.perform(.create(path: ancestor, data: ancestor == path ? Array(value.utf8) : nil, mode: .persistent))
            }
        }
        let shown = try BrokerProcess.tool(["offsets", "--group", "g1", "--topic", "test", "--zk", zk.connectString,
                                            "--server", "meta://127.0.0.1:\(broker.port)"])
        #expect(shown.status == 0, "\(shown.output)")
        #expect(shown.output == "0-0 126\n0-2 40\n1-0 unreadable: garbage\n", "\(shown.output)")
    }
}
