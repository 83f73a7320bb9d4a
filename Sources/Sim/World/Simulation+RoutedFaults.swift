import ProtocolCore

/// The routed producers' own faults (reference §3.3; SimRoutedFaults): their ZooKeeper sessions
/// expire or lose their connection, so the `PublishDirectory` loses its watches and reads and must
/// re-watch and re-read; the application waits in `publish(topic)` (`ProducerRouter.awaitTopic`);
/// and a producer shuts down with sends and waits outstanding.
///
/// Checkers: a `publish(topic)` wait is answered exactly once, and before its timeout only with
/// the topic listed; a shutdown answers every send and wait still waiting for discovery (failed
/// sends are recorded as rejected, so the delivery checkers hold them to it); after the faults
/// stop, each running producer's directory lists what ZooKeeper says for every topic it follows.
extension Simulation {
    func startRoutedFaults() {
        guard let faults = options.routedFaults else { return }
        for producer in routedProducers {
            // Some waits and shutdowns come while the first topics are being discovered.
            if faults.publishWaitRate > 0 && routedFaultRng.chance(0.5) {
                schedule(.routed(.publishWait(producer.index)), afterNs: Int64(routedFaultRng.int(in: 0...30)) * 1_000_000)
            }
            guard routedFaultRng.chance(faults.shutdownProbability) else { continue }
            let atMs = routedFaultRng.chance(0.6) ? routedFaultRng.int(in: 1...20) : routedFaultRng.int(in: 1...options.safetyPhaseMs)
            schedule(.routed(.shutDown(producer.index, tries: 0)), afterNs: Int64(atMs) * 1_000_000)
        }
        scheduleNextRoutedFault()
    }

    func scheduleNextRoutedFault() {
        guard let rate = options.routedFaults?.totalRate, rate > 0 else { return }
        schedule(.routed(.fault), afterNs: Int64(routedFaultRng.unit() * 2 * 1e9 / rate) + 1)
    }

    func injectRoutedFault() {
        guard let faults = options.routedFaults, !routedProducers.isEmpty else { return }
        let producer = routedFaultRng.pick(routedProducers)
        var pick = routedFaultRng.unit() * faults.totalRate
        guard let session = producer.session else { return }
        if pick < faults.expiryRate {
            switch session.status {
            case .connected, .disconnected:
                counters.routedZkExpiries += 1
                trace(.routedFault, Int64(producer.index), 1, "FAULT ZooKeeper expires the session of \(producer.name)")
                zooKeeper.expire(session)
            case .expiredWhileDisconnected, .expired, .closed:
                break
            }
            return
        }
        pick -= faults.expiryRate
        if pick < faults.disconnectRate {
            guard session.status == .connected else { return }
            let timeoutMs = options.cluster.sessionTimeoutMs
            let awayMs = routedFaultRng.chance(0.85) ? routedFaultRng.int(in: 5...max(5, timeoutMs * 9 / 10))
                : routedFaultRng.int(in: timeoutMs...(timeoutMs * 2))
            counters.routedZkDisconnects += 1
            trace(.routedFault, Int64(producer.index), 2, "FAULT ZooKeeper connection of \(producer.name) lost for \(awayMs)ms")
            zooKeeper.disconnect(session, now: instant)
            schedule(.cluster(.zkAdvance), afterNs: sessionTimeoutNs)
            schedule(.cluster(.zkReconnect(session)), afterNs: Int64(awayMs) * 1_000_000)
            return
        }
        publishWait(producer)
    }

    /// `publish(topic)`: the application waits for the topic's partitions, at most `timeoutMs`.
    func publishWait(_ producer: SimRoutedProducer) {
        guard let faults = options.routedFaults, !inLiveness else { return }
        let topic = routedFaultRng.pick(options.topics).name
        let timeoutMs = routedFaultRng.int(in: 1...faults.publishWaitMaxMs)
        let waiter = producer.nextWaiter
        producer.nextWaiter += 1
        producer.waiters[waiter] = (topic, nowNs + Int64(timeoutMs) * 1_000_000)
        counters.publishWaits += 1
        trace(.publishWait, Int64(producer.index), Int64(waiter), "\(producer.name) publish(\(topic)) waits up to \(timeoutMs)ms")
        routerHandle(producer, .awaitTopic(waiter: waiter, topic: topic, timeoutMs: Int64(timeoutMs)))
        shutDownIfWaiting(producer)
    }

