import NIOCore
import ProtocolCore
import Runtime

/// A producer's connection to one broker: its `ProducerMachine` and the sends awaiting answers.
/// Touched only on the client loop; `@unchecked` so callbacks can carry it back there.
final class ProducerLink: @unchecked Sendable {
    let address: BrokerAddress
    let brokerId: Int
    var machine: ProducerMachine
    var channel: BrokerChannel?
    var pending: [UInt64: PendingSend] = [:]
    /// Sends routed here during one drain of the inbox, fed to the machine in one `.sendAll` when
    /// the drain ends (`ClientEngine.flushOutboxes`).
    var outbox: [ProducerMachine.Send] = []

    init(address: BrokerAddress, brokerId: Int, settings: ProducerMachine.Settings) {
        self.address = address
        self.brokerId = brokerId
        machine = ProducerMachine(settings: settings)
    }
}

struct PendingSend {
    var topic: String
    var partition: BrokerPartition?
    var completion: @Sendable (Result<SendResult, SendError>) -> Void
}

/// A topic's partitions as the producer path needs them, rebuilt when the directory reports a
/// change (not per send).
struct TopicRoute {
    var partitions: [BrokerPartition]
    var addresses: [BrokerAddress?]
    var index: [BrokerPartition: Int]

    init(_ targets: [PublishDirectory.Target]) {
        partitions = targets.map(\.partition)
        addresses = targets.map { BrokerAddress(uri: $0.uri) }
        index = Dictionary(targets.enumerated().map { ($1.partition, $0) }, uniquingKeysWith: { first, _ in first })
    }
}

/// A send waiting in the inbox for the loop, with its put payload and checksum already made on
/// the sending thread (work the loop, which every send and answer passes, does not have to do).
struct QueuedSend: Sendable {
    var producer: MetaQProducer
    var topic: String
    var data: [UInt8]
    var attribute: String?
    var completion: @Sendable (Result<SendResult, SendError>) -> Void
    var flag: Int32
    var payload: [UInt8]
    var checksum: Int32

    init(producer: MetaQProducer, topic: String, data: [UInt8], attribute: String?,
         completion: @escaping @Sendable (Result<SendResult, SendError>) -> Void) {
        self.producer = producer
        self.topic = topic
        self.data = data
        self.attribute = attribute
        self.completion = completion
        (flag, payload) = MessagePayload.encode(attribute: attribute, data: data)
        checksum = CRC32.metaqChecksum(payload)
    }
}

struct ProducerKey: Hashable {
    var producer: Int
    var address: BrokerAddress

    /// Looked up per send: hashes the producer and the port, not the host and URI strings
    /// (equality still compares the whole address).
    func hash(into hasher: inout Hasher) {
        hasher.combine(producer)
        hasher.combine(address.port)
    }
}

extension ClientEngine {
    // MARK: discovery (§3.3)

    func publish(_ topic: String, timeoutMs: Int64) async throws -> [BrokerPartition] {
        if isDirect { return [] }
        let waiter: EventLoopFuture<Void> = try await onLoop {
            let promise = self.loop.makePromise(of: Void.self)
            let id = self.nextWaiterId
            self.nextWaiterId += 1
            self.topicWaiters[id] = promise
            // Ends when the topic is listed or after `timeoutMs` (the send then reports no partition).
            self.routerEvent(.awaitTopic(waiter: id, topic: topic, timeoutMs: timeoutMs))
            return promise.futureResult
        }
        try await waiter.get()
        return await partitions(of: topic)
    }

    func partitions(of topic: String) async -> [BrokerPartition] {
        (try? await onLoop { self.directory.targets(of: topic)?.map(\.partition) ?? [] }) ?? []
    }

    func directoryEvent(_ event: PublishDirectory.Event) {
        for action in directory.handle(event, now: Clocks.monotonic()) {
            switch action {
            case .coordinate(let request, let tag):
                coordinate(request, tag: tag, for: .directory)
            case .partitionsChanged(let topic, let targets):
                topicRoutes[topic] = TopicRoute(targets)
                logger.info("partitions of \(topic): \(targets.map { "\($0.partition)@\($0.uri)" }.joined(separator: " "))")
                routerEvent(.partitionsChanged(topic: topic, targets))
                orderedPartitionsChanged(topic, targets)
            case .scheduleTick(let when):
                at(when) { self.directoryEvent(.tick) }
            }
        }
    }

