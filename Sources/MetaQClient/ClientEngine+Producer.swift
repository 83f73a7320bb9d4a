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

/// A send waiting in the inbox for the loop.
struct QueuedSend: Sendable {
    var producer: MetaQProducer
    var topic: String
    var data: [UInt8]
    var attribute: String?
    var completion: @Sendable (Result<SendResult, SendError>) -> Void
}

struct ProducerKey: Hashable {
    var producer: Int
    var address: BrokerAddress
}

extension ClientEngine {
    // MARK: discovery (§3.3)

    func publish(_ topic: String, timeoutMs: Int64) async throws -> [BrokerPartition] {
        if isDirect { return [] }
        let waiter: EventLoopFuture<Void> = try await onLoop {
            let promise = self.loop.makePromise(of: Void.self)
            if self.directory.targets(of: topic) != nil {
                promise.succeed(())
            } else {
                self.topicWaiters[topic, default: []].append(promise)
                self.directoryEvent(.publish(topic))
                self.loop.scheduleTask(in: .milliseconds(timeoutMs)) {
                    // Not listed yet: give up waiting (the send then reports no partition).
                    guard let index = self.topicWaiters[topic]?.firstIndex(where: { $0.futureResult === promise.futureResult }) else { return }
                    self.topicWaiters[topic]?.remove(at: index)
                    promise.succeed(())
                }
            }
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
                for waiter in topicWaiters.removeValue(forKey: topic) ?? [] { waiter.succeed(()) }
                releaseBacklog(topic)
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
        let first = sendInbox.withLock { inbox in
            inbox.append(QueuedSend(producer: producer, topic: topic, data: data, attribute: attribute, completion: completion))
            return inbox.count == 1
        }
        if first { loop.execute { self.drainSendInbox() } }
    }

    private func drainSendInbox() {
        let sends = sendInbox.withLock { inbox in
            defer { inbox.removeAll(keepingCapacity: true) }
            return inbox
        }
        for send in sends {
            route(send.producer, send.topic, send.data, send.attribute, send.completion, waited: false)
        }
    }

    /// Picks the partition and hands the message to that broker's machine. A topic not known yet
    /// is published first (one wait of `discoveryTimeoutMs`).
    private func route(_ producer: MetaQProducer, _ topic: String, _ data: [UInt8], _ attribute: String?,
                       _ completion: @escaping @Sendable (Result<SendResult, SendError>) -> Void, waited: Bool) {
        guard !isShutDown else {
            completion(.failure(SendError(kind: .notSent("the client is shut down"), topic: topic)))
            return
        }
        let target: (address: BrokerAddress, partition: BrokerPartition?, brokerId: Int)
        switch mode {
        case .direct(let servers):
            let index = producer.settings.selector.select(
                topic: topic, partitions: servers.indices.map { BrokerPartition(brokerId: $0, partition: 0) },
                data: data, attribute: attribute)?.brokerId ?? 0
            target = (servers[min(index, servers.count - 1)], nil, index)
        case .zooKeeper:
            guard let route = topicRoutes[topic] else {
                if waited {
                    completion(.failure(SendError(kind: .noPartition, topic: topic)))
                    return
                }
                awaitDiscovery(QueuedSend(producer: producer, topic: topic, data: data, attribute: attribute,
                                          completion: completion))
                return
            }
            guard !route.partitions.isEmpty,
                  let chosen = producer.settings.selector.select(topic: topic, partitions: route.partitions,
                                                                 data: data, attribute: attribute),
                  let hit = route.index[chosen], let address = route.addresses[hit] else {
                completion(.failure(SendError(kind: .noPartition, topic: topic)))
                return
            }
            target = (address, chosen, chosen.brokerId)
        }
        let key = ProducerKey(producer: producer.id, address: target.address)
        let link = producerLinks[key] ?? {
            let link = ProducerLink(address: target.address, brokerId: target.brokerId, settings: .init(
                requestTimeoutMs: producer.settings.requestTimeoutMs, maxInFlight: producer.settings.maxInFlight,
                maxQueued: producer.settings.maxQueued))
            producerLinks[key] = link
            return link
        }()
        let id = nextSendId
        nextSendId += 1
        link.pending[id] = PendingSend(topic: topic, partition: target.partition, completion: completion)
        let (flag, payload) = MessagePayload.encode(attribute: attribute, data: data)
        producerEvent(link, .send(id: id, topic: topic, partition: Int32(target.partition?.partition ?? -1),
                                  flag: flag, payload: payload))
    }

    /// A send to a topic whose partitions are not known yet waits (bounded by `maxQueued`) until
    /// the directory reports them or `discoveryTimeoutMs` passes; the first one publishes the topic.
    private func awaitDiscovery(_ send: QueuedSend) {
        let settings = send.producer.settings
        if topicBacklog[send.topic] == nil {
            topicBacklog[send.topic] = []
            directoryEvent(.publish(send.topic))
            loop.scheduleTask(in: .milliseconds(settings.discoveryTimeoutMs)) { self.releaseBacklog(send.topic) }
        }
        guard topicBacklog[send.topic]!.count < settings.maxQueued else {
            send.completion(.failure(SendError(kind: .notSent("\(settings.maxQueued) sends already wait for the topic's partitions"),
                                               topic: send.topic)))
            return
        }
        topicBacklog[send.topic]!.append(send)
    }

    /// Routes the sends that waited for `topic`'s partitions (now known, or given up on).
    private func releaseBacklog(_ topic: String) {
        for send in topicBacklog.removeValue(forKey: topic) ?? [] {
            route(send.producer, send.topic, send.data, send.attribute, send.completion, waited: true)
        }
    }

    /// Fails every send still waiting for an answer or a route: the client is shutting down.
    func abandonSends() {
        for topic in topicBacklog.keys.sorted() {
            for send in topicBacklog.removeValue(forKey: topic) ?? [] {
                send.completion(.failure(SendError(kind: .notSent("the client shut down"), topic: topic)))
            }
        }
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
                    onFrame: { [weak link] frame in link.map { self.producerEvent($0, .frame(frame)) } },
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
