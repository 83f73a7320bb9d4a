import ProtocolCore

/// Consumer groups in the world (reference §3.4, §5.1, §5.4): each member runs the production
/// `GroupMember` over its own ZooKeeper session, with offsets in ZooKeeper, and one
/// `ConsumerMachine` per partition it is told to fetch. Processing a delivery records its messages
/// as delivered to the group, then after a short delay reports `.processed` to the fetcher (which
/// then fetches on) and to the member (which commits it later).
extension Simulation {
    func startGroups() {
        for (g, spec) in options.cluster.groups.enumerated() {
            let group = SimGroup(index: g, spec: spec, manual: options.manualAck?.groups.contains(g) ?? false)
            group.members = (0..<spec.members).map { m in
                SimGroupMember(group: g, index: m, consumerId: "\(group.name)_c\(m)", machine: memberMachine(group, "\(group.name)_c\(m)"))
            }
            groups.append(group)
        }
        for group in groups {
            for member in group.members { startMember(member) }
        }
    }

    private func memberMachine(_ group: SimGroup, _ consumerId: String) -> GroupMember {
        let cluster = options.cluster
        return GroupMember(settings: .init(group: group.name, consumerId: consumerId, topics: group.topics,
                                           layout: layout, strategy: group.strategy,
                                           syncTimeMs: Int64(cluster.syncTimeMs), maxClaimRetries: 7,
                                           commitIntervalMs: Int64(cluster.commitIntervalMs), retryAfterFailureMs: 1000))
    }

    /// A member process starts (first time or after a crash): a new machine, a new session, the
    /// same consumer id.
    func startMember(_ member: SimGroupMember) {
        let group = groups[member.group]
        member.incarnation += 1
        member.isUp = true
        member.machine = memberMachine(group, member.consumerId)
        member.fetchers = [:]
        member.dedup = MessageIdCache()
        group.orphaned = group.orphaned.filter { $0.value != member.index }
        let incarnation = member.incarnation
        if zooKeeper.data(at: layout.consumerIdPath(group.name, member.consumerId)) != nil { counters.memberRestartsWithLiveSession += 1 }
        startRecovery(member)
        member.session = openSession { [unowned self, unowned member] event in
            guard member.isUp, member.incarnation == incarnation else { return }
            memberHandle(member, .coordination(event))
        }
        memberHandle(member, .start)
    }

    /// A member process dies: no commit, no goodbye; its fetchers' connections reset, its
    /// session is abandoned (its ids and owner nodes stay until the session times out).
    func crashMember(_ member: SimGroupMember) {
        let group = groups[member.group]
        counters.memberCrashes += 1
        trace(.groupFault, 3, Int64(member.index), "FAULT \(member.name) crashes (owned \(member.machine.owned.values.map(\.count).reduce(0, +)))")
        if group.members.count > 1 {
            for (topic, partitions) in member.machine.owned {
                for partition in partitions { group.orphaned[GroupSlot(topic: topic, partition: partition)] = member.index }
            }
        }
        if group.manual { noteUndecidedAtCrash(member) }
        for slot in member.fetchers.keys.sorted() { stopFetcher(member, slot) }
        absorbCounters(of: member)
        crashRecovery(member)
        member.isUp = false
        if let session = member.session { abandon(session) }
        member.session = nil
        schedule(.cluster(.memberRestart(group: member.group, member: member.index)),
                 afterNs: Int64(rng.int(in: 10...800)) * 1_000_000)
    }

