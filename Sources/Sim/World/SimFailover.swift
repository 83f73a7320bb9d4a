/// Failover worlds (issue 17, docs/SIMULATION.md "Failover worlds"): a replicated world whose
/// master and slaves run with `failover=true`. Each process of the broker id drives the
/// production `BrokerElection` on its own ZooKeeper session (through `ElectionDriver`, the
/// runtime's mapping) and its node is told the decisions; a slave takes over when the leader's
/// session ends and it is in the in-sync set, a deposed master rejoins as a slave. Drawn from a
/// stream of its own (`SimFailover.stream`), only in replicated worlds, so every other world —
/// the pinned seeds among them — runs byte for byte as before.
public struct SimFailover: Sendable, Equatable, CustomStringConvertible {
    /// Faults of the failover set, in events per simulated second of the safety phase (on top
    /// of the replication faults, which crash the configured master and the slaves).
    public var sessionExpiry: Double
    /// A process's ZooKeeper connection drops for 5 ms–2 session timeouts (a partition from
    /// ZooKeeper: it comes back, or hears that its session expired).
    public var sessionDisconnect: Double
    /// Two processes of the set cannot reach each other for 10–1500 ms.
    public var setPartition: Double
    /// The process leading now crashes (restarted 1–300 ms later) or loses power (1–500 ms).
    public var leaderCrash: Double
    public var leaderPowerLoss: Double

    public var total: Double { sessionExpiry + sessionDisconnect + setPartition + leaderCrash + leaderPowerLoss }

    /// The share of replicated worlds that fail over once `enabledByDefault`.
    public static let chance = 0.5
    /// Off until the node bugs the failover sweep still finds are fixed (docs/SIMULATION.md
    /// "Failover worlds"): the default sweeps draw no failover world; `metaq-sim --failover`
    /// (`Simulation(failover: true)`) makes every world one.
    public static let enabledByDefault = false

    public static func stream(seed: UInt64) -> SimRandom { SimRandom(seed: seed ^ 0x3F1A_77D2_5C08_B4E9) }

    /// Nil unless `force` (or, once `enabledByDefault`, for about half the replicated worlds).
    static func draw(_ rng: inout SimRandom, force: Bool) -> SimFailover? {
        let failover = rng.chance(chance)
        func rate(_ p: Double, _ max: Double) -> Double { rng.chance(p) ? rng.unit() * max : 0 }
        let faults = SimFailover(sessionExpiry: rate(0.5, 2), sessionDisconnect: rate(0.5, 3), setPartition: rate(0.5, 3),
                                 leaderCrash: rate(0.5, 2), leaderPowerLoss: rate(0.4, 2))
        return (failover && enabledByDefault) || force ? faults : nil
    }

    public var description: String {
        func f(_ x: Double) -> String { String(Int((x * 10).rounded())) }
        return "failover: sessionExpiry=\(f(sessionExpiry)) sessionDisconnect=\(f(sessionDisconnect)) setPartition=\(f(setPartition)) "
            + "leaderCrash=\(f(leaderCrash)) leaderPowerLoss=\(f(leaderPowerLoss)) (per 10 s)"
    }
}
