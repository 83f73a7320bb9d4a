/// Replicated worlds (issue 17, reference §6): one broker of the world gets one or two slaves —
/// separate broker processes (`SimBroker` in the slave role, each on its own `SimDisk`) running
/// the same `BrokerNode` with `[replication]` set as a slave of that master's URI. Half of these
/// worlds replicate synchronously. Drawn from a stream of its own (`SimReplication.stream`), so
/// worlds without slaves draw nothing new from the other streams and run byte for byte as before.
public struct SimReplication: Sendable, Equatable, CustomStringConvertible {
    /// Faults of the replicated set, in events per simulated second of the safety phase.
    public struct Faults: Sendable, Equatable, CustomStringConvertible {
        public var slaveCrash: Double
        public var slavePowerLoss: Double
        /// On top of the world's own broker faults, which hit the master like any broker.
        public var masterCrash: Double
        public var masterPowerLoss: Double
        /// The network between the master and one slave stalls for 10–800 ms.
        public var linkPartition: Double
        /// A slave's syncs take 20–200 ms longer for 50–1000 ms.
        public var slowSlaveDisk: Double

        public var total: Double { slaveCrash + slavePowerLoss + masterCrash + masterPowerLoss + linkPartition + slowSlaveDisk }

        public var description: String {
            func f(_ x: Double) -> String { String(Int((x * 10).rounded())) }
            return "slaveCrash=\(f(slaveCrash)) slavePowerLoss=\(f(slavePowerLoss)) masterCrash=\(f(masterCrash)) "
                + "masterPowerLoss=\(f(masterPowerLoss)) linkPartition=\(f(linkPartition)) slowSlaveDisk=\(f(slowSlaveDisk)) (per 10 s)"
        }
    }

    /// The broker (index) that has slaves.
    public var master: Int
    /// Its slaves (1 or 2), slave ids 1… .
    public var slaves: Int
    /// `synchronous`: a put is answered once `minInSyncReplicas` copies hold it.
    public var synchronous: Bool
    public var minInSyncReplicas: Int
    public var maxLagMs: Int64
    public var fetchHoldMs: Int64
    /// The slaves' `slaveMaxDelayInMills`.
    public var slaveMaxDelayMs: Int64
    public var faults: Faults
    /// When the master's disk is destroyed (every file gone, the process stopped for good); nil:
    /// it never is.
    public var destroyMasterAtMs: Int?
    /// Set: a failover world (SimFailover) — the slaves take over, the master rejoins.
    public var failover: SimFailover? = nil

    /// Whether the checkers hold every acknowledged message to be on a slave's disk: a
    /// synchronous master that answers only with a slave in sync.
    public var promisesCopies: Bool { synchronous && minInSyncReplicas >= 2 }

    /// The broker id whose processes fail over (nil: no failover world).
    public var failoverBrokerId: Int? { failover != nil ? master : nil }

    /// The constant keeps every seed pinned in SimTests (0, 2, 7, 14, 97, 136, 137, 185, 290, 304,
    /// 316, 12345, 2^40) free of slaves, so their scenarios still run byte for byte as pinned.
    public static func stream(seed: UInt64) -> SimRandom { SimRandom(seed: seed ^ 0x9617_C9C8_202C_A3A2) }

    /// Nil for about seven worlds in ten. Every value is drawn whether or not the world is
    /// replicated, so `force` (the replication canary: a synchronous world whose master's disk is
    /// destroyed) keeps the world of a seed that draws one by itself exactly as it is.
    /// `forceReplicated` (failover worlds asked for) makes a world replicated without changing
    /// what it draws.
    static func draw(_ rng: inout SimRandom, brokers: Int, safetyPhaseMs: Int, force: Bool,
                     forceReplicated: Bool = false) -> SimReplication? {
        let replicated = rng.chance(0.3)
        let master = rng.int(in: 0..<brokers)
        let slaves = rng.chance(0.35) ? 2 : 1
        let synchronous = rng.chance(0.5)
        let minInSync = rng.chance(0.2) ? 1 : 2
        let maxLagMs = Int64(rng.pick([50, 200, 1000, 10_000]))
        let fetchHoldMs = Int64(rng.pick([0, 20, 200, 500]))
        let slaveMaxDelayMs = Int64(rng.pick([20, 100, 500]))
        func rate(_ p: Double, _ max: Double) -> Double { rng.chance(p) ? rng.unit() * max : 0 }
        let faults = Faults(slaveCrash: rate(0.5, 4), slavePowerLoss: rate(0.5, 4), masterCrash: rate(0.3, 3),
                            masterPowerLoss: rate(0.3, 3), linkPartition: rate(0.5, 6), slowSlaveDisk: rate(0.4, 4))
        let destroy = rng.chance(0.4)
        // While the producers still send (most send for well under a second).
        let destroyAt = rng.int(in: 20...max(20, min(safetyPhaseMs - 1, 800)))
        guard replicated || force || forceReplicated else { return nil }
        // A synchronous master that does not hold fetches hears of its slaves only as often as
        // they poll (up to `slaveMaxDelayInMills` apart at the end): with a shorter `maxLagMs`
        // every put drops them from the in-sync set, and the put is refused (seed 13489: a
        // producer retrying for ever). Not a setting the worlds study.
        let lagMs = (synchronous || force) && fetchHoldMs == 0 ? max(maxLagMs, 2 * slaveMaxDelayMs) : maxLagMs
        return SimReplication(master: master, slaves: slaves, synchronous: synchronous || force,
                              minInSyncReplicas: force ? 2 : minInSync, maxLagMs: lagMs, fetchHoldMs: fetchHoldMs,
                              slaveMaxDelayMs: slaveMaxDelayMs, faults: faults,
                              destroyMasterAtMs: destroy || force ? destroyAt : nil)
    }

    public var description: String {
        let mode = synchronous ? "synchronous(minInSyncReplicas=\(minInSyncReplicas))" : "asynchronous"
        return "replication: broker\(master) with \(slaves) slave(s) \(mode) maxLag=\(maxLagMs)ms fetchHold=\(fetchHoldMs)ms "
            + "slaveMaxDelay=\(slaveMaxDelayMs)ms" + (destroyMasterAtMs.map { " master-disk-destroyed@\($0)ms" } ?? "")
            + "\n  replication faults: \(faults)" + (failover.map { "\n  \($0)" } ?? "")
    }
}

extension SimOptions {
    /// A world whose replicated master loses its disk keeps only its plain producers and
    /// consumers: without failover (not simulated yet) the broker id is gone for good, and groups,
    /// ordered lanes, routed producers and transactions would wait for it for ever.
    mutating func keepOnlyPlainClients() {
        cluster.groups = []
        cluster.lateBroker = nil
        faults.memberCrash = 0
        faults.zkExpire = 0
        faults.zkDisconnect = 0
        handlers = nil
        manualAck = nil
        ordered = nil
        routed = nil
        routedFaults = nil
        transactions = nil
    }
}
