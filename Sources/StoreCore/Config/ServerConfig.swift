// The broker configuration of MetaQ's server.ini (reference §8), typed. Parsing lives in
// ServerConfig+Parsing.swift; effective per-topic values in TopicConfig.swift.
//
// Pure like the rest of StoreCore: the parser takes the file's text, never a file. Values that
// depend on the machine (home directory, CPU count, host address, the config file's directory) are
// nil here and filled in by the runtime.

import ProtocolCore

/// Everything `server.ini` configures: `[system]` (§8.1), `[zookeeper]` (§8.2) and the
/// `[topic=<name>]` sections (§8.3). Defaults are MetaQ's.
///
/// Swift property names carry their unit (`checkpointIntervalMs`); each property's documentation
/// names the key it comes from.
public struct ServerConfig: Equatable, Sendable {
    /// `brokerId`, required, 0...1023 (it is also the message-id worker id, §2.1).
    public var brokerId: Int
    /// `hostName`; nil: the runtime publishes the first non-loopback address.
    public var hostName: String?
    /// `serverPort`, 8123.
    public var serverPort: Int
    /// `dashboardHttpPort`, 8120; 0 turns the dashboard off (ours, docs/DASHBOARD.md).
    public var dashboardHttpPort: Int
    /// `dataPath`; nil means MetaQ's `${user.home}/meta`, which the runtime resolves (the parser
    /// cannot know the home directory).
    public var dataPath: String?
    /// `dataLogPath`, the transaction journal's parent directory; nil means "same as dataPath".
    public var dataLogPath: String?
    /// `appClassPath` (server-side filter classes); nil means `<config dir>/../provided/` if that
    /// directory exists, which the runtime checks.
    public var appClassPath: String?
    /// `numPartitions`, the partition count of topics that do not set their own (MetaQ default 1);
    /// at least 1 (MetaQ accepts 0, and then every put fails).
    public var numPartitions: Int
    /// `unflushThreshold` and `unflushInterval` (§2.4): MetaQ's 1000 and 10000 ms.
    public var flushPolicy: FlushPolicy
    /// `maxSegmentSize`, 1 GiB; a Java int in MetaQ, so at most 2^31-1, and at least a record
    /// header's 20 bytes (MetaQ accepts less).
    public var maxSegmentSize: Int64
    /// `maxTransferSize`, 1 MiB: the cap of one get response.
    public var maxTransferSize: Int
    /// `getProcessThreadCount`; nil means MetaQ's 10 × CPUs, which the runtime computes.
    public var getProcessThreadCount: Int?
    /// `putProcessThreadCount`; nil means 10 × CPUs.
    public var putProcessThreadCount: Int?
    /// `deletePolicy`, `delete,168` (§2.7).
    public var deletePolicy: DeletePolicy
    /// `deleteWhen`, `0 0 6,18 * * ?` (§2.7).
    public var deleteWhen: CronExpression
    /// `quartzThreadCount`, 5.
    public var quartzThreadCount: Int
    /// `maxCheckpoints`, 3 (§4.4).
    public var maxCheckpoints: Int
    /// `checkpointInterval`, 3600000 ms.
    public var checkpointIntervalMs: Int64
    /// `maxTxTimeoutTimerCapacity`, 30000.
    public var maxTxTimeoutTimerCapacity: Int
    /// `flushTxLogAtCommit`, 1 (§4.3).
    public var flushTxLogAtCommit: TransactionLogFlush
    /// `maxTxTimeoutInSeconds`, 60.
    public var maxTxTimeoutSeconds: Int
    /// `acceptPublish`, true: whether the broker registers `topics-pub` nodes (topics may override).
    public var acceptPublish: Bool
    /// `acceptSubscribe`, true: whether the broker registers `topics-sub` nodes (topics may override).
    public var acceptSubscribe: Bool
    /// `stat`, false: realtime statistics per topic (topics may override).
    public var stat: Bool
    /// `updateConsumerOffsets`, false: a get past the max offset answers 301 instead of 404.
    public var updateConsumerOffsets: Bool
    /// `loadMessageStoresInParallel`, false.
    public var loadMessageStoresInParallel: Bool
    /// `maxAutoCreatedPartitions`, 1024 (ours; MetaQ has no such bound): how many partitions of
    /// topics without an exact `[topic=<name>]` section may exist — created by puts through a
    /// wildcard section, or found on disk at start. A put that would create one more is refused.
    public var maxAutoCreatedPartitions: Int
    /// `maxConnections`, 10000 (ours; MetaQ sets no limit): a connection beyond it is accepted and
    /// closed at once, so the broker keeps descriptors and memory for the ones it serves.
    public var maxConnections: Int
    /// `maxPartialFrameBytes`, 64 MiB (ours): what all connections together may hold of frames
    /// whose body has not fully arrived. A connection that would go beyond it is not read until
    /// others finish their frames. At least the largest frame body, so every frame can complete.
    public var maxPartialFrameBytes: Int
    /// `partialFrameTimeoutMs`, 30000 (ours): a connection holding part of a frame that sends no
    /// byte for this long is closed. A connection between frames is never closed: MetaQ's server
    /// has no idle timeout, and its clients heartbeat with `version` (§1.4.4).
    public var partialFrameTimeoutMs: Int64
    /// `syncThreads`, 8 (ours): threads per data directory that run syncs (`fdatasync`). A
    /// partition has at most one sync in flight; syncs of different partitions overlap up to this
    /// many at once (ext4 commits overlapping syncs together).
    public var syncThreads: Int
    /// `ioThreads`, `auto` (ours): event loops that serve client connections (read, decode,
    /// write), beside the one that runs the broker node; 0 serves connections on the node's loop.
    /// nil is `auto`: 1 on a machine with 4 or more CPUs, else 0 (``ioThreads(cpus:)``).
    public var ioThreads: Int?