    func memberHandle(_ member: SimGroupMember, _ event: GroupMember.Event) {
        guard member.isUp, let session = member.session else { return }
        if case .coordination(let happened) = event {
            traceLog.note(nowNs, "\(member.name) zk(\(session.id)): \(happened)")
        }
        for action in member.machine.handle(event, now: instant) {
            guard member.isUp else { return }
            switch action {
            case .coordinate(let request, let tag):
                traceLog.note(nowNs, "\(member.name) zk(\(session.id)) #\(tag) \(request)")
                session.submit(request, tag: tag)
                switch request {
                case .setData(let path, _), .create(let path, _, .persistent):
                    noteOffsetWrite(groups[member.group], path)
                default:
                    break
                }
            case .startFetching(let assignment):
                startFetcher(member, assignment)
            case .stopFetching(let topic, let partition):
                stopFetcher(member, GroupSlot(topic: topic, partition: partition))
            case .scheduleTick(let at):
                schedule(.cluster(.memberTick(group: member.group, member: member.index, incarnation: member.incarnation)),
                         atNs: at.nanoseconds)
            case .rebalanced(let topic, let owned):
                counters.groupRebalances += 1
                trace(.memberAction, Int64(member.group), Int64(member.index),
                      "\(member.name) rebalanced \(topic): \(owned.map(\.description).joined(separator: ","))")
            case .rebalanceFailed(let attempts):
                counters.groupRebalanceFailures += 1
                trace(.memberAction, Int64(member.group), Int64(attempts), "\(member.name) rebalance failed \(attempts) times")
            case .loadOffsets, .storeOffsets:
                fail("\(member.name) asked for external offset storage; the simulation keeps offsets in ZooKeeper")
            case .closed:
                break
            }
        }
    }

    // MARK: Fetchers

    func broker(forURI uri: String) -> Int? {
        brokers.first { $0.uri == uri }?.id
    }

    private func startFetcher(_ member: SimGroupMember, _ assignment: GroupMember.Assignment) {
        let group = groups[member.group]
        let slot = GroupSlot(topic: assignment.topic, partition: assignment.partition)
        guard let b = broker(forURI: assignment.brokerURI), b == assignment.partition.brokerId else {
            return fail("\(member.name) told to fetch \(slot) from \(assignment.brokerURI), not that partition's broker")
        }
        if member.fetchers[slot] != nil { stopFetcher(member, slot) }
        if let previous = group.orphaned.removeValue(forKey: slot), previous != member.index { counters.groupTakeovers += 1 }
        let machine = ConsumerMachine(settings: .init(
            topic: slot.topic, group: group.name, partition: Int32(slot.partition.partition), startOffset: assignment.offset,
            maxSizeBytes: options.fetchSize, maxMaxSizeBytes: 1 << 16, requestTimeoutMs: 400,
            fetchBackoff: options.handlers == nil ? .init(stepMs: 25, maxMs: 250) : .init(stepMs: 5, maxMs: 50),
            reconnectBackoff: .init(stepMs: 10, maxMs: 200), maxConsecutiveTimeouts: 2, awaitsProcessing: true,
            retry: options.handlers.map { RetryPolicy(maxFetchRetries: $0.maxFetchRetries) }, manualAck: group.manual,
            canary: group.manual && bugs.contains(.manualAckCommitsProcessed) ? .processedAcknowledgesInManualMode : nil))
        let fetcher = SimGroupFetcher(client: nextClient, group: member.group, member: member.index,
                                      incarnation: member.incarnation, slot: slot, broker: b, machine: machine,
                                      tracker: DeliveryTracker(mode: group.manual ? .manualAck : .automatic,
                                                               unackedLimit: MessageIdCache.defaultCapacity))
        nextClient += 1
        groupFetchers[fetcher.client] = fetcher
        member.fetchers[slot] = fetcher.client
        trace(.memberAction, Int64(member.group), assignment.offset, "\(member.name) fetches \(slot) from \(assignment.offset)")
        fetcherHandle(fetcher, .start)
    }

    private func stopFetcher(_ member: SimGroupMember, _ slot: GroupSlot) {
        guard let client = member.fetchers.removeValue(forKey: slot), let fetcher = groupFetchers.removeValue(forKey: client) else { return }
        if let connection = fetcher.connection { network.closedByClient(connection) }
        fetcher.connection = nil
    }

