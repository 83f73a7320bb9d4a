import ProtocolCore
import StoreCore

/// Everything one seed decides about a run (DESIGN.md §6, "swarm" testing): the cluster, the
/// workload and how often each fault fires. Drawn from the seed's generator before anything
/// else, so a seed names one world.
public struct SimOptions: Sendable, CustomStringConvertible {
    public enum Flush: Sendable, Equatable, CustomStringConvertible {
        /// `unflushThreshold=0`: a put is answered after the fdatasync that covers it.
        case groupCommit
        /// `unflushThreshold=N`, `unflushInterval=ms`: answered after the write.
        case threshold(count: Int, intervalMs: Int)

        public var description: String {
            switch self {
            case .groupCommit: return "group-commit"
            case .threshold(let n, let ms): return "threshold(\(n), \(ms)ms)"
            }
        }
    }

    /// Fault rates: expected events per simulated second of the safety phase.
    public struct Faults: Sendable, CustomStringConvertible {
        public var powerLossOne: Double
        public var powerLossAll: Double
        public var crash: Double
        public var disconnect: Double
        public var partition: Double
        public var slowDisk: Double
        public var latentError: Double
        public var consumerCrash: Double
        /// A group member process dies (no commit) and restarts later with the same consumer id.
        public var memberCrash: Double = 0
        /// ZooKeeper expires the session of a broker or a member.
        public var zkExpire: Double = 0
        /// A broker's or member's ZooKeeper connection drops and comes back (mostly within the timeout).
        public var zkDisconnect: Double = 0

        public var description: String {
            func f(_ x: Double) -> String { String(Int((x * 10).rounded())) }
            return "powerLoss=\(f(powerLossOne)) powerLossAll=\(f(powerLossAll)) crash=\(f(crash)) "
                + "disconnect=\(f(disconnect)) partition=\(f(partition)) slowDisk=\(f(slowDisk)) "
                + "latent=\(f(latentError)) consumerCrash=\(f(consumerCrash)) memberCrash=\(f(memberCrash)) "
                + "zkExpire=\(f(zkExpire)) zkDisconnect=\(f(zkDisconnect)) (per 10 s)"
        }
    }

    /// Faults of the broker node's own paths, in events per simulated second of the safety phase:
    /// a broker's disk fails a write (EIO), is full (ENOSPC) or fails an fsync; a broker is stopped
    /// gracefully (SIGTERM) and started again; a retention run removes expired segments. Drawn
    /// from a stream of their own, so the worlds the other faults draw stay as they were.
    public struct BrokerFaults: Sendable, CustomStringConvertible {
        public var diskWrite: Double = 0
        public var diskFull: Double = 0
        public var diskSync: Double = 0
        public var gracefulStop: Double = 0
        public var retention: Double = 0

        public init() {}

        public init(drawingFrom rng: inout SimRandom) {
            func rate(_ p: Double, _ max: Double) -> Double { rng.chance(p) ? rng.unit() * max : 0 }
            diskWrite = rate(0.2, 2)
            diskFull = rate(0.15, 2)
            diskSync = rate(0.2, 2)
            gracefulStop = rate(0.3, 2)
            retention = rate(0.3, 4)
        }

        public var total: Double { diskWrite + diskFull + diskSync + gracefulStop + retention }

        public var description: String {
            func f(_ x: Double) -> String { String(Int((x * 10).rounded())) }
            return "diskWrite=\(f(diskWrite)) diskFull=\(f(diskFull)) diskSync=\(f(diskSync)) "
                + "gracefulStop=\(f(gracefulStop)) retention=\(f(retention)) (per 10 s)"
        }
    }

    /// One consumer group of the world (reference §3.4): its members each run a `GroupMember`
    /// with ZooKeeper offsets and one fetcher per owned partition.
    public struct Group: Sendable, Equatable {
        public var members: Int
        /// Subscribed topics (every topic, or one of them).
        public var topics: [String]
        public var strategy: RebalanceStrategy
    }

    /// The ZooKeeper side of the world (§3): drawn from a second stream of the seed, so a world
    /// without groups keeps the options — and the run — it had before ZooKeeper was simulated.
    public struct Cluster: Sendable {
        /// Consumer groups (empty for about half the seeds).
        public var groups: [Group]
        /// Every ZooKeeper session's timeout: an abandoned session (a crashed process) expires after it.
        public var sessionTimeoutMs: Int
        /// A broker whose first start is delayed into the run (§3.5: consumers must pick it up).
        public var lateBroker: (id: Int, atMs: Int)?
        /// `zkSyncTimeMs` of the members: the wait after a claim conflict or failed attempt (§3.4 step 5).
        public var syncTimeMs: Int
        /// `commitOffsetPeriodInMills` of the members (§5.4).
        public var commitIntervalMs: Int
        /// How long the application takes over one delivery.
        public var processingMs: ClosedRange<Int>
    }