    /// The connection loops to run on a machine with `cpus` CPUs. On 2 vCPUs shared with the
    /// sync threads (and, in the benchmarks, the load generator) a second loop measured slower
    /// than one: its hand-offs add latency and no idle core takes them (docs/PERFORMANCE.md).
    public func ioThreads(cpus: Int) -> Int { ioThreads ?? (cpus >= 4 ? 1 : 0) }
    /// `maxQueuedRequestBytes`, 64 MiB (ours): per connection loop, the requests (bodies plus 64
    /// bytes each) handed to the broker node and not yet handled there; beyond it the loop stops
    /// reading its connections until the node has caught up to half of it.
    public var maxQueuedRequestBytes: Int
    /// `listenBacklog`, 1024 (ours): connections the kernel queues before the broker accepts them
    /// (capped by the kernel's `net.core.somaxconn`).
    public var listenBacklog: Int
    /// The `[zookeeper]` section.
    public var zooKeeper: ZooKeeperConfig
    /// The `[replication]` section (issue 17), or what `start --slave <file>` read.
    public var replication: ReplicationConfig
    /// `[http]`: the HTTP message API (§7.1); off unless `enableHttp=true`.
    public var http = HTTPConfig()
    /// The `[topic=<name>]` sections in file order (each topic once: a repeated header is refused).
    /// Resolve a topic's effective settings with ``topicConfig(for:)``.
    public var topics: [TopicSection]

    /// A configuration with MetaQ's defaults everywhere and no topics.
    public init(brokerId: Int) {
        self.brokerId = brokerId
        hostName = nil
        serverPort = 8123
        dashboardHttpPort = 8120
        dataPath = nil
        dataLogPath = nil
        appClassPath = nil
        numPartitions = 1
        flushPolicy = .metaqDefault
        maxSegmentSize = 1 << 30
        maxTransferSize = 1 << 20
        getProcessThreadCount = nil
        putProcessThreadCount = nil
        deletePolicy = .metaqDefault
        deleteWhen = .metaqDefault
        quartzThreadCount = 5
        maxCheckpoints = 3
        checkpointIntervalMs = 3_600_000
        maxTxTimeoutTimerCapacity = 30_000
        flushTxLogAtCommit = .everyCommit
        maxTxTimeoutSeconds = 60
        acceptPublish = true
        acceptSubscribe = true
        stat = false
        updateConsumerOffsets = false
        loadMessageStoresInParallel = false
        maxAutoCreatedPartitions = BrokerMachine.Settings.defaultMaxAutoCreatedPartitions
        maxConnections = 10_000
        maxPartialFrameBytes = 64 << 20
        partialFrameTimeoutMs = 30_000
        listenBacklog = 1024
        syncThreads = 8
        ioThreads = nil
        maxQueuedRequestBytes = 64 << 20
        zooKeeper = ZooKeeperConfig()
        replication = ReplicationConfig()
        topics = []
    }
}

