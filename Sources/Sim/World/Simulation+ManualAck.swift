import ProtocolCore

/// Manual ack and rollback in the groups (reference §5.3; SimManualAck), driven as
/// `ClientEngine+Handler` drives a `run(manualAck:)` handler: the fetch run's `DeliveryTracker`
/// admits the batch, a `HandlerBatch` takes the handler's result for each message (its acks go out
/// before the batch's end, in order), the tracker turns each into the `ConsumerMachine`'s event,
/// and the machine's `acknowledged` goes to the `GroupMember` whenever it moves
/// (`ClientEngine+Fetch.recordAcknowledged`).
///
/// The checkers go by what the simulated application decided, not by the events the shared code
/// made of it: no offset commit passes a message a handler got and nobody acknowledged (unless a
/// recover store keeps it, or its loss is excused), and a rolled-back message is fetched again —
/// by the same run or, after a crash or rebalance, by another.
extension Simulation {
    /// The application takes a delivery of a manual-ack fetcher; `keys` are the ledger keys of
    /// `messages`, already checked as produced.
    func handleManually(_ fetcher: SimGroupFetcher, _ messages: [Message], _ keys: [UInt64], _ next: Int64) {
        guard let manual = options.manualAck else { return }
        let group = groups[fetcher.group]
        let member = group.members[fetcher.member]
        for key in keys where group.owed.removeValue(forKey: key) != nil { counters.manualRedelivered += 1 }
        var batch = HandlerBatch(nextOffset: next)
        var steps: [(DeliveryTracker.Event, SimManualDecision)] = []
        var end: DeliveryTracker.Event?
        var endIsStep = false
        let fresh = fetcher.tracker.admit(messages, nextOffset: next, cache: &member.dedup)
        for (i, delivery) in fresh.enumerated() {
            let message = delivery.message
            let key = SimPayload.key(of: message.data)!
            guard applicationHandles(key) else {
                counters.handlerFailures += 1
                trace(.handlerFailed, Int64(fetcher.client), message.offset, "the application fails p\(key >> 32)#\(key & 0xFFFF_FFFF)")
                end = batch.failed(at: message.offset)
                break
            }
            handled(key, by: group)
            let entry = SimManualEntry(key: key, msgId: message.id)
            group.unacked[fetcher.slot, default: [:]][message.offset] = entry
            fetcher.runUnacked[message.offset] = entry
            // After the faults stop the application only acks, the last message of each batch at least.
            var ack = manualRng.chance(manual.ackProbability) || (inLiveness && i == fresh.count - 1)
            var rollback: HandlerBatch.Rollback?
            if !inLiveness && manualRng.chance(manual.rollbackProbability) {
                rollback = manualRng.chance(manual.rollbackToMessageShare) ? .toThisMessage : .toLastAck
                // Sometimes both in one call: the rollback then starts after this message.
                ack = manualRng.chance(0.2)
            }
            let step = batch.handled(delivery, ack: ack, rollback: rollback)
            if let acked = step.ack { steps.append((acked, .ack(upTo: delivery.end))) }
            if let ended = step.end {
                steps.append((ended, .rollback(from: rollback == .toThisMessage ? (ack ? delivery.end : message.offset) : nil)))
                end = ended
                endIsStep = true
                break
            }
        }
        let ended = end ?? batch.finished()
        if !endIsStep { steps.append((ended, .end)) }
        // What the batch's end leaves behind is done for this run (a rollback is settled when it
        // reaches the machine).
        let upTo = Self.upTo(ended)
        for (message, key) in zip(messages, keys) where message.offset < upTo {
            fetcher.deliveredInRun.insert(key)
            fetcher.runDelivered[message.offset] = key
            fetcher.lastDeliveredOffset = message.offset
        }
        fetcher.damagedAt = nil
        fetcher.processing = true
        let delay = Int64(manualRng.int(in: options.cluster.processingMs)) * 1_000_000 + Int64(manualRng.int(in: 1...100_000))
        schedule(.cluster(.manualProcessed(fetcher, steps)), afterNs: delay)
        if !inLiveness, !fetcher.runUnacked.isEmpty, manualRng.chance(manual.crashUndecidedProbability) {
            schedule(.cluster(.manualCrash(group: member.group, member: member.index, incarnation: member.incarnation)),
                     afterNs: Int64(manualRng.int(in: 0...Int(delay))))
        }
    }

