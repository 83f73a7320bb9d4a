import BrokerCore
import ProtocolCore
import StoreCore

/// Replicated worlds (issue 17, docs/SIMULATION.md "Replicated worlds"): the slaves of one broker
/// as processes of their own, the faults of the replicated set — slave crashes and power losses,
/// master crashes and power losses on top of the world's, partitions of the master link, slow
/// slave disks, and the master's disk destroyed — and their part of liveness: once the faults
/// stop, every slave copies its master to the master's durable end. Every choice comes from
/// `replicationRng`, so a world without slaves runs as before.
extension Simulation {
    enum ReplicationEvent {
        case fault
        case destroyMasterDisk
    }

    /// The slaves start with the world (their master link retries until the master is up); their
    /// client ids follow the transactional clients'.
    func startReplication() {
        guard let replication = options.replication else { return }
        for slaveId in 1...replication.slaves {
            let slave = SimBroker(id: brokers.count + slaves.count, options: options, sim: self,
                                  role: .slave(master: replication.master, slaveId: slaveId), client: nextClient)
            nextClient += 1
            slaves.append(slave)
            slave.start()
        }
        if replication.failover != nil {
            // The master follows when deposed: its master link needs a client id too.
            brokers[replication.master].client = nextClient
            nextClient += 1
            scheduleNextFailoverFault()
        }
        scheduleNextReplicationFault()
        if let at = replication.destroyMasterAtMs {
            schedule(.replication(.destroyMasterDisk), afterNs: Int64(at) * 1_000_000)
        }
    }

    func dispatch(_ event: ReplicationEvent) {
        guard !inLiveness else { return }
        switch event {
        case .fault:
            injectReplicationFault()
            scheduleNextReplicationFault()
        case .destroyMasterDisk:
            destroyMasterDisk()
        }
    }

    func scheduleNextReplicationFault() {
        guard let rate = options.replication?.faults.total, rate > 0 else { return }
        let meanNs = 1e9 / rate
        schedule(.replication(.fault), afterNs: Int64(replicationRng.unit() * 2 * meanNs) + 1)
    }

    func injectReplicationFault() {
        guard let replication = options.replication else { return }
        let f = replication.faults
        var pick = replicationRng.unit() * f.total
        func take(_ rate: Double) -> Bool {
            if pick < rate { return true }
            pick -= rate
            return false
        }
        let master = brokers[replication.master]
        if take(f.slaveCrash) {
            stopSlave(powerLoss: false)
        } else if take(f.slavePowerLoss) {
            stopSlave(powerLoss: true)
        } else if take(f.masterCrash) {
            if master.isUp { crash(master.id) }
        } else if take(f.masterPowerLoss) {
            if master.isUp { powerLoss(master.id) }
        } else if take(f.linkPartition) {
            let slave = replicationRng.pick(slaves)
            let untilNs = nowNs + Int64(replicationRng.int(in: 10...800)) * 1_000_000
            network.partition(broker: master.id, client: slave.client, untilNs: untilNs)
            counters.masterLinkPartitions += 1
            trace(.replicationFault, 3, Int64(slave.id), "FAULT partition \(master.name) from \(slave.name) for \((untilNs - nowNs) / 1_000_000)ms")
        } else {
            let slave = replicationRng.pick(slaves)
            slave.slowUntilNs = nowNs + Int64(replicationRng.int(in: 50...1000)) * 1_000_000
            counters.slowSlaveDisks += 1
            trace(.replicationFault, 4, Int64(slave.id), "FAULT slow disk \(slave.name)")
        }
    }

    /// A slave process dies — its page cache survives a crash, a power loss resolves its unsynced
    /// writes at random — and restarts later, recovering its copy.
    private func stopSlave(powerLoss: Bool) {
        let up = slaves.filter(\.isUp)
        guard !up.isEmpty else { return }
        let slave = replicationRng.pick(up)
        if powerLoss { counters.slavePowerLosses += 1 } else { counters.slaveCrashes += 1 }
        trace(.replicationFault, powerLoss ? 2 : 1, Int64(slave.id), "FAULT \(powerLoss ? "power loss" : "crash") \(slave.name)")
        slave.stop(powerLoss: powerLoss)
        let restartMs = replicationRng.int(in: powerLoss ? 1...500 : 1...300)
        schedule(.restartBroker(slave.id), afterNs: Int64(restartMs) * 1_000_000)
    }

