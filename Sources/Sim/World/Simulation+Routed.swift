import ProtocolCore

/// The routed producers' driver (reference §3.3), wired as `ClientEngine+Producer` wires the
/// client: the router asks the directory to follow a topic, the directory's partition lists go to
/// the router, and a `.route` picks one of the partitions (from the routed stream), maps its
/// broker URI to a broker and hands the put to that broker's `ProducerMachine`. A `.fail` is a
/// send certainly stored nowhere: recorded as rejected.
extension Simulation {
    enum RoutedEvent {
        case produce(Int)
        case routerTick(Int)
        case directoryTick(Int)
        case linkTick(Int, broker: Int)
        /// The next fault, `publish(topic)` wait of the routed producers (SimRoutedFaults).
        case fault
        /// A routed producer shuts down (its router, directory and session); postponed a few
        /// times while nothing waits for discovery.
        case shutDown(Int, tries: Int)
        /// The application of a routed producer calls `publish(topic)`.
        case publishWait(Int)
    }

    func startRouted() {
        guard let spec = options.routed else { return }
        let firstPrefix = options.producers + (options.ordered?.producers ?? 0)
        for i in 0..<spec.producers {
            let producer = SimRoutedProducer(index: i, keyPrefix: firstPrefix + i, total: spec.messages,
                                             firstClient: nextClient, brokers: options.brokers,
                                             router: ProducerRouter(canary: bugs.contains(.routerForgetsWaitingOnShutDown)
                                                 ? .forgetWaitingOnShutDown : nil))
            nextClient += options.brokers
            routedProducers.append(producer)
            producer.session = openSession { [unowned self, unowned producer] event in
                directoryHandle(producer, .coordination(event))
            }
            schedule(.routed(.produce(i)), afterNs: Int64(routedRng.int(in: 0...50)) * 1_000_000)
        }
        startRoutedFaults()
    }

    /// The routed producer and link of a client id, nil for other clients.
    func routedLink(_ client: Int) -> (SimRoutedProducer, SimProducerLink)? {
        for producer in routedProducers {
            if let link = producer.links.first(where: { $0.client == client }) { return (producer, link) }
        }
        return nil
    }

    func dispatch(_ event: RoutedEvent) {
        switch event {
        case .produce(let i): produceRouted(routedProducers[i])
        case .routerTick(let i): routerHandle(routedProducers[i], .tick)
        case .directoryTick(let i): directoryHandle(routedProducers[i], .tick)
        case .linkTick(let i, let broker):
            let producer = routedProducers[i]
            routedLinkHandle(producer, producer.links[broker], .tick)
        case .fault:
            guard !inLiveness else { return }
            injectRoutedFault()
            scheduleNextRoutedFault()
        case .shutDown(let i, let tries):
            shutDownRouted(routedProducers[i], tries: tries)
        case .publishWait(let i):
            publishWait(routedProducers[i])
        }
    }

    private func produceRouted(_ producer: SimRoutedProducer) {
        guard producer.produced < producer.total, let spec = options.routed else { return }
        let sequence = producer.produced
        producer.produced += 1
        let payload = SimPayload.make(producer: producer.keyPrefix, sequence: sequence,
                                      size: routedRng.int(in: options.messageSizes), rng: &routedRng)
        let topic = routedRng.pick(options.topics).name
        let key = SimPayload.key(producer: producer.keyPrefix, sequence: sequence)
        producer.unrouted[key] = payload
        routerHandle(producer, .send(id: key, topic: topic,
                                     wait: .init(maxBacklog: spec.maxBacklog, timeoutMs: Int64(spec.discoveryTimeoutMs))))
        shutDownIfWaiting(producer)
        if producer.produced < producer.total {
            schedule(.routed(.produce(producer.index)), afterNs: Int64(routedRng.int(in: options.produceIntervalMs)) * 1_000_000 + 1)
        }
    }