    /// The handler's acks and rollbacks, then its batch's end, reach the fetch run — as
    /// `ClientEngine.trackerEvent` does it, only while the fetcher still owns the partition.
    func manualProcessed(_ fetcher: SimGroupFetcher, _ steps: [(DeliveryTracker.Event, SimManualDecision)]) {
        fetcher.processing = false
        let group = groups[fetcher.group]
        let member = group.members[fetcher.member]
        for (event, decision) in steps {
            guard groupFetchers[fetcher.client] === fetcher, member.isUp, member.incarnation == fetcher.incarnation else { return }
            switch decision {
            case .ack(let upTo):
                counters.manualAcks += 1
                for offset in fetcher.runUnacked.keys where offset < upTo { fetcher.runUnacked[offset] = nil }
                if var unacked = group.unacked[fetcher.slot] {
                    for offset in unacked.keys where offset < upTo { unacked[offset] = nil }
                    group.unacked[fetcher.slot] = unacked
                }
            case .rollback(let from):
                counters.manualRollbacks += 1
                for (offset, entry) in fetcher.runUnacked where offset >= (from ?? Int64.min) {
                    group.owed[entry.key] = (fetcher.slot, offset, entry.msgId)
                }
                trace(.manualRollback, Int64(fetcher.client), from ?? -1,
                      "\(member.name) rolls back \(fetcher.slot) to \(from.map { "\($0)" } ?? "its last ack")")
            case .end:
                break
            }
            let machineEvent = fetcher.tracker.handle(event, cache: &member.dedup)
            fetcherHandle(fetcher, machineEvent)
            if case .rollback = decision {
                // The run fetches again from where the machine went back to.
                let target = fetcher.machine.offset
                for (offset, key) in fetcher.runDelivered where offset >= target {
                    fetcher.deliveredInRun.remove(key)
                    fetcher.runDelivered[offset] = nil
                }
                fetcher.lastDeliveredOffset = min(fetcher.lastDeliveredOffset, target - 1)
            }
        }
    }

    /// `ClientEngine+Fetch.recordAcknowledged`: the machine's committable position, when it
    /// moved, goes to the member (which commits it within its commit period).
    func recordAcknowledged(_ fetcher: SimGroupFetcher) {
        let acknowledged = fetcher.machine.acknowledged
        guard acknowledged != fetcher.recorded, groupFetchers[fetcher.client] === fetcher else { return }
        fetcher.recorded = acknowledged
        let member = groups[fetcher.group].members[fetcher.member]
        guard member.isUp, member.incarnation == fetcher.incarnation else { return }
        memberHandle(member, .processed(topic: fetcher.slot.topic, partition: fetcher.slot.partition,
                                        nextOffset: acknowledged.offset, msgId: acknowledged.msgId))
    }

    /// A hand-off kept `message`: the rejection policy answers for it now (§5.2), whatever a
    /// handler got of it before.
    func manualHandedOff(_ fetcher: SimGroupFetcher, _ message: Message) {
        let group = groups[fetcher.group]
        fetcher.runUnacked[message.offset] = nil
        if group.unacked[fetcher.slot]?[message.offset]?.msgId == message.id { group.unacked[fetcher.slot]?[message.offset] = nil }
        if let key = SimPayload.key(of: message.data) { group.owed[key] = nil }
    }

    /// A member of a manual group dies: what its handlers got and never decided about.
    func noteUndecidedAtCrash(_ member: SimGroupMember) {
        for client in member.fetchers.values {
            counters.manualUndecidedAtCrash += groupFetchers[client]?.runUnacked.count ?? 0
        }
    }

    // MARK: Checkers

    /// At every offset commit of a manual group: no message below `committed` was handed to a
    /// handler and left unacknowledged — unless a recover store keeps it (a hand-off) or its loss
    /// is excused (unsynced tail, retention, rot).
    func checkManualCommitted(_ group: SimGroup, _ slot: GroupSlot, _ committed: Int64) {
        guard group.manual, let unacked = group.unacked[slot] else { return }
        let partition = TopicPartition(slot.topic, Int32(slot.partition.partition))
        for offset in unacked.keys.sorted() where offset < committed {
            let entry = unacked[offset]!
            if isKept(group, slot.topic, entry.msgId) { continue }
            if let sent = ledger[entry.key],
               lossExcuse(sent, partition, offset: offset, msgId: entry.msgId, stuckAt: group.damagedAt[slot]) != nil { continue }
            return fail("\(group.name) committed offset \(committed) of \(slot) past p\(entry.key >> 32)#\(entry.key & 0xFFFF_FFFF) "
                        + "at \(offset), handed to a manual-ack handler and never acknowledged")
        }
    }

    /// After convergence: every rolled-back message was fetched again, unless its loss is
    /// excused or a recover store keeps it.
    func checkManualAfterConvergence() {
        for group in groups where group.manual {
            for key in group.owed.keys.sorted() {
                let owed = group.owed[key]!
                let partition = TopicPartition(owed.slot.topic, Int32(owed.slot.partition.partition))
                if isKept(group, owed.slot.topic, owed.msgId) { continue }
                if let sent = ledger[key],
                   lossExcuse(sent, partition, offset: owed.offset, msgId: owed.msgId, stuckAt: group.damagedAt[owed.slot]) != nil { continue }
                fail("\(group.name): p\(key >> 32)#\(key & 0xFFFF_FFFF) at \(owed.slot)@\(owed.offset) was rolled back and never delivered again")
                return
            }
        }
    }
}