    /// The master's disk is destroyed: every file gone, the process dies and is never started
    /// again (without failover, not simulated yet, nothing takes its place). What its slaves hold
    /// at this moment is what the broker id still has.
    func destroyMasterDisk() {
        guard let replication = options.replication else { return }
        let master = brokers[replication.master]
        guard !master.destroyed else { return }
        let images = durableImages(of: master)
        if master.isUp {
            network.brokerDied(master.id, silently: false)
            master.stop(powerLoss: false)
        }
        master.destroyDisk()
        counters.masterDisksDestroyed += 1
        trace(.replicationFault, 5, Int64(master.id), "FAULT \(master.name)'s disk is destroyed: every file gone, the broker stopped for good")
        let record = SimDestruction(master: images, slaves: slaves.map { durableImages(of: $0) })
        destruction = record
        if replication.failover == nil {
            // (A deposed master's tail may differ from its successor's: failover worlds compare at the end.)
            checkReplicasIdentical(record.master, of: master, copies: zip(slaves.map(\.name), record.slaves).map { ($0, $1) },
                                   when: "when \(master.name)'s disk was destroyed")
        }
        checkPromisedCopies(record.slaves, when: "when \(master.name)'s disk was destroyed")
    }

    /// Liveness: every slave runs again at full speed (the partitions healed with the rest).
    func replicationLiveness() {
        for slave in slaves {
            slave.slowUntilNs = 0
            if !slave.isUp { slave.start() }
        }
    }

    /// What the slaves still lack: every partition of the master copied to its durable end, and
    /// durable on the slave. A copy held where the master cannot give it what follows is left
    /// out: bit rot on the master (a slave cannot store a record that fails its checksum), or a
    /// range the master's recovery found damaged and skips (a byte-identical copy cannot skip it:
    /// the slave waits there for ever — a gap of the replication design, docs/REPLICATION.md).
    func replicationWaiting() -> [String] {
        guard let replication = options.replication else { return [] }
        if replication.failover != nil { return failoverWaiting() }
        let master = brokers[replication.master]
        guard !master.destroyed, let masterNode = master.node else { return [] }
        var waiting: [String] = []
        for slave in slaves {
            guard slave.isUp else {
                waiting.append("\(slave.name) down")
                continue
            }
            for partition in masterNode.stores.partitions where !isHeld(slave, partition) {
                guard let original = master.log(partition) else { continue }
                let copy = slave.log(partition)
                if copy?.maxOffset != original.maxOffset || copy?.hasUnsyncedData == true || original.hasUnsyncedData {
                    waiting.append("\(slave.name) \(partition) at \(copy.map { "\($0.maxOffset)" } ?? "none") of \(original.maxOffset)")
                }
            }
        }
        return waiting
    }

    /// Whether `slave`'s copy of `partition` is held where its master cannot give it more: past
    /// the copy's end the master's durable bytes hold something that is not a whole, valid record
    /// — bit rot (a fetch that brings a rotten record is refused whole) or a damaged range its
    /// recovery kept and skips.
    func isHeld(_ slave: SimBroker, _ partition: TopicPartition, end: Int64? = nil, source: SimBroker? = nil) -> Bool {
        guard let replication = options.replication else { return false }
        let master = source ?? brokers[replication.master]
        guard let end = end ?? slave.log(partition)?.maxOffset, let masterEnd = master.log(partition)?.maxOffset, end < masterEnd,
              let image = durableImage(of: master, partition, cutAtDamage: false) else { return false }
        var offset = end
        while offset < masterEnd {
            guard let record = image.record(at: offset, verified: true) else { return true }
            offset += Int64(Record.headerSize + record.payload.count)
        }
        return false
    }

    func collectReplicationCounters() {
        guard let replication = options.replication else { return }
        counters.replicatedSeeds = 1
        if replication.promisesCopies { counters.synchronousReplicatedSeeds = 1 }
        counters.slaves += replication.slaves
        for slave in slaves {
            for partition in brokers[replication.master].node?.stores.partitions ?? [] where isHeld(slave, partition) {
                counters.copiesHeldByMasterDamage += 1
            }
        }
    }
}