    public var brokers: Int
    /// Topic name → partitions; every broker accepts every topic.
    public var topics: [(name: String, partitions: Int)]
    public var maxSegmentSize: Int
    public var flush: Flush
    public var producers: Int
    public var messagesPerProducer: Int
    public var messageSizes: ClosedRange<Int>
    public var produceIntervalMs: ClosedRange<Int>
    /// Producer window: puts in flight per connection.
    public var maxInFlight: Int
    public var fetchSize: Int32
    public var networkDelayMs: ClosedRange<Int>
    public var syncLatencyMs: ClosedRange<Int>
    public var safetyPhaseMs: Int
    public var faults: Faults
    /// Broker disk faults, graceful stops and retention runs (set by `Simulation` from its own stream).
    public var brokerFaults = BrokerFaults()
    public var cluster: Cluster
    /// The canary: acknowledge group-commit puts after the write instead of after the sync.
    public var canaryAckBeforeSync: Bool
    /// The groups' application fails (retries, hand-offs, recover stores); nil: it never fails.
    /// Set by `Simulation` from its own stream of the seed (`SimHandlers.stream`).
    public var handlers: SimHandlers?
    /// Ordered producers (§5.6); nil: none. Set by `Simulation` from its own stream (`SimOrdered.stream`).
    public var ordered: SimOrdered?
    /// Routed producers (§3.3); nil: none. Set by `Simulation` from its own stream (`SimRouted.stream`).
    public var routed: SimRouted?
    /// Groups whose handlers ack by hand; nil: none. Set by `Simulation` from its own stream (`SimManualAck.stream`).
    public var manualAck: SimManualAck?
    /// ZooKeeper faults, `publish(topic)` waits and shutdowns of the routed producers; nil: none.
    /// Set by `Simulation` from its own stream (`SimRoutedFaults.stream`).
    public var routedFaults: SimRoutedFaults?
    /// Transactional producers and transaction managers (`SimTransactions`), from their own stream.
    public var transactions: SimTransactions?
    /// The spool canary: an ordered producer's spool write is reported written but dropped.
    public var canaryDropSpooled = false
    /// Slaves of one broker (`SimReplication`); nil: none. Set by `Simulation` from its own stream.
    public var replication: SimReplication?

    /// Draws a world from `rng`, its cluster side (groups, ZooKeeper faults) from `clusterRng`.
    public init(drawingFrom rng: inout SimRandom, cluster clusterRng: inout SimRandom, canary: Bool = false) {
        brokers = rng.int(in: 1...3)
        let topicCount = rng.int(in: 1...2)
        topics = (0..<topicCount).map { ("t\($0)", rng.int(in: 1...3)) }
        maxSegmentSize = rng.pick([512, 1024, 2048, 8192])
        flush = rng.chance(0.6) ? .groupCommit : .threshold(count: rng.int(in: 1...20), intervalMs: rng.int(in: 5...200))
        producers = rng.int(in: 1...4)
        messagesPerProducer = rng.int(in: 10...60)
        let largest = rng.pick([16, 100, 400])
        messageSizes = 12...largest
        let gap = rng.int(in: 1...20)
        produceIntervalMs = 0...gap
        maxInFlight = rng.int(in: 1...16)
        fetchSize = Int32(rng.pick([64, 256, 1024, 8192]))
        networkDelayMs = 0...rng.int(in: 0...5)
        syncLatencyMs = 0...rng.int(in: 1...8)
        safetyPhaseMs = rng.int(in: 500...3000)
        func rate(_ p: Double, _ max: Double) -> Double { rng.chance(p) ? rng.unit() * max : 0 }
        faults = Faults(powerLossOne: rate(0.5, 4), powerLossAll: rate(0.25, 2), crash: rate(0.4, 4),
                        disconnect: rate(0.5, 10), partition: rate(0.3, 4), slowDisk: rate(0.3, 4),
                        latentError: rate(0.15, 2), consumerCrash: rate(0.3, 4))
        canaryAckBeforeSync = canary
        cluster = Self.drawCluster(&clusterRng, brokers: brokers, topics: topics.map(\.name), faults: &faults)
    }