    /// A due shutdown comes now if something waits for discovery.
    func shutDownIfWaiting(_ producer: SimRoutedProducer) {
        if producer.shutdownArmed && (producer.router.waitingSends > 0 || !producer.waiters.isEmpty) {
            shutDownRouted(producer, tries: .max)
        }
    }

    /// The router ended the wait `waiter`: it must be open, and — unless its timeout ran out or
    /// the router shut down — the topic must be listed now (what `publish` returns).
    func publishWaitEnded(_ producer: SimRoutedProducer, _ waiter: UInt64, _ topic: String) {
        guard let open = producer.waiters.removeValue(forKey: waiter) else {
            return fail("\(producer.name): the router ended publish(\(topic)) wait #\(waiter), which is not waiting")
        }
        guard open.topic == topic else {
            return fail("\(producer.name): publish(\(open.topic)) wait #\(waiter) ended as a wait for \(topic)")
        }
        if producer.router.partitions(of: topic) != nil {
            counters.publishWaitsListed += 1
        } else if nowNs >= open.deadlineNs || producer.router.isShutDown {
            counters.publishWaitsUnlisted += 1
        } else {
            fail("\(producer.name): publish(\(topic)) wait #\(waiter) ended before its timeout with the topic not listed")
        }
    }

    /// The producer shuts down (`ClientEngine.abandonSends`, then its ZooKeeper session closes):
    /// every send and `publish` wait still waiting for discovery must be answered now. Its links
    /// finish what they already put on the wire; later sends fail at once.
    func shutDownRouted(_ producer: SimRoutedProducer, tries: Int) {
        guard !producer.router.isShutDown else { return }
        // Rather when something waits for discovery (a few short postponements at most).
        if producer.router.waitingSends == 0 && producer.waiters.isEmpty && tries < 20 && !inLiveness {
            producer.shutdownArmed = true
            schedule(.routed(.shutDown(producer.index, tries: tries + 1)), afterNs: Int64(routedFaultRng.int(in: 1...5)) * 1_000_000)
            return
        }
        counters.routerShutdowns += 1
        let sends = producer.router.waitingSends
        trace(.routerShutDown, Int64(producer.index), Int64(sends),
              "\(producer.name) shuts down (\(sends) send(s), \(producer.waiters.count) publish wait(s) waiting)")
        routerHandle(producer, .shutDown)
        if !producer.unrouted.isEmpty || !producer.waiters.isEmpty {
            fail("\(producer.name): the router shut down leaving \(producer.unrouted.count) send(s) and "
                 + "\(producer.waiters.count) publish() wait(s) unanswered")
        }
        producer.session?.close()
        producer.session = nil
    }

    /// After the faults stop: a running producer's directory lists, for every topic it follows,
    /// the partitions ZooKeeper registers now (§3.3) — it re-read after losing its session.
    func staleViews(of producer: SimRoutedProducer) -> [String] {
        guard producer.session != nil else { return [] }
        var stale: [String] = []
        for topic in options.topics.map(\.name) {
            guard let view = producer.directory.targets(of: topic) else { continue }
            let truth = publishedTargets(topic)
            if view != truth {
                stale.append("\(producer.name) lists \(topic) at \(view.map { "\($0.partition)" }.joined(separator: ",")), "
                             + "ZooKeeper registers \(truth.map { "\($0.partition)" }.joined(separator: ","))")
            }
        }
        return stale
    }

    /// What a producer may send `topic` to according to ZooKeeper now: each master registered
    /// under `topics-pub/<topic>` with a URI, its partitions, sorted by (broker, partition).
    func publishedTargets(_ topic: String) -> [PublishDirectory.Target] {
        var targets: [PublishDirectory.Target] = []
        var masters: [(Int, TopicRegistration)] = []
        for child in zooKeeper.children(of: layout.topicPubPath(topic)) {
            guard let name = BrokerNodeName(child), name.isMaster,
                  let data = zooKeeper.data(at: layout.topicPubPath(topic) + "/" + child),
                  let registration = TopicRegistration(json: String(decoding: data, as: UTF8.self)) else { continue }
            masters.append((name.brokerId, registration))
        }
        for (broker, registration) in masters.sorted(by: { $0.0 < $1.0 }) {
            guard let uri = zooKeeper.data(at: layout.masterPath(broker)), !uri.isEmpty else { continue }
            for partition in 0..<registration.numParts {
                targets.append(PublishDirectory.Target(partition: BrokerPartition(brokerId: broker, partition: partition),
                                                       uri: String(decoding: uri, as: UTF8.self)))
            }
        }
        return targets
    }
}
