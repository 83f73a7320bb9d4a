import Foundation
import Logging
import ProtocolCore
import Runtime
import StoreCore

/// An ordered producer's state on the loop: its `OrderedSendQueue`, its spool and the sends
/// awaiting an outcome. Touched only on the client loop; `@unchecked` so callbacks can carry it there.
final class OrderedLink: @unchecked Sendable {
    let id: Int
    let settings: OrderedProducerSettings
    /// The configured partitions, sorted (the selector's list).
    let partitions: [BrokerPartition]
    var machine: OrderedSendQueue
    /// Once the link is handed to the loop, touched only on the engine's `storeQueue`.
    let spool: OrderedSpool
    /// `<spool root>/spool.lock`: one ordered producer per spool directory.
    let lock: FileLock
    var completions: [UInt64: (lane: OrderedLane, completion: @Sendable (Result<OrderedSendResult, SendError>) -> Void)] = [:]
    var nextId: UInt64 = 1
    /// Events produced while actions run (outcomes, spool answers): handled after them, in order,
    /// so the machine never sees an event in the middle of acting on its previous answer.
    var inbox: [OrderedSendQueue.Event] = []
    /// Topics whose listing the machine has been given (ZooKeeper mode).
    var listedTopics: Set<String> = []
    var draining = false
    var closed = false

    init(id: Int, settings: OrderedProducerSettings, spool: OrderedSpool, lock: FileLock) {
        self.lock = lock
        self.id = id
        self.settings = settings
        self.partitions = settings.partitions.sorted()
        self.spool = spool
        machine = OrderedSendQueue(settings: .init(
            maxInFlightPerLane: settings.maxInFlightPerPartition, maxWaiting: settings.maxQueued,
            maxSpooled: settings.maxSpooled,
            retryBackoff: Backoff(stepMs: settings.retryStepMs, maxMs: max(settings.retryMaxMs, settings.retryStepMs))))
    }
}

/// Ordered production (§5.6) on the client loop. The spool's file work (each write synced) runs
/// on `storeQueue`, in the order the machine asked for it, and its results come back as events.
extension ClientEngine {
    static var defaultOrderedSpoolPath: String { NSHomeDirectory() + "/.meta_ordered" }

    /// Checks the settings, opens the spool (on the caller's thread) and hands the link to the
    /// loop, which starts replaying what an earlier process spooled.
    func openOrdered(_ settings: OrderedProducerSettings) throws -> OrderedLink {
        guard !settings.partitions.isEmpty, Set(settings.partitions).count == settings.partitions.count else {
            throw MetaQClientError("an ordered producer needs a non-empty list of distinct partitions")
        }
        guard settings.maxInFlightPerPartition >= 1, settings.maxQueued >= 0, settings.maxSpooled >= 0,
              settings.retryStepMs >= 0, settings.requestTimeoutMs > 0 else {
            throw MetaQClientError("ordered producer settings out of range: maxInFlightPerPartition >= 1, counts >= 0, requestTimeoutMs > 0")
        }
        if case .direct(let servers) = mode, let bad = settings.partitions.first(where: { $0.brokerId >= servers.count }) {
            throw MetaQClientError("partition \(bad): in direct mode broker id i is the i-th of the \(servers.count) servers")
        }
        let root = settings.spoolPath ?? Self.defaultOrderedSpoolPath
        let spool: OrderedSpool
        let lock: FileLock
        do {
            try FileStorage().makeDirectory(root)
            // Two producers appending to one spool would overwrite each other's messages.
            guard let held = try FileLock.tryLock(root + "/spool.lock") else {
                throw MetaQClientError("another ordered producer (in this process or another) uses the spool at \(root); give each its own spoolPath")
            }
            lock = held
            spool = try OrderedSpool(storage: FileStorage(), root: root)
        } catch let error as MetaQClientError {
            throw error
        } catch {
            throw MetaQClientError("cannot open the ordered producer's spool at \(root): \(error)")
        }
        let link = OrderedLink(id: newId(), settings: settings, spool: spool, lock: lock)
        let recovered = spool.lanes
        loop.execute {
            self.orderedLinks[link.id] = link
            for (lane, count) in recovered {
                self.logger.info("replaying \(count) spooled messages of \(lane)")
                if !self.isDirect { self.directoryEvent(.publish(lane.topic)) }
                if let targets = self.directory.targets(of: lane.topic), link.listedTopics.insert(lane.topic).inserted {
                    self.orderedEvent(link, .partitionsListed(topic: lane.topic, targets.map(\.partition)))
                }
                self.orderedEvent(link, .recovered(lane: lane, count: count))
            }
        }
        return link
    }

