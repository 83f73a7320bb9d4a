import NIOCore
import ProtocolCore
import Runtime

/// A producer's transactional connection to one broker: its `TransactionLink` machine and the
/// requests awaiting replies. Touched only on the client loop.
final class TransactionLinkBox: @unchecked Sendable {
    let address: BrokerAddress
    var machine: TransactionLink
    var channel: BrokerChannel?
    var pending: [UInt64: @Sendable (TransactionLink.Reply) -> Void] = [:]

    init(address: BrokerAddress, settings: TransactionLink.Settings) {
        self.address = address
        machine = TransactionLink(settings: settings)
    }
}

/// A partition a transactional send may go to, with its broker's address.
struct TransactionTarget: Sendable {
    var partition: BrokerPartition
    var address: BrokerAddress
}

extension ClientEngine {
    /// Hands `requests` to the transactional link of `producer` to `address`, in this order and in
    /// one hop onto the loop (so a BEGIN submitted with a put goes out before it); `completion`
    /// runs on the loop with the replies in the same order. Callable from any thread; it does not
    /// block, so callers may submit while holding a lock that orders their submissions.
    func submitTransaction(producer: MetaQProducer, address: BrokerAddress, _ requests: [TransactionLink.Request],
                           completion: @escaping @Sendable ([TransactionLink.Reply]) -> Void) {
        loop.execute {
            guard !self.isShutDown else {
                completion(requests.map { _ in .notSent(.connectionFailed) })
                return
            }
            let key = ProducerKey(producer: producer.id, address: address)
            let link = self.transactionLinks[key] ?? {
                let link = TransactionLinkBox(address: address, settings: .init(requestTimeoutMs: producer.settings.requestTimeoutMs))
                self.transactionLinks[key] = link
                return link
            }()
            let collector = ReplyCollector(count: requests.count, completion: completion)
            for (index, request) in requests.enumerated() {
                let id = self.nextTransactionRequestId
                self.nextTransactionRequestId += 1
                link.pending[id] = { collector.set(index, $0) }
                self.transactionEvent(link, .submit(id: id, request))
            }
        }
    }

    /// The same, awaited.
    func transact(producer: MetaQProducer, address: BrokerAddress, _ requests: [TransactionLink.Request]) async -> [TransactionLink.Reply] {
        await withCheckedContinuation { continuation in
            submitTransaction(producer: producer, address: address, requests) { continuation.resume(returning: $0) }
        }
    }

    func transactionEvent(_ link: TransactionLinkBox, _ event: TransactionLink.Event) {
        for action in link.machine.handle(event, now: Clocks.monotonic()) {
            switch action {
            case .connect:
                link.channel = BrokerChannel(
                    address: link.address, loop: loop, timeoutMs: link.machine.settings.requestTimeoutMs,
                    onOpen: { [weak link] in link.map { self.transactionEvent($0, .connected) } },
                    onFrame: { [weak link] frame in link.map { self.transactionEvent($0, .frame(frame)) } },
                    onClose: { [weak link] in link.map { self.transactionEvent($0, .connectionLost) } })
            case .sendFrame(let frame):
                link.channel?.send(frame)
            case .disconnect:
                link.channel?.close()
                link.channel = nil
            case .scheduleTick(let when):
                at(when) { [weak link] in link.map { self.transactionEvent($0, .tick) } }
            case .completed(let id, let reply):
                link.pending.removeValue(forKey: id)?(reply)
            }
        }
    }

    /// Fails every transactional request still waiting: the client is shutting down (the broker
    /// rolls back the open local transactions of the closed connections).
    func abandonTransactionRequests() {
        for link in transactionLinks.values {
            link.channel?.close()
            link.channel = nil
            for id in link.pending.keys.sorted() {
                link.pending.removeValue(forKey: id)?(.lost(.connectionLost))
            }
        }
        transactionLinks.removeAll()
    }

    /// The partitions a transactional send of `topic` may go to, sorted. Direct mode knows no
    /// partitions and a transaction may not use -1 (§1.4.1), so there it is partition 0 of each
    /// server; in ZooKeeper mode the topic is published and its partitions awaited.
    func transactionTargets(topic: String, timeoutMs: Int64) async throws -> [TransactionTarget] {
        if case .direct(let servers) = mode {
            return servers.enumerated().map { TransactionTarget(partition: BrokerPartition(brokerId: $0, partition: 0), address: $1) }
        }
        _ = try await publish(topic, timeoutMs: timeoutMs)
        return try await onLoop {
            guard let route = self.topicRoutes[topic] else { return [] }
            return route.partitions.indices.compactMap { index in
                route.addresses[index].map { TransactionTarget(partition: route.partitions[index], address: $0) }
            }
        }
    }

    /// Every broker known for `topics` (ZooKeeper mode) or every server (direct mode), by broker id.
    func brokers(of topics: [String], timeoutMs: Int64) async throws -> [Int: BrokerAddress] {
        if case .direct(let servers) = mode {
            return Dictionary(uniqueKeysWithValues: servers.enumerated().map { ($0, $1) })
        }
        var common: [Int: BrokerAddress]?
        for topic in topics {
            let targets = try await transactionTargets(topic: topic, timeoutMs: timeoutMs)
            let these = Dictionary(targets.map { ($0.partition.brokerId, $0.address) }, uniquingKeysWith: { a, _ in a })
            common = common.map { $0.filter { these[$0.key] != nil } } ?? these
        }
        return common ?? [:]
    }
}

/// Gathers the replies of a batch of requests; completes when all came. Touched only on the loop.
private final class ReplyCollector: @unchecked Sendable {
    private var replies: [TransactionLink.Reply?]
    private var missing: Int
    private let completion: @Sendable ([TransactionLink.Reply]) -> Void

    init(count: Int, completion: @escaping @Sendable ([TransactionLink.Reply]) -> Void) {
        replies = Array(repeating: nil, count: count)
        missing = count
        self.completion = completion
        if count == 0 { completion([]) }
    }

    func set(_ index: Int, _ reply: TransactionLink.Reply) {
        guard replies[index] == nil else { return }
        replies[index] = reply
        missing -= 1
        if missing == 0 { completion(replies.map { $0! }) }
    }
}
