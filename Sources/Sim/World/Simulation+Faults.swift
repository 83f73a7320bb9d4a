import ProtocolCore
import StoreCore

/// The fault schedule of the safety phase (docs/SIMULATION.md, "Fault model"): each fault kind
/// has a rate drawn from the seed; the next fault comes after a random gap, its kind chosen in
/// proportion to the rates.
extension Simulation {
    var totalFaultRate: Double {
        let f = options.faults
        return f.powerLossOne + f.powerLossAll + f.crash + f.disconnect + f.partition + f.slowDisk + f.latentError + f.consumerCrash
            + clusterFaultRate
    }

    /// The rates of the faults that need groups (zero in a world without): last in the sum, so a
    /// world without them draws its faults exactly as before they existed.
    var clusterFaultRate: Double {
        let f = options.faults
        return f.memberCrash + f.zkExpire + f.zkDisconnect
    }

    func scheduleNextFault() {
        let rate = totalFaultRate
        guard rate > 0 else { return }
        let meanNs = 1e9 / rate
        schedule(.fault, afterNs: Int64(rng.unit() * 2 * meanNs) + 1)
    }

    func injectFault() {
        let f = options.faults
        var pick = rng.unit() * totalFaultRate
        let clusterFrom = totalFaultRate - clusterFaultRate
        if clusterFaultRate > 0 && pick >= clusterFrom { return injectClusterFault(pick - clusterFrom) }
        func take(_ rate: Double) -> Bool {
            if pick < rate { return true }
            pick -= rate
            return false
        }
        let up = brokers.filter(\.isUp).map(\.id)
        if take(f.powerLossOne) {
            guard let b = up.isEmpty ? nil : rng.pick(up) else { return }
            powerLoss(b)
        } else if take(f.powerLossAll) {
            for b in up { powerLoss(b) }
        } else if take(f.crash) {
            guard let b = up.isEmpty ? nil : rng.pick(up) else { return }
            crash(b)
        } else if take(f.disconnect) {
            if network.dropRandomConnection() {
                counters.disconnects += 1
                trace(.faultFired, 3, 0, "FAULT connection dropped")
            }
        } else if take(f.partition) {
            let b = rng.int(in: 0..<brokers.count)
            // Group fetchers (a world with groups) come after the producers and consumers.
            let all = Array(0..<(producers.count + consumers.count)) + groupFetchers.keys.sorted()
            let clients = rng.chance(0.5) ? [rng.pick(all)] : all
            let untilNs = nowNs + Int64(rng.int(in: 10...800)) * 1_000_000
            for client in clients { network.partition(broker: b, client: client, untilNs: untilNs) }
            counters.partitions += 1
            trace(.faultFired, 4, Int64(b), "FAULT partition broker\(b) from \(clients.count) client(s) for \((untilNs - nowNs) / 1_000_000)ms")
        } else if take(f.slowDisk) {
            let b = rng.int(in: 0..<brokers.count)
            brokers[b].slowUntilNs = nowNs + Int64(rng.int(in: 50...1000)) * 1_000_000
            counters.slowDisks += 1
            trace(.faultFired, 5, Int64(b), "FAULT slow disk broker\(b)")
        } else if take(f.latentError) {
            guard let b = up.isEmpty ? nil : rng.pick(up) else { return }
            rot(b)
        } else {
            guard !consumers.isEmpty else { return }
            let c = rng.int(in: 0..<consumers.count)
            counters.consumerCrashes += 1
            trace(.faultFired, 7, Int64(c), "FAULT consumer \(c) crashes, restarts at \(consumers[c].committedOffset)")
            restartConsumer(c)
        }
    }

    /// `pick` is below `clusterFaultRate`: which of the group faults it names.
    private func injectClusterFault(_ pick: Double) {
        let f = options.faults
        if pick < f.memberCrash {
            let up = groups.flatMap(\.members).filter(\.isUp)
            guard !up.isEmpty else { return }
            crashMember(rng.pick(up))
        } else if pick < f.memberCrash + f.zkExpire {
            injectSessionExpiry()
        } else {
            injectSessionDisconnect()
        }
    }

    /// The broker process dies (its page cache survives) and restarts 1–300 ms later.
    func crash(_ b: Int) {
        counters.crashes += 1
        trace(.faultFired, 2, Int64(b), "FAULT crash broker\(b)")
        noteRareStates(of: brokers[b], powerLoss: false)
        network.brokerDied(b, silently: false)
        brokers[b].stop(powerLoss: false)
        schedule(.restartBroker(b), afterNs: Int64(rng.int(in: 1...300)) * 1_000_000)
    }

    func powerLoss(_ b: Int) {
        let broker = brokers[b]
        guard broker.isUp else { return }
        counters.powerLosses += 1
        trace(.faultFired, 1, Int64(b), "FAULT power loss broker\(b)")
        powerLossRecords[b, default: []].append((broker.incarnation, broker.syncedEnds()))
        noteRareStates(of: broker, powerLoss: true)
        network.brokerDied(b, silently: true)
        broker.stop(powerLoss: true)
        schedule(.restartBroker(b), afterNs: Int64(rng.int(in: 1...500)) * 1_000_000)
    }

    /// Counts the states a crash or power loss is most interesting in: appended but not yet
    /// synced bytes (between append and sync), and a segment that was just rolled (empty).
    private func noteRareStates(of broker: SimBroker, powerLoss: Bool) {
        for partition in broker.node?.stores.partitions ?? [] {
            guard let log = broker.log(partition) else { continue }
            if powerLoss, log.hasUnsyncedData { counters.powerLossesBetweenAppendAndSync += 1 }
            if log.segmentCount >= 2, log.segmentStarts.last == log.writtenOffset { counters.faultsRightAfterRoll += 1 }
        }
    }

    /// Bit rot: one synced sector of an older segment (recovery rescans only the last one, as in
    /// MetaQ; consumers must catch it by checksum and never deliver it).
    private func rot(_ b: Int) {
        let broker = brokers[b]
        // A synchronous master whose slaves cannot copy a rotten record past it refuses every put
        // for ever (its slaves never catch up again): not a state the liveness phase can leave.
        if let replication = options.replication, replication.promisesCopies, replication.master == b { return }
        var candidates: [(TopicPartition, path: String, start: Int64, length: Int)] = []
        for partition in broker.node?.stores.partitions ?? [] {
            guard let log = broker.log(partition), log.segmentCount >= 2 else { continue }
            for start in log.segmentStarts.dropLast() {
                let path = StoragePath.join(log.directory, SegmentName.name(forStart: start))
                if let durable = broker.disk.durableBytes(path), !durable.isEmpty {
                    candidates.append((partition, path, start, durable.count))
                }
            }
        }
        guard !candidates.isEmpty else { return }
        let target = rng.pick(candidates)
        let sectors = (target.length + 511) / 512
        let sector = rng.int(in: 0..<sectors)
        broker.disk.corruptSyncedSector(path: target.path, sector: sector, using: &rng)
        let from = target.start + Int64(sector * 512)
        let to = target.start + Int64(min(target.length, (sector + 1) * 512))
        rotRanges[b, default: [:]][target.0, default: []].append(from..<to)
        counters.latentErrors += 1
        trace(.faultFired, 6, Int64(b), "FAULT bit rot broker\(b) \(target.0) offsets \(from)..<\(to)")
    }
}