    /// Hands one message to the link's machine (from any thread).
    func orderedSend(_ link: OrderedLink, _ lane: OrderedLane, data: [UInt8], attribute: String?,
                     completion: @escaping @Sendable (Result<OrderedSendResult, SendError>) -> Void) {
        let (flag, payload) = MessagePayload.encode(attribute: attribute, data: data)
        loop.execute {
            guard !self.isShutDown, !link.closed else {
                return completion(.failure(SendError(kind: .notSent("the producer is closed"), topic: lane.topic, partition: lane.partition, broker: nil)))
            }
            if !self.isDirect, link.listedTopics.insert(lane.topic).inserted {
                // Not listed after the publish wait: no broker takes the topic now, so spool.
                let listed = self.directory.targets(of: lane.topic)?.map(\.partition) ?? []
                self.orderedEvent(link, .partitionsListed(topic: lane.topic, listed))
            }
            let id = link.nextId
            link.nextId += 1
            link.completions[id] = (lane, completion)
            self.orderedEvent(link, .send(id: id, lane: lane, flag: flag, payload: payload))
        }
    }

    /// The directory reported `topic`'s partitions (ZooKeeper mode): availability for every link.
    func orderedPartitionsChanged(_ topic: String, _ targets: [PublishDirectory.Target]) {
        for id in orderedLinks.keys.sorted() {
            let link = orderedLinks[id]!
            link.listedTopics.insert(topic)
            orderedEvent(link, .partitionsListed(topic: topic, targets.map(\.partition)))
        }
    }

    /// Closes the link: nothing more is sent; its sends in flight end as unknown and, with what
    /// waits, are spooled; then the spool is closed.
    func closeOrdered(_ link: OrderedLink) {
        guard !link.closed else { return }
        orderedEvent(link, .close)
        for key in producerLinks.keys.filter({ $0.producer == link.id }).sorted(by: { $0.address.uri < $1.address.uri }) {
            guard let producer = producerLinks.removeValue(forKey: key) else { continue }
            producer.channel?.close()
            producer.channel = nil
            for id in producer.pending.keys.sorted() {
                producer.pending.removeValue(forKey: id)?.completion(.failure(SendError(
                    kind: .unknownOutcome("the producer closed with the send in flight"), topic: "", partition: nil, broker: producer.address.uri)))
            }
        }
        link.closed = true
        for id in link.completions.keys.sorted() {
            link.completions.removeValue(forKey: id)?.completion(.failure(SendError(kind: .notSent("the producer closed"), topic: "")))
        }
        storeQueue.async {  // after the writes queued before
            try? link.spool.close()
            link.lock.release()
        }
        orderedLinks[link.id] = nil
    }

    func orderedEvent(_ link: OrderedLink, _ event: OrderedSendQueue.Event) {
        link.inbox.append(event)
        guard !link.draining, !link.closed else { return }
        link.draining = true
        defer { link.draining = false }
        while !link.inbox.isEmpty {
            let next = link.inbox.removeFirst()
            for action in link.machine.handle(next, now: Clocks.monotonic()) { perform(action, link) }
        }
    }

    /// Runs `work` on the spool off the loop (in order with the link's other spool work) and feeds
    /// the event it returns back to the machine on the loop.
    private func onStoreQueue(_ link: OrderedLink, _ work: @escaping @Sendable (OrderedSpool) -> OrderedSendQueue.Event?) {
        storeQueue.async {
            guard let event = work(link.spool) else { return }
            self.loop.execute { self.orderedEvent(link, event) }
        }
    }

