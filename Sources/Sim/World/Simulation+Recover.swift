import ProtocolCore
import StoreCore

/// Failing handlers, hand-offs to the recover store and redelivery (reference §5.2, MetaQ #111),
/// mirroring the production client (ClientEngine+Recover): a message the application fails
/// `maxFetchRetries + 1` times is appended (synced) to the member's `RecoverStore` of its topic,
/// then the position past it goes to the `GroupMember`, then the fetcher hears `.handedOff`; a
/// failed write answers `.handOffFailed` and the store is reopened on next use. The member's
/// production `RecoverRounds` decides the redelivery rounds (with the member process's dedup
/// cache); this driver lists and writes the stores and plays the application. Each member has its
/// own `SimDisk`, which survives its crashes (and may lose power with it).
extension Simulation {
    enum RecoverEvent {
        /// The answer to the hand-off of `fetcher`'s message reaches its machine.
        case answer(SimGroupFetcher, handedOff: Bool)
        case round(group: Int, member: Int, incarnation: Int)
        /// The application finished a round's delivery; these it handled.
        case roundDone(group: Int, member: Int, incarnation: Int, handled: [RecoveredMessage])
        /// The member crashes right after a hand-off of `slot` whose message is at `offset`.
        case crashAfterHandOff(group: Int, member: Int, incarnation: Int, slot: GroupSlot, offset: Int64)
    }

    static let recoverRoot = "/home/sim/.meta_recover"

    // MARK: The application

    /// One attempt of the application at the message with ledger key `key`: false when it fails.
    func applicationHandles(_ key: UInt64) -> Bool {
        guard let handlers = options.handlers else { return true }
        return !handlers.isPoison(key) && !handlerRng.chance(handlers.failProbability)
    }

    /// The application handled `key` for `group`; the poison never is (it fails every attempt).
    func handled(_ key: UInt64, by group: SimGroup) {
        if options.handlers?.isPoison(key) == true { return fail("\(group.name) handled the poison message p\(key >> 32)#\(key & 0xFFFF_FFFF)") }
        group.handled.insert(key)
    }

    // MARK: Stores

    /// A member process starts: its stores of every subscribed topic are opened (and checked
    /// against what they acknowledged before the crash), and its redelivery rounds begin.
    func startRecovery(_ member: SimGroupMember) {
        guard let handlers = options.handlers else { return }
        member.stores = [:]
        member.keptAtStart = []
        for topic in groups[member.group].topics.sorted() {
            for recovered in recoverStore(member, topic)?.pending() ?? [] { member.keptAtStart.insert(recovered.message.id) }
        }
        member.rounds = RecoverRounds(settings: .init(intervalMs: Int64(handlers.recoverIntervalMs)))
        roundsHandle(member, .start)
    }

    /// A member process dies: its handles die with it; its disk stays, maybe after losing power.
    func crashRecovery(_ member: SimGroupMember) {
        guard let handlers = options.handlers else { return }
        member.stores = [:]
        if handlerRng.chance(handlers.powerLossOnCrashProbability) {
            counters.memberPowerLosses += 1
            member.disk.powerLoss(using: &handlerRng)
        } else {
            member.disk.crash()
        }
    }

    /// The member's store of `topic`, opened on first use and after a failed write (which makes
    /// a store refuse everything until reopened); nil when it cannot be opened.
    func recoverStore(_ member: SimGroupMember, _ topic: String) -> RecoverStore? {
        if let store = member.stores[topic] { return store }
        do {
            let store = try RecoverStore(storage: member.disk, root: Self.recoverRoot, topic: topic, group: groups[member.group].name)
            verifyReopened(member, topic, store)
            member.stores[topic] = store
            return store
        } catch {
            counters.recoverStoreFailures += 1
            trace(.recoverStore, Int64(member.group), Int64(member.index), "\(member.name) cannot open the recover store of \(topic): \(error)")
            return nil
        }
    }