    private static func drawCluster(_ rng: inout SimRandom, brokers: Int, topics: [String], faults: inout Faults) -> Cluster {
        var cluster = Cluster(groups: [], sessionTimeoutMs: rng.int(in: 100...800), lateBroker: nil,
                              syncTimeMs: rng.int(in: 20...300), commitIntervalMs: rng.int(in: 50...1000),
                              processingMs: 0...rng.int(in: 0...5))
        guard rng.chance(0.25) else { return cluster }
        cluster.groups = (0..<rng.int(in: 1...2)).map { _ in
            Group(members: rng.int(in: 1...4),
                  topics: topics.count > 1 && rng.chance(0.3) ? [rng.pick(topics)] : topics,
                  strategy: rng.chance(0.15) ? .consistentHash : .default)
        }
        if brokers > 1 && rng.chance(0.3) { cluster.lateBroker = (rng.int(in: 0..<brokers), rng.int(in: 50...1500)) }
        func rate(_ p: Double, _ max: Double) -> Double { rng.chance(p) ? rng.unit() * max : 0 }
        faults.memberCrash = rate(0.5, 4)
        faults.zkExpire = rate(0.4, 3)
        faults.zkDisconnect = rate(0.4, 4)
        return cluster
    }

    /// The `server.ini` of broker `id` in this world (MetaQ's format, §8), parsed by the same
    /// code as a real broker's.
    public func serverIni(brokerId: Int) -> String {
        var lines = ["[system]", "brokerId=\(brokerId)", "numPartitions=1", "dataPath=/broker\(brokerId)",
                     "maxSegmentSize=\(maxSegmentSize)", "maxTransferSize=65536"]
        if let interval = transactions?.checkpointIntervalMs { lines.append("checkpointInterval=\(interval)") }
        switch flush {
        case .groupCommit: lines += ["unflushThreshold=0", "unflushInterval=10000"]
        case .threshold(let n, let ms): lines += ["unflushThreshold=\(n)", "unflushInterval=\(ms)"]
        }
        for topic in topics { lines += ["", "[topic=\(topic.name)]", "numPartitions=\(topic.partitions)"] }
        return lines.joined(separator: "\n") + "\n"
    }

    public var description: String {
        let topicText = topics.map { "\($0.name):\($0.partitions)" }.joined(separator: ",")
        return "brokers=\(brokers) topics=\(topicText) segment=\(maxSegmentSize) flush=\(flush) "
            + "producers=\(producers)x\(messagesPerProducer) sizes=\(messageSizes.lowerBound)-\(messageSizes.upperBound) "
            + "gap=\(produceIntervalMs.upperBound)ms window=\(maxInFlight) fetch=\(fetchSize) "
            + "net=\(networkDelayMs.upperBound)ms sync=\(syncLatencyMs.upperBound)ms safety=\(safetyPhaseMs)ms"
            + (canaryAckBeforeSync ? " CANARY(ack-before-sync)" : "")
            + "\n  cluster: zk-session-timeout=\(cluster.sessionTimeoutMs)ms" + clusterDescription
            + "\n  faults: \(faults)"
            + "\n  broker faults: \(brokerFaults)"
            + (handlers.map { "\n  \($0)" } ?? "")
            + (ordered.map { "\n  \($0)" } ?? "") + (canaryDropSpooled ? " CANARY(drop-spooled)" : "")
            + (routed.map { "\n  \($0)" } ?? "") + (routedFaults.map { "\n  \($0)" } ?? "")
            + (manualAck.map { "\n  \($0)" } ?? "") + (transactions.map { "\n  \($0)" } ?? "")
            + (replication.map { "\n  \($0)" } ?? "")
    }

    private var clusterDescription: String {
        var text = ""
        if let late = cluster.lateBroker { text += " late-broker=broker\(late.id)@\(late.atMs)ms" }
        guard !cluster.groups.isEmpty else { return text + " groups=none" }
        let groups = cluster.groups.enumerated().map { g, group in
            "g\(g):\(group.members)x[\(group.topics.joined(separator: ","))]\(group.strategy == .consistentHash ? "/hash" : "")"
        }
        return text + " groups=\(groups.joined(separator: " ")) sync=\(cluster.syncTimeMs)ms "
            + "commit=\(cluster.commitIntervalMs)ms processing=\(cluster.processingMs.upperBound)ms"
    }
}
