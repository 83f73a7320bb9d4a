import BrokerCore
import ProtocolCore
import StoreCore

/// Failover worlds (issue 17, SimFailover, docs/SIMULATION.md "Failover worlds"): every process
/// of the replicated broker id — the configured master and its slaves — drives the production
/// `BrokerElection` on its own simulated ZooKeeper session through `ElectionDriver`, the mapping
/// the runtime uses (`BrokerClusterMember.elect`), with its registration beside it; the node is
/// told the decisions and its `.publishInSync` / `.promote` go back to the election. Plain
/// producers of the broker id connect to the process the master node names, as a MetaQ producer
/// routes. The checkers:
/// - (a) every put a process acknowledges is booked under the term it leads (or led last, for a
///   put stored while leading and answered once its sync finished after a fence): two processes
///   acknowledging puts in one term fail the run;
/// - (b) synchronous worlds (`minInSyncReplicas` ≥ 2): every acknowledged message of the id is on
///   the final leader's durable log; other worlds count the ones lost in takeovers, each at or
///   beyond the end a later leader had when its term began (the unreplicated tail);
/// - (c) the final leader's and every follower's durable copies are byte-identical on their
///   common range (at the end only: a deposed leader's tail differs until it is cut);
/// - (d) once the faults stop exactly one process leads and every other has copied it to its end
///   (convergence waits for it).
extension Simulation {
    var failoverWorld: SimFailover? { options.replication?.failover }

    func isFailoverProcess(_ broker: SimBroker) -> Bool {
        guard let replication = options.replication, replication.failover != nil else { return false }
        return broker.isSlave || broker.id == replication.master
    }

    /// The processes of the failover broker id: the configured master, then its slaves.
    var failoverSet: [SimBroker] {
        guard let replication = options.replication, replication.failover != nil else { return [] }
        return [brokers[replication.master]] + slaves
    }

    /// The broker or slave process that serves `uri`.
    func process(forURI uri: String) -> Int? {
        (brokers + slaves).first { $0.uri == uri }?.id
    }

    /// Where a producer of broker id `b` connects: the process whose URI the master node holds
    /// (`ids/<id>/master`, what a MetaQ producer follows); the configured broker otherwise.
    func route(_ b: Int) -> Int {
        guard options.replication?.failoverBrokerId == b, let data = zooKeeper.data(at: layout.masterPath(b)),
              let target = process(forURI: String(decoding: data, as: UTF8.self)) else { return b }
        return target
    }

    // MARK: Driving the election

    /// The process just started (fenced until the first decision): a new session carrying its
    /// election and its registration (which the first decision starts, in the role decided).
    func startElection(_ broker: SimBroker) {
        let incarnation = broker.incarnation
        guard let node = broker.node else { return }
        var slaveId: Int?
        if case .slave(_, let id) = broker.role { slaveId = id }
        var settings = BrokerElection.Settings.electionSettings(config: broker.config, uri: broker.uri, layout: layout)
        settings.retryDelayMs = 100
        settings.canaryTakeOverWithoutNewTerm = bugs.contains(.failoverTakeOverWithoutNewTerm)
        settings.canaryIgnoreLostLogs = bugs.contains(.failoverIgnoresLostLogs)
        broker.election = ElectionDriver(settings: settings, logsTerm: node.electionLogsTerm)
        broker.registration = BrokerRegistration(settings: .init(
            brokerId: broker.brokerId, uri: broker.uri, configChecksum: node.configChecksum, topics: node.topicsToRegister(),
            retryDelayMs: 100, role: slaveId.map { .slave(slaveId: $0) } ?? .master, masterNodeByElection: true))
        broker.zkRoutes = [:]
        broker.zkSession = openSession { [unowned self, unowned broker] event in
            guard broker.incarnation == incarnation, broker.isUp else { return }
            switch event {
            case .reply(let global, let reply):
                guard let route = broker.zkRoutes.removeValue(forKey: global) else { return }
                if route.election {
                    electionHandle(broker, .coordination(.reply(tag: route.tag, reply)))
                } else {
                    registrationHandle(broker, .coordination(.reply(tag: route.tag, reply)))
                }
            case .session, .watch:
                registrationHandle(broker, .coordination(event))
                electionHandle(broker, .coordination(event))
            }
        }
        electionHandle(broker, .start)
    }

