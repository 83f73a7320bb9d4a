import BrokerCore
import ProtocolCore

/// ZooKeeper in the world (DESIGN.md §6, reference §3): one `SimZooKeeper` whose deliveries are
/// events of the queue, the registration of every broker (§3.2) over its own session, and the
/// session faults — expiry, and a lost connection that comes back. A process that dies abandons
/// its session: it stays alive at the server (ephemeral nodes included) until its timeout runs
/// out, as a real one does.
extension Simulation {
    enum ClusterEvent {
        case zkDeliver(ZKBatch)
        /// The server checks the timeouts of disconnected sessions.
        case zkAdvance
        case zkReconnect(SimZKSession)
        case registrationTick(broker: Int, incarnation: Int)
        /// A failover process's election timer (Simulation+Failover).
        case electionTick(broker: Int, incarnation: Int)
        /// A late broker starts for the first time (§3.5).
        case brokerJoins(Int)
        case memberTick(group: Int, member: Int, incarnation: Int)
        case memberRestart(group: Int, member: Int)
        case fetcherTick(client: Int)
        /// The application finished a delivery of `fetcher` up to `nextOffset`.
        case processed(SimGroupFetcher, DeliveryTracker.Event, msgId: Int64)
        /// Hand-offs, redelivery rounds (Simulation+Recover).
        case recover(RecoverEvent)
        /// A manual-ack handler's acks and rollbacks and its batch's end reach the fetch run
        /// (Simulation+ManualAck).
        case manualProcessed(SimGroupFetcher, [(DeliveryTracker.Event, SimManualDecision)])
        /// A member crashes before its handler decided about the messages it got.
        case manualCrash(group: Int, member: Int, incarnation: Int)
    }

    /// ZooKeeper deliveries asked for at one instant.
    final class ZKBatch {
        let createdNs: Int64
        let delayNs: Int64
        var delivers: [() -> Void]

        init(createdNs: Int64, delayNs: Int64, _ deliver: @escaping () -> Void) {
            self.createdNs = createdNs
            self.delayNs = delayNs
            delivers = [deliver]
        }
    }

    var layout: MetaZooKeeperLayout { MetaZooKeeperLayout() }
    var sessionTimeoutNs: Int64 { Int64(options.cluster.sessionTimeoutMs) * 1_000_000 }

    /// A server whose deliveries take 1 ms plus up to 1 ms of jitter (drawn from the cluster
    /// stream; the per-session order holds whatever the delays). Deliveries asked for at one
    /// instant travel together as one event: a member pipelines a dozen reads at once, and one
    /// event per reply would make ZooKeeper the bulk of a run's events for nothing.
    func makeZooKeeper() -> SimZooKeeper {
        SimZooKeeper(latencyNs: 1_000_000) { [unowned self] delay, deliver in
            if let batch = zkBatch, batch.createdNs == nowNs, batch.delayNs == delay {
                batch.delivers.append(deliver)
                return
            }
            let batch = ZKBatch(createdNs: nowNs, delayNs: delay, deliver)
            zkBatch = batch
            schedule(.cluster(.zkDeliver(batch)), afterNs: delay + Int64(clusterRng.int(in: 0...1_000_000)))
        }
    }

    func openSession(_ sink: @escaping (CoordinationEvent) -> Void) -> SimZKSession {
        zooKeeper.openSession(timeoutMs: Int64(options.cluster.sessionTimeoutMs), sink: sink)
    }

