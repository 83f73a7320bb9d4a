// Consumed offsets of held partitions (§5.4): kept in memory, written when modified, read when a
// partition is newly held.

extension GroupMember {
    // MARK: progress

    /// The application finished messages up to `offset`. Ignored for a partition not held (or not
    /// yet started), and when it would move the offset backwards: a commit never writes less than
    /// this member last wrote.
    mutating func processed(_ slot: Slot, _ offset: StoredOffset, _ now: Instant) {
        guard isMember, var holding = holdings[slot.topic]?[slot.partition], holding.loaded,
              offset.offset >= (holding.offset?.offset ?? 0) else {
            counters.ignoredProcessed += 1
            return
        }
        holding.offset = offset
        holdings[slot.topic]?[slot.partition] = holding
        if holding.isModified && commitDue == nil {
            commitDue = now.adding(milliseconds: settings.commitIntervalMs)
        }
    }

    // MARK: writing

    /// Writes the in-memory offsets of `slots`: ZooKeeper `setData` of `<msgId>-<offset>`, or one
    /// `.storeOffsets` the driver performs before the actions that follow it.
    mutating func commit(_ slots: [Slot], _ scope: Scope, _ actions: inout [Action]) {
        var external: [OffsetCommit] = []
        for slot in slots {
            guard let offset = holdings[slot.topic]?[slot.partition]?.offset else { continue }
            switch settings.offsetStorage {
            case .zooKeeper:
                submit(.setData(path: offsetPath(slot), data: Array(offset.text.utf8)),
                       .commitSet(slot, offset, retried: false), scope, &actions)
            case .external:
                external.append(OffsetCommit(topic: slot.topic, partition: slot.partition, offset: offset))
                committed(slot, offset)
            }
        }
        if !external.isEmpty { actions.append(.storeOffsets(external)) }
    }

    /// A first commit finds no node: create it (persistent, with its ancestors).
    mutating func commitSetReplied(_ slot: Slot, _ offset: StoredOffset, retried: Bool, _ scope: Scope,
                                   _ reply: CoordinationReply, _ now: Instant, _ actions: inout [Action]) {
        switch reply {
        case .dataSet:
            committed(slot, offset)
        case .failed(.noNode) where !retried:
            submitWithAncestors(.create(path: offsetPath(slot), data: Array(offset.text.utf8), mode: .persistent),
                                .commitCreate(slot, offset), scope, &actions)
        default:
            failed(scope, now, &actions)
        }
    }

    /// Another member may have created the node meanwhile: then it is set once more.
    mutating func commitCreateReplied(_ slot: Slot, _ offset: StoredOffset, _ scope: Scope,
                                      _ reply: CoordinationReply, _ now: Instant, _ actions: inout [Action]) {
        switch reply {
        case .created:
            committed(slot, offset)
        case .failed(.nodeExists):
            submit(.setData(path: offsetPath(slot), data: Array(offset.text.utf8)),
                   .commitSet(slot, offset, retried: true), scope, &actions)
        default:
            failed(scope, now, &actions)
        }
    }

    private mutating func committed(_ slot: Slot, _ offset: StoredOffset) {
        counters.commits += 1
        guard var holding = holdings[slot.topic]?[slot.partition] else { return }
        if offset.offset >= (holding.committed?.offset ?? 0) { holding.committed = offset }
        holdings[slot.topic]?[slot.partition] = holding
    }

    // MARK: reading (§3.4 step 6)

    /// Reads the stored offsets of the held partitions this member is to fetch and has not read yet.
    mutating func startLoads(_ plan: Plan, _ actions: inout [Action]) {
        round.step = .loadingOffsets(plan, awaitingLoads: [:])
        let slots = sortedSlots { slot, holding in !holding.loaded && plan.isDesired(slot) }
        switch settings.offsetStorage {
        case .zooKeeper:
            for slot in slots {
                submit(.getData(path: offsetPath(slot), watch: false), .loadOffset(slot), .round, &actions)
            }
        case .external:
            var awaitingLoads: [String: Set<BrokerPartition>] = [:]
            for topic in settings.topics {
                let partitions = slots.filter { $0.topic == topic }.map(\.partition)
                guard !partitions.isEmpty else { continue }
                awaitingLoads[topic] = Set(partitions)
                actions.append(.loadOffsets(topic: topic, partitions))
            }
            round.step = .loadingOffsets(plan, awaitingLoads: awaitingLoads)
        }
    }

    mutating func loadReplied(_ slot: Slot, _ reply: CoordinationReply, _ now: Instant, _ actions: inout [Action]) {
        switch reply {
        case .data(let bytes):
            let stored = StoredOffset(text: String(decoding: bytes ?? [], as: UTF8.self))
            if stored == nil { counters.badStoredOffsets += 1 }
            loaded(slot, stored)
        case .failed(.noNode):
            loaded(slot, nil)
        default:
            failed(.round, now, &actions)
        }
    }

    /// External storage's answer. Only the partitions asked for in this attempt are taken.
    mutating func offsetsLoaded(_ topic: String, _ offsets: [BrokerPartition: StoredOffset], _ now: Instant,
                                _ actions: inout [Action]) {
        guard case .rebalancing(let round) = phase, case .loadingOffsets(let plan, var awaitingLoads) = round.step,
              let asked = awaitingLoads.removeValue(forKey: topic) else {
            return
        }
        self.round.step = .loadingOffsets(plan, awaitingLoads: awaitingLoads)
        for partition in asked.sorted() {
            loaded(Slot(topic: topic, partition: partition), offsets[partition])
        }
        advance(now, &actions)
    }

    private mutating func loaded(_ slot: Slot, _ stored: StoredOffset?) {
        guard var holding = holdings[slot.topic]?[slot.partition] else { return }
        holding.loaded = true
        holding.offset = stored
        holding.committed = stored
        holdings[slot.topic]?[slot.partition] = holding
    }
}
