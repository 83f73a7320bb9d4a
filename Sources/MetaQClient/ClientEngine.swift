import Dispatch
import Logging
import NIOCore
import NIOPosix
import ProtocolCore
import Runtime
import Synchronization

/// The client's core: every machine (publish directory, producers per broker, group members,
/// fetchers) lives here and is touched only on `loop` (DESIGN.md §5). Public calls hop onto the
/// loop; ZooKeeper callbacks and socket events arrive on it; handlers run as tasks off it and
/// report back onto it. No locks.
final class ClientEngine: @unchecked Sendable {
    enum Mode {
        case zooKeeper(connect: String, sessionTimeoutMs: Int)
        case direct([BrokerAddress])
    }

    /// Which machine a ZooKeeper request belongs to.
    enum Owner: Hashable {
        case directory
        case consumer(Int)
    }

    let group: MultiThreadedEventLoopGroup
    let loop: any EventLoop
    let logger: Logger
    let layout: MetaZooKeeperLayout
    let mode: Mode
    var zk: ZooKeeperSession?
    /// Session-wide tag → the machine and its own tag.
    var routes: [UInt64: (owner: Owner, tag: UInt64)] = [:]
    var nextTag: UInt64 = 1
    var directory: PublishDirectory
    /// The producers' routing rules: discovery backlog, its timeout, `publish()` waits.
    var router = ProducerRouter()
    /// `publish()` waits the router holds, by waiter id.
    var topicWaiters: [UInt64: EventLoopPromise<Void>] = [:]
    var nextWaiterId: UInt64 = 1
    /// Per topic, the partitions and their brokers, from the directory's last report.
    var topicRoutes: [String: TopicRoute] = [:]
    /// Sends the router holds while their topic's partitions are discovered, by send id.
    var waitingSends: [UInt64: QueuedSend] = [:]
    var producerLinks: [ProducerKey: ProducerLink] = [:]
    /// While the send inbox is drained, routed sends collect in their links' outboxes; these are
    /// the links with a non-empty one, in the order they got their first.
    var isDrainingSends = false
    var linksWithOutbox: [ProducerLink] = []
    /// Direct mode: broker `i` of the list as partition 0 of broker id `i`, what the selector chooses among.
    let directPartitions: [BrokerPartition]
    /// Producers' transactional connections (one per producer and broker, §4.2).
    var transactionLinks: [ProducerKey: TransactionLinkBox] = [:]
    var nextTransactionRequestId: UInt64 = 1
    /// `<localIP>-<startTimeMillis>` of this client: the session ids of its producers (§4.1).
    let sessionSeed = "\(NetworkAddresses.firstNonLoopbackIPv4() ?? "127.0.0.1")-\(Clocks.wallMs())"
    /// The next producer session sequence number (§4.1: from 1); held for one increment.
    let sessionSequence = Mutex<Int>(1)
    var consumers: [Int: ConsumerLink] = [:]
    /// Ids of handled messages per group (§5.1), shared by the group's consumers in this client.
    var messageIdCaches: [String: MessageIdCache] = [:]
    /// Ordered producers (§5.6) by id.
    var orderedLinks: [Int: OrderedLink] = [:]
    var nextSendId: UInt64 = 1
    var isShutDown = false
    /// Runs the local stores' file work (recover stores, §5.2), whose every write is synced, off
    /// the event loop; the stores are touched only on it, and results come back with
    /// `loop.execute`. Serial, so a store's operations keep their order.
    let storeQueue = DispatchQueue(label: "metaq.client.local-stores")

    init(mode: Mode, layout: MetaZooKeeperLayout, logger: Logger) throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
        self.mode = mode
        if case .direct(let servers) = mode {
            directPartitions = servers.indices.map { BrokerPartition(brokerId: $0, partition: 0) }
        } else {
            directPartitions = []
        }
        self.layout = layout
        self.logger = logger
        directory = PublishDirectory(layout: layout)
    }

    /// Opens the ZooKeeper session (ZooKeeper mode); its events hop onto the loop.
    func openSession() throws {
        guard case .zooKeeper(let connect, let timeoutMs) = mode else { return }
        let loop = self.loop
        do {
            zk = try ZooKeeperSession(connect: connect, sessionTimeoutMs: timeoutMs, logger: logger) { [weak self] event in
                guard let engine = self else { return }
                loop.execute { engine.coordinationEvent(event) }
            }
        } catch {
            try? group.syncShutdownGracefully()
            throw MetaQClientError("cannot open a ZooKeeper session to \(connect): \(error)")
        }
    }

    var isDirect: Bool { if case .direct = mode { true } else { false } }

    /// Runs `body` on the loop and returns its result.
    func onLoop<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await loop.submit(body).get()
    }

    /// Sends handed over by any thread, drained on the loop (`send(producer:…)`); the lock is held
    /// for an append or a swap.
    let sendInbox = Mutex<[QueuedSend]>([])
    /// Ids of producers and consumers; taken from any thread at creation.
    let ids = Mutex<Int>(1)  // guards the next id; held for one increment

    func newId() -> Int {
        ids.withLock { value in
            defer { value += 1 }
            return value
        }
    }

    func newProducerId() -> Int { newId() }

    // MARK: ZooKeeper routing

    func coordinate(_ request: CoordinationRequest, tag: UInt64, for owner: Owner) {
        let global = nextTag
        nextTag += 1
        routes[global] = (owner, tag)
        guard let zk else {
            coordinationEvent(.reply(tag: global, .failed(.sessionExpired)))
            return
        }
        zk.submit(request, tag: global)
    }

    func coordinationEvent(_ event: CoordinationEvent) {
        switch event {
        case .reply(let global, let reply):
            guard let route = routes.removeValue(forKey: global) else { return }
            deliver(.reply(tag: route.tag, reply), to: route.owner)
        case .session(let state):
            logger.info("ZooKeeper session \(state)")
            if state == .expired { routes.removeAll() }
            fallthrough
        case .watch:
            deliver(event, to: .directory)
            for id in consumers.keys.sorted() { deliver(event, to: .consumer(id)) }
        }
    }

    func deliver(_ event: CoordinationEvent, to owner: Owner) {
        switch owner {
        case .directory: directoryEvent(.coordination(event))
        case .consumer(let id): memberEvent(id, .coordination(event))
        }
    }

    // MARK: timers

    /// Runs `body` on the loop at or after `at` (monotonic).
    func at(_ at: Instant, _ body: @escaping () -> Void) {
        let delay = max(0, at.nanoseconds - Clocks.monotonic().nanoseconds)
        loop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: .nanoseconds(delay)) { body() }
    }

    // MARK: shutdown

    /// Returns once the store work queued so far (closes, lock releases) has run.
    func storeQueueDrained() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in storeQueue.async { done.resume() } }
    }

    func shutdown() async {
        let ids = (try? await onLoop { Array(self.consumers.keys).sorted() }) ?? []
        for id in ids { await close(consumer: id) }
        try? await onLoop {
            // Ordered producers first: what they have in flight or waiting goes to their spools.
            for id in self.orderedLinks.keys.sorted() { self.closeOrdered(self.orderedLinks[id]!) }
            self.isShutDown = true
            self.abandonSends()
            self.abandonTransactionRequests()
        }
        await storeQueueDrained()
        zk?.close()
        try? await group.shutdownGracefully()
    }
}
