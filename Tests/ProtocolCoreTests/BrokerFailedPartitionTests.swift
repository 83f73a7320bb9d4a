import Testing
@testable import ProtocolCore

/// A partition whose log failed a write or sync refuses writes until the broker restarts
/// (DESIGN.md §4); the machine tells every client why and since when, and `stats` lists it
/// (issue 14).
@Suite("Broker machine: failed partitions")
struct BrokerFailedPartitionTests {
    let c1 = ConnectionID(1)
    /// 2026-11-18T11:06:40Z.
    let now: Int64 = 1_795_000_000_000
    let prefix = "Put message to [broker 'meta://127.0.0.1:8123'] [partition 'test-0'] failed.Detail:"
    let cause = "write failed: I/O error on /d/test-0/00000000000000000000.meta: pwrite: No space left on device (ENOSPC)"

    func machine() -> BrokerMachine {
        let settings = BrokerMachine.Settings(
            brokerId: 3, brokerURI: "meta://127.0.0.1:8123", port: 8123, version: "v", maxTransferSize: 1024,
            updateConsumerOffsets: false, topics: TopicRules([.init(pattern: "test", numPartitions: 2)]))
        return BrokerMachine(settings: settings, partitionsWithData: [], idReservationMs: 0, seed: 1)
    }

    func put(_ broker: inout BrokerMachine, partition: Int, opaque: Int, at time: Int64) throws -> [BrokerMachine.Action] {
        let frame = try #require(decodeAll(bytes("put test \(partition) 1 0 -1 \(opaque)\r\nx")).first)
        return broker.handle(.request(c1, frame), nowMs: time)
    }

    func text(_ actions: [BrokerMachine.Action]) -> String? {
        guard actions.count == 1, case .reply(_, let response) = actions[0] else { return nil }
        return "\(response.code) " + String(decoding: response.body, as: UTF8.self)
    }

    @Test func putsCaughtInTheFailureCarryTheCause() throws {
        var broker = machine()
        guard case .append(let token, _, _)? = try put(&broker, partition: 0, opaque: 1, at: now).last else {
            Issue.record("no append")
            return
        }
        _ = broker.handle(.partitionFailed(TopicPartition("test", 0), cause: cause), nowMs: now)
        let answer = broker.handle(.appended(token: token, .failure(.init(cause))), nowMs: now)
        #expect(text(answer) == "500 " + prefix + cause + "; partition test-0 refuses writes until the broker is restarted")
    }

    @Test func laterPutsAreRefusedWithTheTimeAndCause() throws {
        var broker = machine()
        _ = broker.handle(.partitionFailed(TopicPartition("test", 0), cause: cause), nowMs: now)
        // A later report (a sync failing after the write did) does not replace the first cause.
        _ = broker.handle(.partitionFailed(TopicPartition("test", 0), cause: "sync failed: later"), nowMs: now + 5000)
        let refused = try put(&broker, partition: 0, opaque: 2, at: now + 60_000)
        #expect(text(refused) == "500 " + prefix + "partition test-0 refuses writes since 2026-11-18T11:06:40Z ("
                + cause + "); restart the broker after fixing the disk")
        #expect(broker.statsCounters.putFailed == 1 && broker.pendingCount == 0)
        // The other partition of the topic still takes puts.
        guard case .append? = try put(&broker, partition: 1, opaque: 3, at: now).last else {
            Issue.record("partition 1 should append")
            return
        }
    }

    /// A put with partition -1 (direct mode, §1.4.1) goes to a partition that takes writes.
    @Test func randomPartitionAvoidsFailedOnes() throws {
        var broker = machine()
        _ = broker.handle(.partitionFailed(TopicPartition("test", 0), cause: cause), nowMs: now)
        for opaque in 0..<40 {
            guard case .append(_, let target, _)? = try put(&broker, partition: -1, opaque: opaque, at: now).last else {
                Issue.record("a put with partition -1 was not appended")
                return
            }
            #expect(target == TopicPartition("test", 1))
        }
    }

    @Test func statsCountAndListFailedPartitions() throws {
        var broker = machine()
        _ = broker.handle(.partitionFailed(TopicPartition("test", 1), cause: "sync failed: I/O error on /d/test-1: EIO"), nowMs: now)
        _ = broker.handle(.partitionFailed(TopicPartition("test", 0), cause: cause), nowMs: now + 1000)
        let system = try #require(decodeAll(bytes("stats  4\r\n")).first)
        guard case .collectStats(let token, _)? = broker.handle(.request(c1, system), nowMs: now).first else {
            Issue.record("no collectStats")
            return
        }
        let snapshot = StatsSnapshot(pid: 1, uptimeSeconds: 1, threads: 1, currentConnections: 1, configChecksum: 0, isSlave: false)
        let lines = try #require(text(broker.handle(.statsCollected(token: token, snapshot), nowMs: now)))
        #expect(lines.hasSuffix("\r\nconfig_checksum 0\r\nfailed_partitions 2\r\nEND\r\n"))
        let item = try #require(decodeAll(bytes("stats failed_partitions 5\r\n")).first)
        #expect(text(broker.handle(.request(c1, item), nowMs: now)) == "200 STATS\r\n"
                + "test-0 refuses writes since 2026-11-18T11:06:41Z: \(cause)\r\n"
                + "test-1 refuses writes since 2026-11-18T11:06:40Z: sync failed: I/O error on /d/test-1: EIO\r\nEND\r\n")
    }
}