    /// A request of the election or the registration on the process's session, under a tag of
    /// the session's (both machines number theirs from 1).
    func submit(_ request: CoordinationRequest, tag: UInt64, election: Bool, of broker: SimBroker) {
        guard let session = broker.zkSession else { return }
        let global = broker.nextZkTag
        broker.nextZkTag += 1
        broker.zkRoutes[global] = (election, tag)
        session.submit(request, tag: global)
    }

    func electionHandle(_ broker: SimBroker, _ event: BrokerElection.Event) {
        guard broker.isUp, broker.election != nil else { return }
        let steps = broker.election!.handle(event, now: instant)
        for problem in broker.election?.election.checkInvariants() ?? [] { fail("\(broker.name) election: \(problem)") }
        for step in steps {
            guard broker.election != nil else { return }  // the process died meanwhile
            switch step {
            case .coordinate(let request, let tag):
                submit(request, tag: tag, election: true, of: broker)
            case .node(let leadership):
                if case .leading(let term) = leadership {
                    broker.lastLedTerm = term
                    counters.termsLed += 1
                    if broker.isSlave { counters.takeovers += 1 }
                    trace(.leadership, Int64(broker.id), term, "\(broker.name) leads term \(term)")
                } else {
                    trace(.leadership, Int64(broker.id), -1, "\(broker.name) \(leadership)")
                }
                broker.feed(.leadership(leadership))
                if case .leading(let term) = leadership, term >= 2, let node = broker.node {
                    laterTermBegan = true
                    // A partition the new leader lacks starts at 0 in its term.
                    for topic in options.topics {
                        for p in 0..<topic.partitions {
                            let partition = TopicPartition(topic.name, Int32(p))
                            let start = node.termStartEnds[partition] ?? 0
                            lowestTermStart[partition] = min(lowestTermStart[partition] ?? .max, start)
                        }
                    }
                }
            case .register(let role, let startRegistration):
                registrationHandle(broker, .roleChanged(role))
                if startRegistration { registrationHandle(broker, .start) }
            case .scheduleTick(let at):
                schedule(.cluster(.electionTick(broker: broker.id, incarnation: broker.incarnation)), atNs: at.nanoseconds)
            case .inSyncPublished(let ids):
                broker.feed(.inSyncPublished(ids))
            case .notice(let text):
                trace(.election, Int64(broker.id), 0, "\(broker.name) \(text)")
            }
        }
    }

    // MARK: Checker (a)

    /// `broker` answered a put as stored: booked under its term.
    func failoverPutAcknowledged(by broker: SimBroker) {
        guard let term = broker.node?.currentLeadingTerm ?? broker.lastLedTerm else {
            return fail("\(broker.name) acknowledged a put without ever leading a term")
        }
        if let holder = termAcknowledger[term], holder != broker.id {
            return fail("two processes acknowledged puts of broker \(broker.brokerId) in term \(term): \(process(holder).name) and \(broker.name)")
        }
        termAcknowledger[term] = broker.id
    }

    // MARK: Faults

    func scheduleNextFailoverFault() {
        guard let rate = failoverWorld?.total, rate > 0 else { return }
        schedule(.failover, afterNs: Int64(failoverRng.unit() * 2 * 1e9 / rate) + 1)
    }