    /// A store just opened holds every message whose `append` returned and that was not removed
    /// since, no message it never acknowledged or had removed (the doubtful ones, whose write
    /// threw, may be either way), and each of them byte for byte as produced.
    private func verifyReopened(_ member: SimGroupMember, _ topic: String, _ store: RecoverStore) {
        let pending = store.pending()
        let ids = Set(pending.map(\.message.id))
        var shadow = member.shadows[topic] ?? SimStoreShadow()
        let lost = shadow.kept.subtracting(ids)
        if !lost.isEmpty { fail("\(member.name)'s recover store of \(topic) lost acknowledged message(s) msgId \(lost.sorted())") }
        let unknown = ids.subtracting(shadow.kept).subtracting(shadow.doubtful)
        if !unknown.isEmpty { fail("\(member.name)'s recover store of \(topic) holds message(s) never kept or already removed: msgId \(unknown.sorted())") }
        for recovered in pending {
            let partition = TopicPartition(topic, recovered.partition)
            _ = checkProduced(recovered.message, broker: Int(recovered.brokerId), partition: partition,
                              place: "\(member.name)'s recover store \(partition)@\(recovered.message.offset)")
        }
        shadow.kept = ids
        shadow.doubtful = []
        member.shadows[topic] = shadow
    }

    /// Runs one write of a store with an injected failure at the odds of the world; a failure
    /// closes the store (it is reopened on next use).
    private func storeWrite(_ member: SimGroupMember, _ topic: String, _ store: RecoverStore,
                            _ write: (RecoverStore) throws -> Void) -> Bool {
        if handlerRng.chance(options.handlers?.storeFaultProbability ?? 0) { member.disk.failNextSync = true }
        defer { member.disk.failNextSync = false }
        do {
            try write(store)
            return true
        } catch {
            counters.recoverStoreFailures += 1
            trace(.recoverStore, Int64(member.group), Int64(member.index), "\(member.name) recover store of \(topic) write failed: \(error)")
            try? store.close()
            member.stores[topic] = nil
            return false
        }
    }

    // MARK: Hand-off

    /// The fetcher's machine gave up on `message` (`.recover`): keep it, then record the position
    /// past it, then answer — `.handOffFailed` when the store could not keep it.
    func handOff(_ fetcher: SimGroupFetcher, _ message: Message, attempts: Int) {
        let member = groups[fetcher.group].members[fetcher.member]
        let topic = fetcher.slot.topic
        fetcher.handingOff = true
        var kept = bugs.contains(.handOffWithoutStore)
        if !kept, let store = recoverStore(member, topic) {
            kept = storeWrite(member, topic, store) {
                _ = try $0.append(message, brokerId: Int32(fetcher.broker), partition: Int32(fetcher.slot.partition.partition))
            }
            if kept {
                member.shadows[topic, default: SimStoreShadow()].kept.insert(message.id)
                member.shadows[topic]?.doubtful.remove(message.id)
            } else {
                member.shadows[topic, default: SimStoreShadow()].doubtful.insert(message.id)
            }
        }
        let key = SimPayload.key(of: message.data) ?? 0
        trace(.handOff, Int64(fetcher.client), message.offset,
              "\(member.name) hands off p\(key >> 32)#\(key & 0xFFFF_FFFF) at \(fetcher.slot)@\(message.offset) after \(attempts) attempts: \(kept ? "kept" : "store failed")")
        if kept {
            counters.handOffs += 1
            // Manual ack: the machine's `acknowledged` moves (past the message, when everything
            // before it is acknowledged) with `.handedOff`, and reaches the member from there.
            if fetcher.manual {
                manualHandedOff(fetcher, message)
            } else {
                memberHandle(member, .processed(topic: topic, partition: fetcher.slot.partition,
                                                nextOffset: fetcher.machine.offset, msgId: message.id))
            }
            scheduleCrashAfterHandOff(member, fetcher.slot, message.offset)
        } else {
            counters.handOffFailures += 1
        }
        // The store's sync takes a moment; never from inside the machine's own action loop.
        schedule(.cluster(.recover(.answer(fetcher, handedOff: kept))), afterNs: Int64(handlerRng.int(in: 0...2_000_000)))
    }

    private func scheduleCrashAfterHandOff(_ member: SimGroupMember, _ slot: GroupSlot, _ offset: Int64) {
        guard !inLiveness, let handlers = options.handlers, handlerRng.chance(handlers.crashAfterHandOffProbability) else { return }
        schedule(.cluster(.recover(.crashAfterHandOff(group: member.group, member: member.index, incarnation: member.incarnation,
                                                      slot: slot, offset: offset))),
                 afterNs: Int64(handlerRng.int(in: 0...3_000_000)))
    }