    private func perform(_ action: OrderedSendQueue.Action, _ link: OrderedLink) {
        switch action {
        case .transmit(let token, let lane, let flag, let payload):
            transmit(link, token, lane, flag, payload)
        case .spool(let token, let lane, let flag, let payload):
            onStoreQueue(link) { spool in
                do {
                    try spool.append(lane, flag: flag, payload: payload)
                    return .spoolWritten(token: token, succeeded: true)
                } catch {
                    self.logger.error("could not write to the ordered producer's spool: the message is not kept (the send fails; the spool rolls the write back)", metadata: [
                        "topic": "\(lane.topic)", "partition": "\(lane.partition)", "error": "\(error)"])
                    return .spoolWritten(token: token, succeeded: false)
                }
            }
        case .readSpool(let lane, let count):
            onStoreQueue(link) { spool in
                do {
                    return .spoolRead(lane: lane, try spool.head(lane, max: count))
                } catch {
                    self.logger.error("could not read the ordered producer's spool; the lane tries again after its back-off", metadata: [
                        "topic": "\(lane.topic)", "partition": "\(lane.partition)", "error": "\(error)"])
                    return .spoolReadFailed(lane: lane)
                }
            }
        case .unspool(let lane, let through):
            onStoreQueue(link) { spool in
                do {
                    try spool.removeHead(lane, through: through)
                    return .unspooled(lane: lane, through: through, succeeded: true)
                } catch {
                    self.logger.error("could not remove replayed messages from the spool; they will be sent again", metadata: [
                        "topic": "\(lane.topic)", "partition": "\(lane.partition)", "error": "\(error)"])
                    return .unspooled(lane: lane, through: through, succeeded: false)
                }
            }
        case .completed(let id, let outcome):
            guard let (lane, completion) = link.completions.removeValue(forKey: id) else { return }
            completion(orderedResult(outcome, lane))
        case .scheduleTick(let when):
            at(when) { [weak link] in link.map { self.orderedEvent($0, .tick) } }
        }
    }

    /// The broker of a lane: in direct mode the `brokerId`-th server, else the master ZooKeeper lists.
    private func address(of lane: OrderedLane) -> BrokerAddress? {
        switch mode {
        case .direct(let servers):
            return lane.partition.brokerId < servers.count ? servers[lane.partition.brokerId] : nil
        case .zooKeeper:
            guard let route = topicRoutes[lane.topic], let index = route.index[lane.partition] else { return nil }
            return route.addresses[index]
        }
    }

    /// Hands a put to the broker's `ProducerMachine` (one per broker per ordered producer); its
    /// outcome comes back as `.transmitted`.
    private func transmit(_ link: OrderedLink, _ token: UInt64, _ lane: OrderedLane, _ flag: Int32, _ payload: [UInt8]) {
        guard let address = address(of: lane) else {
            link.inbox.append(.transmitted(token: token, .rejected(.expired)))
            return
        }
        let key = ProducerKey(producer: link.id, address: address)
        let producer = producerLinks[key] ?? {
            let producer = ProducerLink(address: address, brokerId: lane.partition.brokerId, settings: .init(
                requestTimeoutMs: link.settings.requestTimeoutMs, maxInFlight: 256, maxQueued: 4096))
            producerLinks[key] = producer
            return producer
        }()
        let id = nextSendId
        nextSendId += 1
        let logger = self.logger
        producer.pending[id] = PendingSend(topic: lane.topic, partition: lane.partition) { [weak link] result in
            guard let link else { return }
            if case .failure(let error) = result { logger.info("ordered send not stored: \(error)") }
            self.orderedEvent(link, .transmitted(token: token, Self.outcome(of: result)))
        }
        producerEvent(producer, .send(id: id, topic: lane.topic, partition: Int32(lane.partition.partition),
                                      flag: flag, payload: payload))
    }

    /// The machine only needs the category of a failure; the error itself was logged.
    static func outcome(of result: Result<SendResult, SendError>) -> SendOutcome {
        switch result {
        case .success(let sent):
            return .acknowledged(msgId: sent.msgId, partition: Int32(sent.partition.partition), offset: sent.offset)
        case .failure(let error):
            switch error.kind {
            case .refused(let code, let text): return .failed(code: code, text: text)
            case .unknownOutcome: return .unknown(.connectionLost)
            case .notSent, .noPartition: return .rejected(.expired)
            }
        }
    }

    private func orderedResult(_ outcome: OrderedSendOutcome, _ lane: OrderedLane) -> Result<OrderedSendResult, SendError> {
        let broker = address(of: lane)?.uri
        switch outcome {
        case .sent(let msgId, let partition, let offset):
            return .success(.sent(SendResult(msgId: msgId, partition: BrokerPartition(brokerId: lane.partition.brokerId, partition: Int(partition)),
                                             offset: offset, broker: broker ?? "")))
        case .spooled:
            return .success(.spooled(lane.partition))
        case .refused(let code, let text):
            return .failure(SendError(kind: .refused(code: code, text: text), topic: lane.topic, partition: lane.partition, broker: broker))
        case .notAccepted(let reason):
            return .failure(SendError(kind: .notSent("ordered producer: \(reason)"), topic: lane.topic, partition: lane.partition, broker: broker))
        }
    }
}
