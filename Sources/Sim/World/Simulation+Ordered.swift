import ProtocolCore
import StoreCore

/// The ordered producers' driver (reference §5.6): the production `OrderedSendQueue` with its
/// `OrderedSpool` on the producer's `SimDisk` and one `ProducerMachine` per broker; every answer
/// goes back to the queue as a later event, as the client's store queue and loop hops do. Crashes
/// (some with a power loss of the disk) hit it in the safety phase; a restart reopens the spool
/// and tells the queue what it holds.
extension Simulation {
    enum OrderedEvent {
        case produce(Int)
        case tick(Int, incarnation: Int)
        case linkTick(Int, broker: Int, incarnation: Int)
        case answer(Int, incarnation: Int, OrderedSendQueue.Event)
        case crash(Int)
        case restart(Int)
    }

    static let orderedRoot = "/home/sim/.meta_ordered"

    func startOrdered() {
        guard let spec = options.ordered else { return }
        for i in 0..<spec.producers {
            let producer = SimOrderedProducer(index: i, keyPrefix: options.producers + i, total: spec.messages,
                                              firstClient: nextClient, brokers: options.brokers)
            nextClient += options.brokers
            orderedProducers.append(producer)
            restartOrdered(producer)
            for _ in 0..<spec.crashes {
                schedule(.ordered(.crash(i)), afterNs: Int64(orderedRng.int(in: 1...options.safetyPhaseMs)) * 1_000_000)
            }
        }
    }

    /// The ordered producer and link of a client id, nil for other clients.
    func orderedLink(_ client: Int) -> (SimOrderedProducer, SimProducerLink)? {
        for producer in orderedProducers {
            if let link = producer.links.first(where: { $0.client == client }) { return (producer, link) }
        }
        return nil
    }

    func dispatch(_ event: OrderedEvent) {
        switch event {
        case .produce(let i):
            produceOrdered(orderedProducers[i])
        case .tick(let i, let incarnation):
            let producer = orderedProducers[i]
            if producer.isUp && producer.incarnation == incarnation { orderedHandle(producer, .tick) }
        case .linkTick(let i, let broker, let incarnation):
            let producer = orderedProducers[i]
            if producer.isUp && producer.incarnation == incarnation { linkHandle(producer, producer.links[broker], .tick) }
        case .answer(let i, let incarnation, let answer):
            let producer = orderedProducers[i]
            if producer.isUp && producer.incarnation == incarnation { orderedHandle(producer, answer) }
        case .crash(let i):
            if !inLiveness && orderedProducers[i].isUp { crashOrdered(orderedProducers[i]) }
        case .restart(let i):
            if !orderedProducers[i].isUp { restartOrdered(orderedProducers[i]) }
        }
    }

    // MARK: The application

    private func produceOrdered(_ producer: SimOrderedProducer) {
        guard producer.produced < producer.total else { return }
        let next = Int64(orderedRng.int(in: options.produceIntervalMs)) * 1_000_000 + 1
        guard producer.isUp else { return schedule(.ordered(.produce(producer.index)), afterNs: next) }
        let sequence = producer.produced
        producer.produced += 1
        let payload = SimPayload.make(producer: producer.keyPrefix, sequence: sequence,
                                      size: orderedRng.int(in: options.messageSizes), rng: &orderedRng)
        let topic = orderedRng.pick(options.topics)
        let lane = OrderedLane(topic: topic.name, partition: BrokerPartition(brokerId: orderedRng.int(in: 0..<options.brokers),
                                                                             partition: orderedRng.int(in: 0..<topic.partitions)))
        let key = SimPayload.key(producer: producer.keyPrefix, sequence: sequence)
        // Never `.acknowledged` in the ledger: a spooled message may be stored twice, at two offsets.
        ledger[key] = Sent(producer: producer.keyPrefix, broker: lane.partition.brokerId, topic: lane.topic,
                           payload: payload, outcome: .unknown)
        orderedLedger.lanes[key] = lane
        producer.pendingKeys.insert(key)
        orderedHandle(producer, .send(id: key, lane: lane, flag: 0, payload: payload))
        if producer.produced < producer.total { schedule(.ordered(.produce(producer.index)), afterNs: next) }
    }

    // MARK: The queue

    func orderedHandle(_ producer: SimOrderedProducer, _ event: OrderedSendQueue.Event) {
        for action in producer.queue.handle(event, now: instant) {
            switch action {
            case .transmit(let token, let lane, let flag, let payload):
                producer.transmitKeys[token] = SimPayload.key(of: payload)
                linkHandle(producer, producer.links[lane.partition.brokerId],
                           .send(id: token, topic: lane.topic, partition: Int32(lane.partition.partition), flag: flag, payload: payload))
            case .spool(let token, let lane, let flag, let payload):
                answer(producer, .spoolWritten(token: token, succeeded: spoolWrite(producer, lane, flag, payload)))
            case .readSpool(let lane, let count):
                if let read = try? producer.spool?.head(lane, max: count) {
                    answer(producer, .spoolRead(lane: lane, read))
                } else {
                    counters.orderedSpoolFailures += 1
                    answer(producer, .spoolReadFailed(lane: lane))
                }
            case .unspool(let lane, let through):
                answer(producer, .unspooled(lane: lane, through: through, succeeded: spoolRemove(producer, lane, through)))
            case .completed(let id, let outcome):
                completed(producer, id, outcome)
            case .scheduleTick(let at):
                schedule(.ordered(.tick(producer.index, incarnation: producer.incarnation)), atNs: at.nanoseconds)
            }
        }
    }