    func dispatch(_ event: ClusterEvent) {
        switch event {
        case .zkDeliver(let batch):
            trace(.zooKeeper, Int64(batch.delivers.count))
            if zkBatch === batch { zkBatch = nil }
            for deliver in batch.delivers { deliver() }
        case .zkAdvance:
            trace(.zkAdvance)
            zooKeeper.advance(to: instant)
        case .zkReconnect(let session):
            trace(.zkReconnect, session.id)
            // Only the session of a process still up: a dead one's session stays disconnected.
            guard liveSessions.contains(where: { $0.session === session })
                || routedProducers.contains(where: { $0.session === session }) else { return }
            zooKeeper.reconnect(session, now: instant)
        case .registrationTick(let b, let incarnation):
            trace(.registrationTick, Int64(b))
            if process(b).incarnation == incarnation { registrationHandle(process(b), .tick) }
        case .electionTick(let b, let incarnation):
            trace(.electionTick, Int64(b))
            if process(b).incarnation == incarnation, process(b).isUp { electionHandle(process(b), .tick) }
        case .brokerJoins(let b):
            trace(.brokerJoins, Int64(b), 0, "broker\(b) joins late")
            if !brokers[b].isUp {
                counters.lateBrokerJoins += 1
                brokers[b].start()
            }
        case .memberTick(let g, let m, let incarnation):
            trace(.memberTick, Int64(g), Int64(m))
            let member = groups[g].members[m]
            if member.isUp && member.incarnation == incarnation { memberHandle(member, .tick) }
        case .memberRestart(let g, let m):
            trace(.memberRestart, Int64(g), Int64(m), "g\(g)_c\(m) restarts")
            if !groups[g].members[m].isUp { startMember(groups[g].members[m]) }
        case .fetcherTick(let client):
            trace(.fetcherTick, Int64(client))
            if let fetcher = groupFetchers[client] { fetcherHandle(fetcher, .tick) }
        case .processed(let fetcher, let end, let msgId):
            trace(.processed, Int64(fetcher.client), Self.upTo(end))
            processed(fetcher, end, msgId: msgId)
        case .recover(let event):
            dispatch(event)
        case .manualProcessed(let fetcher, let steps):
            trace(.manualAck, Int64(fetcher.client), Int64(steps.count))
            manualProcessed(fetcher, steps)
        case .manualCrash(let g, let m, let incarnation):
            let member = groups[g].members[m]
            guard !inLiveness, member.isUp, member.incarnation == incarnation else { return }
            trace(.manualCrash, Int64(g), Int64(m), "FAULT \(member.name) crashes before its handler decided")
            crashMember(member)
        }
    }

    // MARK: Broker registration (§3.2)

    /// The broker process just started: a new session, and its registration (which finds the
    /// nodes of its previous session when that one has not expired yet).
    func registerBroker(_ broker: SimBroker) {
        let incarnation = broker.incarnation
        guard let node = broker.node else { return }
        let topics = node.topicsToRegister()
        let checksum = node.configChecksum
        if zooKeeper.data(at: layout.masterPath(broker.id)) != nil { counters.brokerRestartsWithLiveSession += 1 }
        broker.registration = BrokerRegistration(settings: .init(brokerId: broker.id, uri: broker.uri,
                                                                 configChecksum: checksum, topics: topics,
                                                                 retryDelayMs: 100))
        broker.zkSession = openSession { [unowned self, unowned broker] event in
            guard broker.incarnation == incarnation, broker.isUp else { return }
            registrationHandle(broker, .coordination(event))
        }
        registrationHandle(broker, .start)
    }

    func registrationHandle(_ broker: SimBroker, _ event: BrokerRegistration.Event) {
        guard let session = broker.zkSession, let actions = broker.registration?.handle(event, now: instant) else { return }
        for action in actions {
            switch action {
            case .coordinate(let request, let tag):
                if broker.election != nil {
                    submit(request, tag: tag, election: false, of: broker)
                } else {
                    session.submit(request, tag: tag)
                }
            case .registered:
                counters.brokerRegistrations += 1
                trace(.registration, Int64(broker.id), 0, "broker\(broker.id) registered in ZooKeeper (session \(session.id))")
            case .conflict(let path, let existing):
                fail("broker\(broker.id): \(path) holds \(existing), not \(broker.uri): a conflict no other broker caused")
            case .scheduleTick(let at):
                schedule(.cluster(.registrationTick(broker: broker.id, incarnation: broker.incarnation)), atNs: at.nanoseconds)
            case .stopped:
                break
            }
        }
    }

    /// The broker's node asks to register a topic its first put created.
    func registerTopic(_ topic: BrokerRegistration.Topic, of broker: SimBroker) {
        registrationHandle(broker, .topicAdded(topic))
    }

