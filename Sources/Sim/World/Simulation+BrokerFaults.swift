import BrokerCore
import ProtocolCore
import StoreCore

/// Faults of the broker node's own paths (docs/SIMULATION.md, "Broker disk faults"): a broker's
/// disk fails its next write (EIO), finds itself full (ENOSPC) or fails its next fsync; a broker
/// is stopped gracefully and started again; a retention run removes expired segments. Their
/// schedule and every choice come from `brokerFaultRng`, so a world without them runs as before.
///
/// The checkers: the node's invariants after every event (no put waits on a failed log or
/// without a sync to come, a failed log never acknowledges, a graceful stop leaves nothing
/// unanswered); the world's (nothing acknowledged lost beyond what the flush policy and
/// retention allow, every acknowledged message delivered); and liveness — a failed log refuses
/// writes until its broker restarts, so the healthy core restarts it.
extension Simulation {
    func scheduleNextBrokerFault() {
        let rate = options.brokerFaults.total
        guard rate > 0 else { return }
        let meanNs = 1e9 / rate
        schedule(.brokerFault, afterNs: Int64(brokerFaultRng.unit() * 2 * meanNs) + 1)
    }

    func injectBrokerFault() {
        let f = options.brokerFaults
        var pick = brokerFaultRng.unit() * f.total
        func take(_ rate: Double) -> Bool {
            if pick < rate { return true }
            pick -= rate
            return false
        }
        let up = brokers.filter(\.isUp).map(\.id)
        guard !up.isEmpty else { return }
        let b = brokerFaultRng.pick(up)
        let broker = brokers[b]
        if take(f.diskWrite) {
            broker.disk.failNextWrite = ("pwrite: Input/output error (EIO)", brokerFaultRng.int(in: 0...600))
            counters.diskWriteErrors += 1
            trace(.brokerFault, 1, Int64(b), "FAULT broker\(b)'s disk fails its next write (EIO)")
        } else if take(f.diskFull) {
            broker.disk.failNextWrite = ("pwrite: No space left on device (ENOSPC)", brokerFaultRng.int(in: 0...600))
            counters.diskFullErrors += 1
            trace(.brokerFault, 2, Int64(b), "FAULT broker\(b)'s disk is full at its next write (ENOSPC)")
        } else if take(f.diskSync) {
            broker.disk.failNextSync = true
            counters.diskSyncErrors += 1
            trace(.brokerFault, 3, Int64(b), "FAULT broker\(b)'s disk fails its next fsync (EIO)")
        } else if take(f.gracefulStop) {
            counters.gracefulStopsRequested += 1
            trace(.brokerFault, 4, Int64(b), "FAULT broker\(b) is stopped gracefully (SIGTERM)")
            broker.requestStop()
        } else {
            // Ages judged as if up to two retention periods had passed: some seeds remove every
            // sealed, synced segment, others only the oldest.
            // (A size policy's age is unbounded: its run judges sizes, not the time.)
            let maxAgeMs = min(broker.config.deletePolicy.maxAgeMs, Int64.max / 4)
            let asOf = wallMs &+ maxAgeMs - Int64(brokerFaultRng.int(in: 0...2000))
            counters.retentionRuns += 1
            trace(.brokerFault, 5, Int64(b), "FAULT retention run on broker\(b)")
            broker.runRetention(asOfWallMs: asOf)
        }
    }

    /// A partition log of `broker` failed: the operator restarts the broker after a while (or
    /// not before the liveness phase, which restarts it in any case).
    func brokerLogFailed(_ broker: SimBroker) {
        guard !inLiveness, brokerFaultRng.chance(0.5) else { return }
        schedule(.operatorRestart(broker: broker.id, incarnation: broker.incarnation),
                 afterNs: Int64(brokerFaultRng.int(in: 20...500)) * 1_000_000)
    }

    /// A broker finished a graceful stop and exited: it is started again a little later.
    func brokerExited(_ broker: SimBroker) {
        network.brokerDied(broker.id, silently: false)
        if !broker.failedPartitions.isEmpty { counters.restartsAfterDiskFailure += 1 }
        schedule(.restartBroker(broker.id), afterNs: Int64(brokerFaultRng.int(in: 1...300)) * 1_000_000)
    }
}