/// `flushTxLogAtCommit` (reference §4.3): when the transaction journal is synced.
public enum TransactionLogFlush: Int, Equatable, Sendable {
    /// 0: the operating system decides.
    case operatingSystem = 0
    /// 1: on every commit (MetaQ's default).
    case everyCommit = 1
    /// 2: once a second.
    case everySecond = 2
}

/// The `[zookeeper]` section (reference §8.2), with MetaQ's defaults.
///
/// The parser does not require ``connect``: MetaQ refuses to start without it, but `start --local`
/// needs no ZooKeeper, so whether it is needed (enabled and not local) is the runtime's decision.
/// `[http]` of server.ini: MetaQ's HTTP message API (reference §7.1), which the original ran as a
/// Jetty plugin enabled by `enableHttp=true` in `bin/env.sh`, on `serverPort` of
/// `conf/jettyBroker.properties` (8080). Here both keys live in one section; off by default, as there.
public struct HTTPConfig: Equatable, Sendable {
    public var isEnabled = false
    /// `serverPort`, 8080 as in `jettyBroker.properties`.
    public var port = 8080

    public init(isEnabled: Bool = false, port: Int = 8080) {
        self.isEnabled = isEnabled
        self.port = port
    }
}

public struct ZooKeeperConfig: Equatable, Sendable {
    /// `zk.zkConnect`, the server list (`host:port,host:port`); nil when not set.
    public var connect: String?
    /// `zk.zkSessionTimeoutMs`, 30000.
    public var sessionTimeoutMs: Int
    /// `zk.zkConnectionTimeoutMs`, 30000.
    public var connectionTimeoutMs: Int
    /// `zk.zkSyncTimeMs`, 5000: the wait after unregistering and between rebalance retries.
    public var syncTimeMs: Int
    /// `zk.zkEnable`, true.
    public var isEnabled: Bool
    /// `zk.zkRoot`, `/meta`.
    public var root: String

    public init(connect: String? = nil, sessionTimeoutMs: Int = 30_000, connectionTimeoutMs: Int = 30_000,
                syncTimeMs: Int = 5000, isEnabled: Bool = true, root: String = "/meta") {
        self.connect = connect
        self.sessionTimeoutMs = sessionTimeoutMs
        self.connectionTimeoutMs = connectionTimeoutMs
        self.syncTimeMs = syncTimeMs
        self.isEnabled = isEnabled
        self.root = root
    }
}

/// One `[topic=<name>]` section as written: only the keys it sets (reference §8.3). A nil field
/// means "use the `[system]` value".
public struct TopicSection: Equatable, Sendable {
    /// The topic, or a pattern where `*` stands for any run of characters.
    public var name: String
    /// The line of the section header.
    public var line: Int
    public var numPartitions: Int?
    public var unflushThreshold: Int?
    public var unflushIntervalMs: Int64?
    public var dataPath: String?
    public var deletePolicy: DeletePolicy?
    public var deleteWhen: CronExpression?
    public var acceptPublish: Bool?
    public var acceptSubscribe: Bool?
    public var stat: Bool?
    /// `group.<group>=<filter>` entries in file order (§5.7).
    public var groupFilters: [GroupFilter]

    public init(name: String, line: Int) {
        self.name = name
        self.line = line
        groupFilters = []
    }

    /// Whether the name contains `*` and so stands for many topics.
    public var isPattern: Bool { name.contains("*") }
}

/// A server-side message filter for one consumer group of a topic: `group.<group>=<filter>`
/// (§5.7), parsed once when the config is read.
public struct GroupFilter: Equatable, Sendable {
    public var group: String
    public var filter: AttributeFilter

    public init(group: String, filter: AttributeFilter) {
        self.group = group
        self.filter = filter
    }
}

extension CronExpression {
    /// MetaQ's default `deleteWhen`: 06:00 and 18:00 every day.
    public static let metaqDefault = try! CronExpression(parsing: "0 0 6,18 * * ?")
}