    /// The broker process died: its session is left to expire.
    func abandonRegistration(of broker: SimBroker) {
        guard let session = broker.zkSession else { return }
        broker.zkSession = nil
        broker.registration = nil
        broker.election = nil
        broker.zkRoutes = [:]
        abandon(session)
    }

    // MARK: Sessions

    /// The owner of `session` died without closing it: the server keeps it (and its ephemeral
    /// nodes) until the timeout; one already expired at the server is simply dropped.
    func abandon(_ session: SimZKSession) {
        switch session.status {
        case .connected:
            zooKeeper.disconnect(session, now: instant)
            schedule(.cluster(.zkAdvance), afterNs: sessionTimeoutNs)
            abandonedSessions.append(session)
        case .disconnected:
            abandonedSessions.append(session)
        case .expired, .expiredWhileDisconnected:
            // Gone at the server; closing keeps the dead handle from renewing itself.
            session.close()
        case .closed:
            break
        }
    }

    /// Whether the server still keeps `session` (its ephemeral nodes may still exist).
    func isAliveAtServer(_ session: SimZKSession) -> Bool { zooKeeper.liveSessions[session.id] != nil }

    /// The sessions of the processes that are up, brokers first, in a fixed order.
    var liveSessions: [(name: String, session: SimZKSession, isBroker: Bool)] {
        var result: [(String, SimZKSession, Bool)] = []
        for broker in brokers + slaves {
            if let session = broker.zkSession { result.append((broker.name, session, true)) }
        }
        for group in groups {
            for member in group.members {
                if member.isUp, let session = member.session { result.append((member.name, session, false)) }
            }
        }
        return result
    }

    /// ZooKeeper expires the session of a broker or member (DESIGN.md §6).
    func injectSessionExpiry() {
        let candidates = liveSessions.filter {
            if case .connected = $0.session.status { return true }
            if case .disconnected = $0.session.status { return true }
            return false
        }
        guard !candidates.isEmpty else { return }
        let target = rng.pick(candidates)
        counters.zkExpiries += 1
        if target.isBroker && groups.contains(where: { $0.members.contains { $0.isUp && !$0.machine.isSettled } }) {
            counters.brokerExpiriesDuringRebalance += 1
        }
        trace(.groupFault, 1, target.session.id, "FAULT ZooKeeper expires the session of \(target.name)")
        zooKeeper.expire(target.session)
    }

    /// A broker's or member's ZooKeeper connection drops; it comes back after a while, mostly
    /// within the session timeout (otherwise it hears that its session expired).
    func injectSessionDisconnect() {
        let candidates = liveSessions.filter { $0.session.status == .connected }
        guard !candidates.isEmpty else { return }
        let target = rng.pick(candidates)
        let timeoutMs = options.cluster.sessionTimeoutMs
        let awayMs = rng.chance(0.85) ? rng.int(in: 5...max(5, timeoutMs * 9 / 10)) : rng.int(in: timeoutMs...(timeoutMs * 2))
        counters.zkDisconnects += 1
        trace(.groupFault, 2, target.session.id, "FAULT ZooKeeper connection of \(target.name) lost for \(awayMs)ms")
        zooKeeper.disconnect(target.session, now: instant)
        schedule(.cluster(.zkAdvance), afterNs: sessionTimeoutNs)
        schedule(.cluster(.zkReconnect(target.session)), afterNs: Int64(awayMs) * 1_000_000)
    }

    /// Liveness: every live process's session connects again; crashed members restart.
    func clusterLiveness() {
        for (_, session, _) in liveSessions {
            switch session.status {
            case .disconnected, .expiredWhileDisconnected: zooKeeper.reconnect(session, now: instant)
            case .connected, .expired, .closed: break
            }
        }
        for group in groups {
            for member in group.members where !member.isUp { startMember(member) }
        }
        // Routed producers' sessions (only their own faults disconnect them).
        for producer in routedProducers {
            guard let session = producer.session else { continue }
            switch session.status {
            case .disconnected, .expiredWhileDisconnected: zooKeeper.reconnect(session, now: instant)
            case .connected, .expired, .closed: break
            }
        }
    }
}