    func dispatch(_ event: RecoverEvent) {
        switch event {
        case .answer(let fetcher, let handedOff):
            trace(.handOffAnswer, Int64(fetcher.client), handedOff ? 1 : 0)
            guard groupFetchers[fetcher.client] === fetcher else { return }
            if handedOff { fetcher.handingOff = false }
            fetcherHandle(fetcher, handedOff ? .handedOff : .handOffFailed)
        case .round(let g, let m, let incarnation):
            trace(.recoverRound, Int64(g), Int64(m))
            let member = groups[g].members[m]
            if member.isUp && member.incarnation == incarnation { roundsHandle(member, .tick) }
        case .roundDone(let g, let m, let incarnation, let handled):
            trace(.recoverRemoved, Int64(g), Int64(handled.count))
            let member = groups[g].members[m]
            guard member.isUp && member.incarnation == incarnation else { return }
            member.completedRoundStartNs = member.roundStartNs
            roundsHandle(member, .roundEnded(handled: handled))
        case .crashAfterHandOff(let g, let m, let incarnation, let slot, let offset):
            let member = groups[g].members[m]
            guard !inLiveness, member.isUp, member.incarnation == incarnation else { return }
            let path = layout.offsetPath(groups[g].name, slot.topic, slot.partition)
            if (groups[g].storedOffsets[path] ?? 0) <= offset { counters.crashesAfterHandOff += 1 }
            trace(.crashAfterHandOff, Int64(g), offset, "FAULT \(member.name) crashes right after handing off \(slot)@\(offset)")
            crashMember(member)
        }
    }

    // MARK: Redelivery (MetaQ #111)

    /// Feeds the member's `RecoverRounds` and does what they ask: list the stores, play the
    /// application, remove from the stores, wake the machine.
    private func roundsHandle(_ member: SimGroupMember, _ event: RecoverRounds<RecoveredMessage>.Event) {
        for action in member.rounds.handle(event, now: instant, cache: &member.dedup) {
            switch action {
            case .scheduleTick(let at):
                schedule(.cluster(.recover(.round(group: member.group, member: member.index, incarnation: member.incarnation))),
                         atNs: at.nanoseconds)
            case .list:
                member.roundStartNs = nowNs
                let stored = groups[member.group].topics.sorted().flatMap { recoverStore(member, $0)?.pending() ?? [] }
                roundsHandle(member, .listed(stored))
                // Nothing to hand over: the round is over already.
                if !member.rounds.inRound { member.completedRoundStartNs = member.roundStartNs }
            case .deliver(let pending):
                redeliver(member, pending)
            case .remove(let items):
                remove(member, items)
            }
        }
    }

    /// The application takes a round's messages, oldest first; it reports the ones it handled
    /// once done with the round.
    private func redeliver(_ member: SimGroupMember, _ pending: [RecoveredMessage]) {
        let group = groups[member.group]
        var done: [RecoveredMessage] = []
        for recovered in pending {
            guard let key = SimPayload.key(of: recovered.message.data) else { continue }
            if applicationHandles(key) {
                counters.recoverRedelivered += 1
                if member.keptAtStart.contains(recovered.message.id) { counters.redeliveredAfterRestart += 1 }
                handled(key, by: group)
                done.append(recovered)
            } else {
                counters.redeliveryFailures += 1
                if bugs.contains(.redeliveryRemovesFailures) { done.append(recovered) }
            }
        }
        let delay = Int64(handlerRng.int(in: 0...5_000_000))
        schedule(.cluster(.recover(.roundDone(group: member.group, member: member.index, incarnation: member.incarnation,
                                              handled: done))), afterNs: delay)
    }

    private func remove(_ member: SimGroupMember, _ items: [RecoveredMessage]) {
        for item in items {
            guard let store = recoverStore(member, item.topic) else { continue }
            let removed = storeWrite(member, item.topic, store) { _ = try $0.remove(msgId: item.msgId) }
            member.shadows[item.topic]?.kept.remove(item.msgId)
            if !removed { member.shadows[item.topic]?.doubtful.insert(item.msgId) }
        }
    }
}
