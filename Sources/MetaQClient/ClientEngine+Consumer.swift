import Logging
import NIOCore
import ProtocolCore
import StoreCore
import Runtime

/// One consumer of the client: its group membership (ZooKeeper mode), its fetchers and handler.
/// Touched only on the client loop; `@unchecked` so handler tasks can carry it back there.
final class ConsumerLink: @unchecked Sendable {
    let id: Int
    let group: String
    let consumerId: String
    let settings: ConsumerSettings
    var topics: [String] = []
    var member: GroupMember?
    var fetchers: [FetchKey: FetchLink] = [:]
    var handler: ConsumerHandler?
    /// Client-side filters by topic (§5.7).
    var filters: [String: @Sendable (ReceivedMessage) throws -> Bool] = [:]
    var offsetFile: LocalOffsetFile?
    /// Completed when the consumer has left the group (`run` returns then).
    var finished: EventLoopPromise<Void>?
    var closing: EventLoopPromise<Void>?
    /// Direct mode: offsets processed, written to the local file on commit.
    var directOffsets: [FetchKey: StoredOffset] = [:]
    /// Recover stores by topic (§5.2). Touched only on the engine's `storeQueue`.
    var recoverStores: [String: RecoverStore] = [:]
    /// The store file slot this process holds per topic, with its lock (on `storeQueue` only).
    var recoverSlots: [String: (slot: Int, lock: FileLock)] = [:]
    /// The redelivery rounds of the recover stores (on the loop only); nil with `.drop`.
    var rounds: RecoverRounds<RecoveredMessage>?

    init(id: Int, group: String, consumerId: String, settings: ConsumerSettings) {
        self.id = id
        self.group = group
        self.consumerId = consumerId
        self.settings = settings
    }
}

struct FetchKey: Hashable, Comparable {
    var topic: String
    var partition: BrokerPartition
    static func < (a: FetchKey, b: FetchKey) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
}

/// The fetch loop of one owned partition: a `ConsumerMachine` over its own connection.
/// Touched only on the client loop; `@unchecked` so handler tasks can carry it back there.
final class FetchLink: @unchecked Sendable {
    let key: FetchKey
    let address: BrokerAddress
    var machine: ConsumerMachine
    var channel: BrokerChannel?
    var isStopped = false
    /// The machine's `acknowledged` last handed to the group member or the offset file.
    var recorded: StoredOffset
    /// The handler bookkeeping of this fetch run (dedup, manual ack, rollback).
    var tracker: DeliveryTracker

    init(key: FetchKey, address: BrokerAddress, machine: ConsumerMachine, tracker: DeliveryTracker) {
        self.key = key
        self.address = address
        self.machine = machine
        self.tracker = tracker
        recorded = machine.acknowledged
    }
}

extension ClientEngine {
    func addConsumer(group: String, consumerId: String, settings: ConsumerSettings) -> Int {
        let id = newId()
        loop.execute {
            self.consumers[id] = ConsumerLink(id: id, group: group, consumerId: consumerId, settings: settings)
        }
        return id
    }

    func subscribe(consumer id: Int, topic: String, filter: (@Sendable (ReceivedMessage) throws -> Bool)?) {
        loop.execute {
            guard let link = self.consumers[id] else { return }
            if !link.topics.contains(topic) { link.topics.append(topic) }
            link.filters[topic] = filter
        }
    }

    func owned(consumer id: Int) async -> [String: [BrokerPartition]] {
        (try? await onLoop {
            guard let link = self.consumers[id] else { return [:] }
            if let member = link.member { return member.owned }
            var owned: [String: [BrokerPartition]] = [:]
            for key in link.fetchers.keys.sorted() { owned[key.topic, default: []].append(key.partition) }
            return owned
        }) ?? [:]
    }

    func run(consumer id: Int, handler: ConsumerHandler) async throws {
        let finished: EventLoopFuture<Void> = try await onLoop {
            guard let link = self.consumers[id] else { throw MetaQClientError("the consumer is closed") }
            guard link.handler == nil else { throw MetaQClientError("the consumer already runs") }
            guard !link.topics.isEmpty else { throw MetaQClientError("subscribe to a topic before run") }
            link.handler = handler
            let promise = self.loop.makePromise(of: Void.self)
            link.finished = promise
            try self.startConsumer(link)
            return promise.futureResult
        }
        try await finished.get()
    }