    // MARK: sending

    /// Queues the send for the loop. Sends that arrive while the loop has not drained the inbox yet
    /// ride on the hop already scheduled: one cross-thread wake-up per batch, not per message.
    func send(producer: MetaQProducer, topic: String, data: [UInt8], attribute: String?,
              completion: @escaping @Sendable (Result<SendResult, SendError>) -> Void) {
        let send = QueuedSend(producer: producer, topic: topic, data: data, attribute: attribute, completion: completion)
        let first = sendInbox.withLock { inbox in
            inbox.append(send)
            return inbox.count == 1
        }
        if first { loop.execute { self.drainSendInbox() } }
    }

    private func drainSendInbox() {
        let sends = sendInbox.withLock { inbox in
            defer { inbox.removeAll(keepingCapacity: true) }
            return inbox
        }
        isDrainingSends = true
        for send in sends { route(send) }
        isDrainingSends = false
        flushOutboxes()
    }

    /// Feeds each link the sends routed to it during the drain, in their order, in one event.
    private func flushOutboxes() {
        let links = linksWithOutbox
        linksWithOutbox = []
        for link in links {
            let sends = link.outbox
            link.outbox = []
            producerEvent(link, .sendAll(sends))
        }
    }

    /// Direct mode picks the server here; in ZooKeeper mode the router decides when and among
    /// which partitions the send goes (a topic not known yet is published and waited for).
    private func route(_ send: QueuedSend) {
        let id = nextSendId
        nextSendId += 1
        switch mode {
        case .direct(let servers):
            guard !isShutDown else {
                send.completion(.failure(SendError(kind: .notSent("the client is shut down"), topic: send.topic)))
                return
            }
            let index = send.producer.settings.selector.select(
                topic: send.topic, partitions: directPartitions, data: send.data, attribute: send.attribute)?.brokerId ?? 0
            dispatch(id, send, to: servers[min(index, servers.count - 1)], partition: nil, brokerId: index)
        case .zooKeeper:
            let settings = send.producer.settings
            routerEvent(.send(id: id, topic: send.topic,
                              wait: .init(maxBacklog: settings.maxQueued, timeoutMs: settings.discoveryTimeoutMs)),
                        current: (id, send))
        }
    }

    /// Feeds the router and carries out what it decides. `current` is the send of a `.send` event,
    /// kept by the engine only if the router holds it (waiting for discovery).
    func routerEvent(_ event: ProducerRouter.Event, current: (id: UInt64, send: QueuedSend)? = nil) {
        let actions = router.handle(event, now: Clocks.monotonic())
        if let current, !actions.contains(where: { action in
            switch action {
            case .route(let id, _, _), .fail(let id, _, _): id == current.id
            default: false
            }
        }) {
            waitingSends[current.id] = current.send
        }
        for action in actions {
            switch action {
            case .publish(let topic):
                directoryEvent(.publish(topic))
            case .route(let id, let topic, let partitions):
                guard let send = current?.id == id ? current?.send : waitingSends.removeValue(forKey: id) else { continue }
                guard let chosen = send.producer.settings.selector.select(topic: topic, partitions: partitions,
                                                                         data: send.data, attribute: send.attribute),
                      let hit = topicRoutes[topic]?.index[chosen], let address = topicRoutes[topic]?.addresses[hit] else {
                    send.completion(.failure(SendError(kind: .noPartition, topic: topic)))
                    continue
                }
                dispatch(id, send, to: address, partition: chosen, brokerId: chosen.brokerId)
            case .fail(let id, let topic, let reason):
                guard let send = current?.id == id ? current?.send : waitingSends.removeValue(forKey: id) else { continue }
                let kind: SendError.Kind = switch reason {
                case .noPartition, .discoveryTimedOut: .noPartition
                case .backlogFull(let bound): .notSent("\(bound) sends already wait for the topic's partitions")
                case .shutDown(let wasWaiting): .notSent(wasWaiting ? "the client shut down" : "the client is shut down")
                }
                send.completion(.failure(SendError(kind: kind, topic: topic)))
            case .topicWaitEnded(let waiter, _):
                topicWaiters.removeValue(forKey: waiter)?.succeed(())
            case .scheduleTick(let when):
                at(when) { self.routerEvent(.tick) }
            }
        }
    }