    /// Answers reach the queue as later events (never from inside its own action loop), in order.
    private func answer(_ producer: SimOrderedProducer, _ event: OrderedSendQueue.Event) {
        schedule(.ordered(.answer(producer.index, incarnation: producer.incarnation, event)), afterNs: 0)
    }

    /// Appends (synced) to the lane's spool; false when the write failed. The canary reports
    /// every third write written without writing it.
    private func spoolWrite(_ producer: SimOrderedProducer, _ lane: OrderedLane, _ flag: Int32, _ payload: [UInt8]) -> Bool {
        if options.canaryDropSpooled && orderedRng.chance(0.34) {
            counters.spoolCanaryDrops += 1
            return true
        }
        guard let spool = producer.spool else { return false }
        if orderedRng.chance(options.ordered?.spoolFaultProbability ?? 0) { producer.disk.failNextSync = true }
        defer { producer.disk.failNextSync = false }
        do {
            try spool.append(lane, flag: flag, payload: payload)
            return true
        } catch {
            // As the client: the send is told it failed; the store rolls the failed record back
            // before its next use, and the lane's earlier messages stay readable.
            counters.orderedSpoolFailures += 1
            return false
        }
    }

    /// Removes replayed messages (synced); false when that failed: they are left in the spool and
    /// sent again (duplicates), never lost. Faults hit removals as they hit writes.
    private func spoolRemove(_ producer: SimOrderedProducer, _ lane: OrderedLane, _ through: UInt64) -> Bool {
        guard let spool = producer.spool else { return false }
        let faults = options.ordered?.spoolFaultProbability ?? 0
        if faults > 0 && orderedRng.chance(faults) { producer.disk.failNextSync = true }
        defer { producer.disk.failNextSync = false }
        do {
            try spool.removeHead(lane, through: through)
            return true
        } catch {
            counters.orderedSpoolFailures += 1
            return false
        }
    }

    func reopenSpool(_ producer: SimOrderedProducer) {
        try? producer.spool?.close()
        producer.spool = try? OrderedSpool(storage: producer.disk, root: Self.orderedRoot)
    }

    private func completed(_ producer: SimOrderedProducer, _ key: UInt64, _ outcome: OrderedSendOutcome) {
        producer.pendingKeys.remove(key)
        switch outcome {
        case .sent: counters.orderedSent += 1
        case .spooled:
            counters.orderedSpooled += 1
            orderedLedger.spooled.insert(key)
        case .refused: counters.orderedRefused += 1
        case .notAccepted: counters.orderedNotAccepted += 1
        }
    }

    // MARK: Connections

    func linkHandle(_ producer: SimOrderedProducer, _ link: SimProducerLink, _ event: ProducerMachine.Event) {
        linkHandle(link, event) { action in
            switch action {
            case .completed(let token, let outcome):
                if case .acknowledged = outcome, let key = producer.transmitKeys[token] { reachedBroker(key) }
                producer.transmitKeys[token] = nil
                answer(producer, .transmitted(token: token, outcome))
            case .scheduleTick(let at):
                schedule(.ordered(.linkTick(producer.index, broker: link.broker, incarnation: producer.incarnation)), atNs: at.nanoseconds)
            case .connect, .sendFrame, .disconnect:
                break
            }
        }
    }

    /// Feeds a link's machine and carries out its actions in order: the network ones (connect,
    /// send, disconnect) here, the others (completions, ticks) by `other`.
    func linkHandle(_ link: SimProducerLink, _ event: ProducerMachine.Event, other: (ProducerMachine.Action) -> Void) {
        for action in link.machine.handle(event, now: instant) {
            switch action {
            case .connect:
                link.decoder = FrameDecoder()
                link.connection = network.connect(client: link.client, broker: link.broker)
            case .sendFrame(let frame):
                guard let connection = link.connection else { continue }
                network.sendToBroker(connection, frame.encoded())
            case .disconnect:
                if let connection = link.connection { network.closedByClient(connection) }
                link.connection = nil
            case .completed, .scheduleTick:
                other(action)
            }
        }
    }

    /// The broker acknowledged a put of `key`: noted, in arrival order, for its lane.
    private func reachedBroker(_ key: UInt64) {
        guard let lane = orderedLedger.lanes[key] else { return }
        orderedLedger.acknowledged.insert(key)
        orderedLedger.acks["ordered\(Int(key >> 32) - options.producers) \(lane)", default: []].append(Int(key & 0xFFFF_FFFF))
    }
}
