import BrokerCore
import Glibc
import NIOCore
import ProtocolCore
import StoreCore

/// What the dashboard and `/metrics` read of a running broker: one consistent copy taken on the
/// node's loop (`BrokerServer.observe`). Readers only; no rule of the broker lives here.
public struct BrokerObservation: Sendable {
    /// The `stats` snapshot: every partition log's range, count and bytes, connections, uptime.
    public var snapshot: StatsSnapshot
    /// The machine's counters since start (`cmd_put`, `cmd_get`, … of `stats`).
    public var counters: StatsCounters
    /// Partitions an operator closed, and those refusing writes after a disk error.
    public var closedPartitions: [TopicPartition]
    public var failedPartitions: [TopicPartition]
    /// The configuration the broker runs (topic sections as last loaded).
    public var config: ServerConfig
    /// The server.ini bytes as last loaded, and when (wall-clock ms: start or the last reload).
    public var configFile: [UInt8]
    public var configLoadedWallMs: Int64 = 0
    public var brokerURI: String
    public var version: String
    /// Wall-clock start of the broker (ms since the epoch), and when the observation was taken.
    public var startedWallMs: Int64
    public var takenWallMs: Int64
    /// Where sync cycles spent their time since start.
    public var syncStats: SyncCycleStatsView
    /// Bytes of put bodies received and of get answers sent since start (`metaq_*_bytes_total`).
    public var bytesIn: Int64
    public var bytesOut: Int64
    /// Replication lag per slave and partition (`stats replication` in numbers); empty when this
    /// broker neither follows a master nor has slaves connected.
    public var replicationLag: [ReplicationLag] = []
}

/// A copy of the sync-cycle histograms for readers off the loop.
public struct SyncCycleStatsView: Sendable {
    public var waitForSync: DurationHistogram
    public var handOff: DurationHistogram
    public var fsync: DurationHistogram
    public var handBack: DurationHistogram
    public var answer: DurationHistogram
    public var batch: DurationHistogram
}

extension BrokerServer {
    /// Takes a `BrokerObservation` on the node's loop. The process facts are read here, on the
    /// caller's thread: the node's loop only copies its own state.
    public func observe() -> EventLoopFuture<BrokerObservation> {
        let facts = ProcessFacts(pid: Int(getpid()), threads: Self.threadCount())
        return loop.submit { self.observation(facts) }
    }

    /// On the loop.
    func observation(_ facts: ProcessFacts) -> BrokerObservation {
        let clock = self.clock()
        let s = syncStats
        return BrokerObservation(
            snapshot: node.statsSnapshot(facts, clock: clock),
            counters: node.machine.statsCounters,
            closedPartitions: node.machine.closedPartitions.sorted(),
            failedPartitions: node.machine.failedPartitions.keys.sorted(),
            config: node.config,
            configFile: node.settings.configFile,
            configLoadedWallMs: node.configLoadedWallMs,
            brokerURI: node.settings.brokerURI,
            version: node.settings.version,
            startedWallMs: clock.wallMs - clock.now.milliseconds(since: node.startedAt),
            takenWallMs: clock.wallMs,
            syncStats: SyncCycleStatsView(waitForSync: s.waitForSync, handOff: s.handOff, fsync: s.fsync,
                                          handBack: s.handBack, answer: s.answer, batch: s.batch),
            bytesIn: trafficBytesIn, bytesOut: trafficBytesOut,
            replicationLag: node.replicationLag(clock))
    }
}