    func routerHandle(_ producer: SimRoutedProducer, _ event: ProducerRouter.Event) {
        for action in producer.router.handle(event, now: instant) {
            switch action {
            case .publish(let topic):
                directoryHandle(producer, .publish(topic))
            case .route(let id, let topic, let partitions):
                route(producer, id, topic, partitions)
            case .fail(let id, let topic, let reason):
                guard let payload = producer.unrouted.removeValue(forKey: id) else {
                    return fail("\(producer.name): the router failed a send it was never given: \(id)")
                }
                producer.completed += 1
                ledger[id] = Sent(producer: producer.keyPrefix, broker: -1, topic: topic, payload: payload, outcome: .rejected)
                counters.rejectedPuts += 1
                if reason == .shutDown(wasWaiting: true) { counters.shutdownFailedSends += 1 }
                trace(.routed, Int64(producer.index), 1, "\(producer.name) send #\(id & 0xFFFF_FFFF) to \(topic) failed: \(reason)")
            case .topicWaitEnded(let waiter, let topic):
                publishWaitEnded(producer, waiter, topic)
            case .scheduleTick(let at):
                schedule(.routed(.routerTick(producer.index)), atNs: at.nanoseconds)
            }
        }
    }

    func directoryHandle(_ producer: SimRoutedProducer, _ event: PublishDirectory.Event) {
        guard let session = producer.session else { return }
        for action in producer.directory.handle(event, now: instant) {
            switch action {
            case .coordinate(let request, let tag):
                session.submit(request, tag: tag)
            case .partitionsChanged(let topic, let targets):
                trace(.routed, Int64(producer.index), 2,
                      "\(producer.name) \(topic) partitions: \(targets.map { "\($0.partition)" }.joined(separator: ","))")
                routerHandle(producer, .partitionsChanged(topic: topic, targets))
            case .scheduleTick(let at):
                schedule(.routed(.directoryTick(producer.index)), atNs: at.nanoseconds)
            }
        }
    }

    /// The application's partition selector (random, from the routed stream), then the put to the
    /// partition's broker; it enters the ledger as it goes out.
    private func route(_ producer: SimRoutedProducer, _ id: UInt64, _ topic: String, _ partitions: [BrokerPartition]) {
        guard let payload = producer.unrouted.removeValue(forKey: id) else {
            return fail("\(producer.name): the router routed a send it was never given: \(id)")
        }
        let chosen = routedRng.pick(partitions)
        guard let target = producer.directory.targets(of: topic)?.first(where: { $0.partition == chosen }) else {
            return fail("\(producer.name): routed \(topic) to \(chosen), which the directory does not list")
        }
        guard let b = broker(forURI: target.uri), b == chosen.brokerId else {
            return fail("\(producer.name): \(topic) partition \(chosen) listed at \(target.uri), not that broker's URI")
        }
        ledger[id] = Sent(producer: producer.keyPrefix, broker: b, topic: topic, payload: payload)
        counters.routedSends += 1
        trace(.routed, Int64(producer.index), 3, "\(producer.name) routes #\(id & 0xFFFF_FFFF) to broker\(b) \(topic)-\(chosen.partition)")
        routedLinkHandle(producer, producer.links[b], .send(id: id, topic: topic, partition: Int32(chosen.partition),
                                                            flag: 0, payload: payload))
    }

    func routedLinkHandle(_ producer: SimRoutedProducer, _ link: SimProducerLink, _ event: ProducerMachine.Event) {
        linkHandle(link, event) { action in
            switch action {
            case .completed(let id, let outcome):
                producer.completed += 1
                record(outcome, of: id)
            case .scheduleTick(let at):
                schedule(.routed(.linkTick(producer.index, broker: link.broker)), atNs: at.nanoseconds)
            case .connect, .sendFrame, .disconnect:
                break
            }
        }
    }

    func routedWaiting() -> [String] {
        var waiting: [String] = routedProducers.compactMap { producer in
            producer.isDone ? nil : "\(producer.name): \(producer.completed)/\(producer.total) completed, "
                + "\(producer.router.waitingSends) waiting for discovery"
        }
        guard options.routedFaults != nil else { return waiting }
        for producer in routedProducers {
            if !producer.waiters.isEmpty { waiting.append("\(producer.name): \(producer.waiters.count) publish() wait(s) unanswered") }
            waiting += staleViews(of: producer)
        }
        return waiting
    }

    func collectRoutedCounters() {
        guard options.routed != nil else { return }
        counters.routedSeeds = 1
        if options.routedFaults != nil { counters.routedFaultSeeds = 1 }
        for producer in routedProducers {
            counters.discoveryWaits += Int(producer.router.counters.discoveryWaits)
            counters.discoveryTimeouts += Int(producer.router.counters.discoveryTimeouts)
            counters.backlogRefusals += Int(producer.router.counters.backlogRefusals)
            counters.producerTimeouts += producer.links.map(\.machine.counters.timeouts).reduce(0, +)
        }
    }
}