    func failoverFault() {
        guard !inLiveness, let f = failoverWorld else { return }
        defer { scheduleNextFailoverFault() }
        var pick = failoverRng.unit() * f.total
        func take(_ rate: Double) -> Bool {
            if pick < rate { return true }
            pick -= rate
            return false
        }
        let up = failoverSet.filter(\.isUp)
        guard !up.isEmpty else { return }
        counters.failoverFaults += 1
        if take(f.sessionExpiry) {
            let candidates = up.filter { broker in
                switch broker.zkSession?.status {
                case .connected?, .disconnected?: return true
                default: return false
                }
            }
            guard !candidates.isEmpty else { return }
            let target = failoverRng.pick(candidates)
            trace(.failoverFault, 1, Int64(target.id), "FAULT ZooKeeper expires the session of \(target.name)")
            zooKeeper.expire(target.zkSession!)
        } else if take(f.sessionDisconnect) {
            let candidates = up.filter { $0.zkSession?.status == .connected }
            guard !candidates.isEmpty else { return }
            let target = failoverRng.pick(candidates)
            let timeoutMs = options.cluster.sessionTimeoutMs
            let awayMs = failoverRng.chance(0.7) ? failoverRng.int(in: 5...max(5, timeoutMs * 9 / 10))
                : failoverRng.int(in: timeoutMs...(timeoutMs * 2))
            trace(.failoverFault, 2, Int64(target.id), "FAULT \(target.name) cut off from ZooKeeper for \(awayMs)ms")
            zooKeeper.disconnect(target.zkSession!, now: instant)
            schedule(.cluster(.zkAdvance), afterNs: sessionTimeoutNs)
            schedule(.cluster(.zkReconnect(target.zkSession!)), afterNs: Int64(awayMs) * 1_000_000)
        } else if take(f.setPartition) {
            let set = failoverSet
            guard set.count >= 2 else { return }
            let a = failoverRng.int(in: 0..<set.count)
            var b = failoverRng.int(in: 0..<(set.count - 1))
            if b >= a { b += 1 }
            let untilNs = nowNs + Int64(failoverRng.int(in: 10...1500)) * 1_000_000
            network.partition(broker: set[a].id, client: set[b].client, untilNs: untilNs)
            network.partition(broker: set[b].id, client: set[a].client, untilNs: untilNs)
            trace(.failoverFault, 3, Int64(set[a].id), "FAULT partition \(set[a].name) from \(set[b].name) for \((untilNs - nowNs) / 1_000_000)ms")
        } else {
            let powerLoss = !take(f.leaderCrash)
            guard let leader = up.first(where: { $0.node?.currentLeadingTerm != nil }) else { return }
            trace(.failoverFault, powerLoss ? 5 : 4, Int64(leader.id), "FAULT \(powerLoss ? "power loss" : "crash") of the leader \(leader.name)")
            if powerLoss && !leader.isSlave { powerLossRecords[leader.id, default: []].append((leader.incarnation, leader.syncedEnds())) }
            network.brokerDied(leader.id, silently: powerLoss)
            leader.stop(powerLoss: powerLoss)
            let restartMs = failoverRng.int(in: powerLoss ? 1...500 : 1...300)
            schedule(.restartBroker(leader.id), afterNs: Int64(restartMs) * 1_000_000)
        }
    }

    // MARK: Checkers (b), (c), (d)

    /// Convergence: exactly one leader, every other process of the id up and copied to its end.
    func failoverWaiting() -> [String] {
        guard let replication = options.replication, replication.failover != nil else { return [] }
        let set = failoverSet.filter { !$0.destroyed }
        var waiting = set.filter { !$0.isUp }.map { "\($0.name) down" }
        let leaders = set.filter { $0.node?.currentLeadingTerm != nil }
        guard leaders.count == 1, let leader = leaders.first, let leaderNode = leader.node else {
            if leaders.isEmpty && waiting.isEmpty { operatorPromote(set) }
            return waiting + ["\(leaders.count) leader(s) of broker \(replication.master): \(leaders.map(\.name))"]
        }
        let term = leaderNode.currentLeadingTerm
        for follower in set where follower !== leader && follower.isUp {
            // It took the leader's history (cut what the leader does not have) before its copy counts.
            if let node = follower.node, node.logsConsistentTerm != term {
                waiting.append("\(follower.name) consistent with term \(node.logsConsistentTerm.map(String.init) ?? "none"), not \(term!)")
                continue
            }
            for partition in leaderNode.stores.partitions where !isHeld(follower, partition, source: leader) {
                guard let original = leader.log(partition) else { continue }
                let copy = follower.log(partition)
                if copy?.maxOffset != original.maxOffset || copy?.hasUnsyncedData == true || original.hasUnsyncedData {
                    waiting.append("\(follower.name) \(partition) at \(copy.map { "\($0.maxOffset)" } ?? "none") of \(leader.name)'s \(original.maxOffset)")
                }
            }
        }
        return waiting
    }

