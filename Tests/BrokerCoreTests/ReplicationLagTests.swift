import BrokerCore
import ProtocolCore
import Testing

/// `BrokerNode.replicationLag` (issue 19's `metaq_replication_lag_*`) says in numbers exactly
/// what `stats replication` says in text (reference §6.1, §9), on the slave and on the master,
/// while the slave catches up and once it has.
@Suite("Broker node: replication lag for /metrics")
struct ReplicationLagTests {
    /// The `… part N … lag_bytes B lag_ms M` lines of `stats replication`, in the rows' terms.
    static func rowsInStats(_ lines: [String]) -> [String] {
        lines.filter { $0.contains(" lag_bytes ") }.map { line in
            let words = line.split(separator: " ").map(String.init)
            let topicAt = words.first == "slave" ? 2 : 0
            let bytes = words[words.firstIndex(of: "lag_bytes")! + 1]
            let ms = words[words.firstIndex(of: "lag_ms")! + 1]
            return "\(words[topicAt])-\(words[topicAt + 2]) \(bytes) \(ms)"
        }
    }

    static func rows(_ lag: [ReplicationLag]) -> [String] {
        lag.map { "\($0.partition.topic)-\($0.partition.partition) \($0.lagBytes) \($0.lagMs.map(String.init) ?? "unknown")" }
    }

    @Test func theRowsMatchStatsReplicationWhileTheSlaveCatchesUpAndAfter() throws {
        let pair = try ReplicatedPair()
        for i in 0..<30 { pair.put("message \(i) " + String(repeating: "y", count: i * 5), partition: Int32(i % 2), opaque: Int32(i)) }
        pair.pump()
        #expect(pair.master.replicationLag(ReplicatedPair.clock(pair.nowMs)).isEmpty, "no slave connected yet")
        pair.handle(master: false, .masterAddress("meta://master:8123"))
        for _ in 0..<300 {
            pair.advance(10)
            let clock = ReplicatedPair.clock(pair.nowMs)
            let slaveLag = pair.slave.replicationLag(clock)
            #expect(slaveLag.allSatisfy { $0.role == .slave && $0.slaveId == 1 && $0.lagBytes >= 0 })
            #expect(Self.rows(slaveLag) == Self.rowsInStats(pair.stats(pair.slave)))
            let masterLag = pair.master.replicationLag(clock)
            #expect(masterLag.allSatisfy { $0.role == .master && $0.slaveId == 1 })
            #expect(Self.rows(masterLag) == Self.rowsInStats(pair.stats(pair.master)))
        }
        let clock = ReplicatedPair.clock(pair.nowMs)
        let caughtUp = pair.slave.replicationLag(clock)
        #expect(caughtUp.map(\.partition) == [TopicPartition("test", 0), TopicPartition("test", 1)])
        #expect(caughtUp.allSatisfy { $0.lagBytes == 0 && $0.lagMs == 0 }, "\(caughtUp)")
        #expect(!pair.master.replicationLag(clock).isEmpty)

        // A put the slave copies but cannot make durable (its syncs wait): the master counts its
        // bytes as the slave's lag, as `stats replication` does.
        pair.slaveSyncs = false
        pair.put("one more", partition: 0, opaque: 500)
        pair.advance(100)
        let behind = pair.master.replicationLag(ReplicatedPair.clock(pair.nowMs))
        #expect(behind.first { $0.partition == TopicPartition("test", 0) }.map { $0.lagBytes > 0 } == true, "\(behind)")
        #expect(Self.rows(behind) == Self.rowsInStats(pair.stats(pair.master)))
        pair.slaveSyncs = true
        pair.advance(1500)
        #expect(pair.master.replicationLag(ReplicatedPair.clock(pair.nowMs)).allSatisfy { $0.lagBytes == 0 })
    }
}