    func fetcherHandle(_ fetcher: SimGroupFetcher, _ event: ConsumerMachine.Event) {
        let before = fetcher.machine.offset
        let actions = fetcher.machine.handle(event, now: instant)
        if fetcher.manual { recordAcknowledged(fetcher) }
        for action in actions {
            guard groupFetchers[fetcher.client] === fetcher else { return }
            switch action {
            case .connect:
                fetcher.decoder = FrameDecoder()
                fetcher.connection = network.connect(client: fetcher.client, broker: fetcher.broker)
            case .sendFrame(let frame):
                guard let connection = fetcher.connection else { continue }
                network.sendToBroker(connection, frame.encoded())
            case .deliver(let messages, let next):
                deliver(messages, next, to: fetcher)
            case .offsetChanged(let offset):
                counters.groupMoves += 1
                if offset < before {
                    counters.groupBackwardMoves += 1
                    let path = layout.offsetPath(groups[fetcher.group].name, fetcher.slot.topic, fetcher.slot.partition)
                    groups[fetcher.group].backwardMoves[path] = min(offset, groups[fetcher.group].backwardMoves[path] ?? offset)
                }
            case .reportDamage(let offset, let damage):
                damaged(fetcher, at: offset, "was served damaged bytes at \(offset) (\(damage))")
            case .reportRecordTooLarge(let offset, let bytes, let fetched):
                damaged(fetcher, at: offset, "record at \(offset) too large (\(bytes.map(String.init) ?? "?") bytes, fetched \(fetched))")
            case .reportBrokerError(let code, let text):
                fail("g\(fetcher.group) fetcher of \(fetcher.slot): broker answered \(code) \(text)")
            case .recover(let message, let attempts):
                guard options.handlers != nil else {
                    return fail("g\(fetcher.group) fetcher of \(fetcher.slot) handed off \(message.offset) with no retry policy set")
                }
                handOff(fetcher, message, attempts: attempts)
            case .scheduleTick(let at):
                schedule(.cluster(.fetcherTick(client: fetcher.client)), atNs: at.nanoseconds)
            case .disconnect:
                if let connection = fetcher.connection { network.closedByClient(connection) }
                fetcher.connection = nil
            }
        }
    }

    /// Damage (or a rotten header announcing any length) is excused only where bit rot was injected.
    private func damaged(_ fetcher: SimGroupFetcher, at offset: Int64, _ what: String) {
        let partition = TopicPartition(fetcher.slot.topic, Int32(fetcher.slot.partition.partition))
        guard rotRanges[fetcher.broker]?[partition] != nil else {
            return fail("g\(fetcher.group) fetcher of \(fetcher.slot) \(what) with no bit rot injected there")
        }
        counters.damageReports += 1
        fetcher.damagedAt = offset
        let group = groups[fetcher.group]
        group.damagedAt[fetcher.slot] = min(offset, group.damagedAt[fetcher.slot] ?? offset)
    }

    /// The application takes the delivery: checked and recorded as delivered to the group; the
    /// fetch run's `DeliveryTracker` skips what the member process handled before (its dedup
    /// cache); the rest is handled message by message up to the first it fails
    /// (Simulation+Recover), and the batch's end reaches the tracker after the processing delay.
    /// Within one fetch run offsets only grow, except that a failed message and those after it
    /// come again.
    private func deliver(_ messages: [Message], _ next: Int64, to fetcher: SimGroupFetcher) {
        let group = groups[fetcher.group]
        let member = group.members[fetcher.member]
        let partition = TopicPartition(fetcher.slot.topic, Int32(fetcher.slot.partition.partition))
        var keys: [UInt64] = []
        for message in messages {
            let place = "\(group.name) broker\(fetcher.broker) \(partition)@\(message.offset)"
            guard let key = checkProduced(message, broker: fetcher.broker, partition: partition, place: place) else { return }
            guard message.offset > fetcher.lastDeliveredOffset, !fetcher.deliveredInRun.contains(key) || isOrdered(key)
                    || txRepairedAfterRot(key, broker: fetcher.broker, partition) else {
                return fail("offsets went backwards or repeated within one group fetch run at \(place) (last \(fetcher.lastDeliveredOffset))")
            }
            counters.groupDelivered += 1
            if !group.delivered.insert(key).inserted { counters.groupRedelivered += 1 }
            trace(.groupDelivered, Int64(fetcher.client), message.offset, "deliver p\(key >> 32)#\(key & 0xFFFF_FFFF) at \(place)")
            keys.append(key)
        }
        if fetcher.manual { return handleManually(fetcher, messages, keys, next) }
        var batch = HandlerBatch(nextOffset: next)
        var end: DeliveryTracker.Event?
        for delivery in fetcher.tracker.admit(messages, nextOffset: next, cache: &member.dedup) {
            let key = SimPayload.key(of: delivery.message.data)!
            guard applicationHandles(key) else {
                counters.handlerFailures += 1
                trace(.handlerFailed, Int64(fetcher.client), delivery.message.offset, "the application fails p\(key >> 32)#\(key & 0xFFFF_FFFF)")
                end = batch.failed(at: delivery.message.offset)
                break
            }
            handled(key, by: group)
            _ = batch.handled(delivery, ack: false, rollback: nil)
        }
        let ended = end ?? batch.finished()
        let upTo = Self.upTo(ended)
        // Messages before where the batch ended are done for this run; the rest come again.
        var msgId = messages.last?.id ?? -1
        for (message, key) in zip(messages, keys) where message.offset < upTo {
            fetcher.deliveredInRun.insert(key)
            fetcher.lastDeliveredOffset = message.offset
            msgId = message.id
        }
        fetcher.damagedAt = nil
        fetcher.processing = true
        let delay = Int64(clusterRng.int(in: options.cluster.processingMs)) * 1_000_000 + Int64(clusterRng.int(in: 1...100_000))
        schedule(.cluster(.processed(fetcher, ended, msgId: msgId)), afterNs: delay)
    }