    /// No process leads long after the faults stopped: the leader died with no slave in its
    /// in-sync set (a new term starts with none), or the master's disk was destroyed while its
    /// slaves lagged — by design nobody takes over then without an operator. The simulator is
    /// that operator: `metaq admin promote --force` (the node's `.promote(force: true)`, fed to
    /// the election as the runtime does) on the process that led last, or, when that one is
    /// gone, on the one with the longest durable log.
    func operatorPromote(_ set: [SimBroker]) {
        let settledNs = 2 * sessionTimeoutNs + 1_000_000_000
        guard nowNs - livenessStartNs > settledNs, nowNs - lastOperatorPromoteNs > settledNs,
              set.allSatisfy({ $0.zkSession?.status == .connected }) else { return }
        let lastLeader = failoverSet.filter { $0.lastLedTerm != nil }.max { $0.lastLedTerm! < $1.lastLedTerm! }
        var target = set.first { $0 === lastLeader }
        if target == nil {
            forcedPromoteLostLeader = true
            func length(_ broker: SimBroker) -> Int64 { durableImages(of: broker).values.reduce(0) { $0 + $1.end } }
            target = set.max { length($0) < length($1) }
        }
        guard let target else { return }
        lastOperatorPromoteNs = nowNs
        counters.operatorPromotes += 1
        trace(.failoverFault, 6, Int64(target.id), "operator: promote --force \(target.name) (no broker leads)")
        electionHandle(target, .promote(force: true))
    }

    /// An acknowledged message that retention removed on purpose: the final leader's log starts
    /// after it (it copied the partition again, or restarted its copy, at a leader's first
    /// offset, which retention had moved past it) and it lies below the retention floor of a
    /// process of the id. The final leader's own floor alone does not say so — a re-created copy has none
    /// (the failover sweep's seeds 25791, 26167, 29802, 22365, 1647, 2614). A message the final
    /// leader's log does reach is still checked byte for byte.
    func removedByRetention(_ ack: Acknowledged, leaderImage: ReplicaImage?) -> Bool {
        guard let image = leaderImage, ack.offset < image.start else { return false }
        return failoverSet.contains { ($0.retentionFloor[ack.partition] ?? 0) > ack.offset }
    }

    func checkFailoverAtTheEnd() {
        guard let replication = options.replication, replication.failover != nil else { return }
        counters.failoverSeeds = 1
        let set = failoverSet.filter { !$0.destroyed && $0.isUp }
        let leaders = set.filter { $0.node?.currentLeadingTerm != nil }
        guard leaders.count == 1, let leader = leaders.first else {
            return finalFailure("\(leaders.count) leaders of broker \(replication.master) at the end: \(leaders.map(\.name))")
        }
        let images = durableImages(of: leader)
        checkReplicasIdentical(images, of: leader, copies: set.filter { $0 !== leader }.map { ($0.name, durableImages(of: $0)) },
                               when: "at the end (final leader \(leader.name))")
        for ack in acknowledged(on: replication.master) {
            if let floor = leader.retentionFloor[ack.partition], ack.offset < floor { continue }
            if removedByRetention(ack, leaderImage: images[ack.partition]) { continue }
            if ack.isHeld(by: images[ack.partition]) {
                counters.acknowledgedOnFinalLeader += 1
            } else if replication.promisesCopies && !forcedPromoteLostLeader {
                finalFailure("acknowledged by synchronous broker \(replication.master) (minInSyncReplicas=\(replication.minInSyncReplicas)) "
                             + "but not on the final leader \(leader.name)'s log (term \(leader.node?.currentLeadingTerm ?? -1)): \(ack.name)")
                if failuresCount >= 20 { return }
            } else {
                counters.acknowledgedLostInTakeover += 1
                // Asynchronous: only the unreplicated tail of a takeover may go — at or beyond the
                // end some later leader had when its term began.
                let bound = lowestTermStart[ack.partition] ?? (laterTermBegan ? 0 : .max)
                // Bit rot, or damage a recovery isolated, ends a copy where it starts (images are cut
                // there, and a byte-identical copy cannot pass it: REPLICATION.md, known gaps).
                let end = ack.offset + Int64(Record.headerSize + ack.sent.payload.count)
                let rotted = failoverSet.contains { process in
                    rotRanges[process.id]?[ack.partition]?.contains { $0.lowerBound < end } == true
                        || process.log(ack.partition)?.damagedRanges.contains { $0.lowerBound < end } == true
                }
                if !forcedPromoteLostLeader, !rotted, ack.offset < bound {
                    finalFailure("acknowledged by broker \(replication.master) and lost below every takeover's start "
                                 + "(\(bound) on \(ack.partition)): \(ack.name)")
                    if failuresCount >= 20 { return }
                }
            }
        }
    }
}