    /// Hands the message to the producer machine of `address`'s connection.
    private func dispatch(_ id: UInt64, _ send: QueuedSend, to address: BrokerAddress, partition: BrokerPartition?, brokerId: Int) {
        let producer = send.producer
        let key = ProducerKey(producer: producer.id, address: address)
        let link = producerLinks[key] ?? {
            let link = ProducerLink(address: address, brokerId: brokerId, settings: .init(
                requestTimeoutMs: producer.settings.requestTimeoutMs, maxInFlight: producer.settings.maxInFlight,
                maxQueued: producer.settings.maxQueued))
            producerLinks[key] = link
            return link
        }()
        link.pending[id] = PendingSend(topic: send.topic, partition: partition, completion: send.completion)
        let put = ProducerMachine.Send(id: id, topic: send.topic, partition: Int32(partition?.partition ?? -1),
                                       flag: send.flag, payload: send.payload, checksum: send.checksum)
        guard isDrainingSends else {
            producerEvent(link, .sendAll([put]))
            return
        }
        if link.outbox.isEmpty { linksWithOutbox.append(link) }
        link.outbox.append(put)
    }

    /// Fails every send still waiting for an answer or a route: the client is shutting down.
    func abandonSends() {
        routerEvent(.shutDown)
        precondition(waitingSends.isEmpty, "the router failed every waiting send at shutdown")
        for link in producerLinks.values {
            link.channel?.close()
            link.channel = nil
            for id in link.pending.keys.sorted() {
                guard let pending = link.pending.removeValue(forKey: id) else { continue }
                pending.completion(.failure(SendError(kind: .unknownOutcome("the client shut down with the send in flight or queued"),
                                                      topic: pending.topic, partition: pending.partition, broker: link.address.uri)))
            }
        }
        producerLinks.removeAll()
    }

    func producerEvent(_ link: ProducerLink, _ event: ProducerMachine.Event) {
        for action in link.machine.handle(event, now: Clocks.monotonic()) {
            switch action {
            case .connect:
                link.channel = BrokerChannel(
                    address: link.address, loop: loop, timeoutMs: link.machine.settings.requestTimeoutMs,
                    onOpen: { [weak link] in link.map { self.producerEvent($0, .connected) } },
                    onFrames: { [weak link] frames in link.map { self.producerEvent($0, .frames(frames)) } },
                    onClose: { [weak link] in link.map { self.producerEvent($0, .connectionLost) } })
            case .sendFrame(let frame):
                link.channel?.send(frame)
            case .disconnect:
                link.channel?.close()
                link.channel = nil
            case .scheduleTick(let when):
                at(when) { [weak link] in link.map { self.producerEvent($0, .tick) } }
            case .completed(let id, let outcome):
                guard let pending = link.pending.removeValue(forKey: id) else { continue }
                pending.completion(Self.result(outcome, pending, link))
            }
        }
    }

    static func result(_ outcome: SendOutcome, _ pending: PendingSend, _ link: ProducerLink) -> Result<SendResult, SendError> {
        let broker = link.address.uri
        switch outcome {
        case .acknowledged(let msgId, let partition, let offset):
            return .success(SendResult(msgId: msgId, partition: BrokerPartition(brokerId: link.brokerId, partition: Int(partition)),
                                       offset: offset, broker: broker))
        case .failed(let code, let text):
            return .failure(SendError(kind: .refused(code: code, text: text), topic: pending.topic, partition: pending.partition, broker: broker))
        case .unknown(let reason):
            return .failure(SendError(kind: .unknownOutcome("\(reason)"), topic: pending.topic, partition: pending.partition, broker: broker))
        case .rejected(let reason):
            return .failure(SendError(kind: .notSent("\(reason)"), topic: pending.topic, partition: pending.partition, broker: broker))
        }
    }
}

extension SendError {
    init(kind: Kind, topic: String) {
        self.init(kind: kind, topic: topic, partition: nil, broker: nil)
    }
}