    private func startConsumer(_ link: ConsumerLink) throws {
        if case .localFile(let path) = link.settings.offsetStorage {
            link.offsetFile = try LocalOffsetFile(path: path)
        }
        openRecoverStores(link)
        switch mode {
        case .direct(let servers):
            for topic in link.topics.sorted() {
                for partition in link.settings.directPartitions {
                    guard partition.brokerId < servers.count else {
                        throw MetaQClientError("direct partition \(partition): there is no broker \(partition.brokerId) in the server list")
                    }
                    let key = FetchKey(topic: topic, partition: partition)
                    let stored = link.offsetFile?.offset(group: link.group, topic: topic, partition: partition)
                    startFetcher(link, key, servers[partition.brokerId], offset: stored?.offset ?? link.settings.startOffset)
                }
            }
            scheduleDirectCommit(link)
        case .zooKeeper:
            let storage: OffsetStorageMode = link.offsetFile == nil ? .zooKeeper : .external
            link.member = GroupMember(settings: .init(
                group: link.group, consumerId: link.consumerId, topics: link.topics.sorted(), layout: layout,
                strategy: link.settings.strategy, startOffset: link.settings.startOffset,
                consumeFromMaxOffset: link.settings.consumeFromMaxOffset, offsetStorage: storage,
                syncTimeMs: link.settings.rebalanceRetryDelayMs, commitIntervalMs: link.settings.commitIntervalMs))
            logger.info("joining consumer group", metadata: ["group": "\(link.group)", "consumer": "\(link.consumerId)",
                                                             "topics": "\(link.topics.sorted())"])
            memberEvent(link.id, .start)
        }
    }

    func memberEvent(_ id: Int, _ event: GroupMember.Event) {
        guard let link = consumers[id], link.member != nil else { return }
        let actions = link.member!.handle(event, now: Clocks.monotonic())
        for action in actions { perform(action, link) }
    }

    private func perform(_ action: GroupMember.Action, _ link: ConsumerLink) {
        switch action {
        case .coordinate(let request, let tag):
            coordinate(request, tag: tag, for: .consumer(link.id))
        case .startFetching(let assignment):
            guard let address = BrokerAddress(uri: assignment.brokerURI) else {
                logger.error("broker URI cannot be used: \(assignment.brokerURI)")
                return
            }
            startFetcher(link, FetchKey(topic: assignment.topic, partition: assignment.partition), address, offset: assignment.offset)
        case .stopFetching(let topic, let partition):
            stopFetcher(link, FetchKey(topic: topic, partition: partition))
        case .loadOffsets(let topic, let partitions):
            var loaded: [BrokerPartition: StoredOffset] = [:]
            for partition in partitions {
                loaded[partition] = link.offsetFile?.offset(group: link.group, topic: topic, partition: partition)
            }
            memberEvent(link.id, .offsetsLoaded(topic: topic, loaded))
        case .storeOffsets(let commits):
            storeOffsets(link, commits.map { (FetchKey(topic: $0.topic, partition: $0.partition), $0.offset) })
        case .scheduleTick(let when):
            at(when) { self.memberEvent(link.id, .tick) }
        case .rebalanced(let topic, let owned):
            logger.info("rebalanced", metadata: ["group": "\(link.group)", "consumer": "\(link.consumerId)",
                                                 "topic": "\(topic)", "owned": "\(owned.map(\.description))"])
        case .rebalanceFailed(let attempts):
            logger.warning("rebalance failed after \(attempts) attempts (partitions claimed by others); trying again later",
                           metadata: ["group": "\(link.group)", "consumer": "\(link.consumerId)"])
        case .closed:
            finishClose(link)
        }
    }

    func storeOffsets(_ link: ConsumerLink, _ commits: [(FetchKey, StoredOffset)]) {
        guard let file = link.offsetFile else { return }
        do {
            try file.store(group: link.group, commits.map { ($0.0.topic, $0.0.partition, $0.1) })
        } catch {
            logger.error("cannot write the offset file", metadata: ["path": "\(file.path)", "error": "\(error)"])
        }
    }

    private func scheduleDirectCommit(_ link: ConsumerLink) {
        guard link.offsetFile != nil else { return }
        loop.scheduleTask(in: .milliseconds(link.settings.commitIntervalMs)) {
            guard self.consumers[link.id] === link, link.closing == nil else { return }
            self.commitDirect(link)
            self.scheduleDirectCommit(link)
        }
    }

    private func commitDirect(_ link: ConsumerLink) {
        let commits = link.directOffsets.keys.sorted().map { ($0, link.directOffsets[$0]!) }
        if !commits.isEmpty { storeOffsets(link, commits) }
    }

    // MARK: closing

    func close(consumer id: Int) async {
        let done: EventLoopFuture<Void>? = try? await onLoop {
            guard let link = self.consumers[id] else { return nil }
            if let closing = link.closing { return closing.futureResult }
            let promise = self.loop.makePromise(of: Void.self)
            link.closing = promise
            if link.member != nil {
                self.memberEvent(id, .close)
                // ZooKeeper may be unreachable: give up waiting after 5 s (the session's end
                // removes the ephemeral nodes anyway).
                self.loop.scheduleTask(in: .seconds(5)) { self.finishClose(link) }
            } else {
                self.commitDirect(link)
                self.finishClose(link)
            }
            return promise.futureResult
        }
        try? await done?.get()
        await storeQueueDrained()  // the recover stores closed and their slots given up
    }

    func finishClose(_ link: ConsumerLink) {
        guard consumers[link.id] === link else { return }
        for key in link.fetchers.keys.sorted() { stopFetcher(link, key) }
        closeRecoverStores(link)
        consumers[link.id] = nil
        link.finished?.succeed(())
        link.closing?.succeed(())
        logger.info("left consumer group", metadata: ["group": "\(link.group)", "consumer": "\(link.consumerId)"])
    }
}