    /// Where a batch end leaves the fetch position (a rollback to the last ack: unknown here).
    static func upTo(_ end: DeliveryTracker.Event) -> Int64 {
        switch end {
        case .processed(let upTo, _), .acknowledged(let upTo, _): upTo
        case .rolledBack(let to, _): to ?? -1
        }
    }

    /// The batch's end reaches the fetch run's tracker (which remembers what was handled), the
    /// member (which commits it later) and the fetcher's machine (which fetches on).
    func processed(_ fetcher: SimGroupFetcher, _ end: DeliveryTracker.Event, msgId: Int64) {
        fetcher.processing = false
        let member = groups[fetcher.group].members[fetcher.member]
        let current = member.isUp && member.incarnation == fetcher.incarnation
        var none: MessageIdCache? = nil
        let event = current ? fetcher.tracker.handle(end, cache: &member.dedup) : fetcher.tracker.handle(end, cache: &none)
        if current, case .processed(let nextOffset) = event {
            memberHandle(member, .processed(topic: fetcher.slot.topic, partition: fetcher.slot.partition,
                                            nextOffset: nextOffset, msgId: msgId))
        }
        if groupFetchers[fetcher.client] === fetcher { fetcherHandle(fetcher, event) }
    }

    // MARK: Offsets never go backwards (§5.4)

    /// A member wrote `path`; when it is an offset node, what is stored there now must not be
    /// below what was stored before — unless a broker's 301 moved a fetcher of that partition
    /// back to at most the new value since (recorded in `backwardMoves`).
    private func noteOffsetWrite(_ group: SimGroup, _ path: String) {
        let isOffsetNode = group.topics.contains { topic in
            let prefix = layout.offsetsPath(group.name, topic) + "/"
            return path.hasPrefix(prefix) && BrokerPartition(String(path.dropFirst(prefix.count))) != nil
        }
        guard isOffsetNode, let bytes = zooKeeper.data(at: path) else { return }
        guard let stored = StoredOffset(text: String(decoding: bytes, as: UTF8.self)) else {
            return fail("\(group.name) stored an unreadable offset at \(path): \(String(decoding: bytes, as: UTF8.self))")
        }
        if let previous = group.storedOffsets[path], stored.offset < previous {
            if let moved = group.backwardMoves[path], moved <= stored.offset {
                counters.excusedOffsetRegressions += 1
            } else {
                return fail("\(group.name): the stored offset at \(path) went back from \(previous) to \(stored.offset)")
            }
        }
        if group.storedOffsets[path] != stored.offset {
            counters.offsetsStored += 1
            if let slot = offsetSlot(group, path) {
                checkCommitted(group, slot, stored.offset)
                checkManualCommitted(group, slot, stored.offset)
            }
        }
        group.storedOffsets[path] = stored.offset
        group.backwardMoves[path] = nil
    }
}
