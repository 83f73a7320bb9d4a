import ProtocolCore
import StoreCore

/// The checkers of failing handlers (reference §5.2, §5.4; docs/SIMULATION.md, "Failing
/// handlers"): a message the application did not handle is never skipped silently — never below
/// a committed offset, never at the end — unless a recover store keeps it.
extension Simulation {
    /// The slot of the group's offset node at `path`, nil for any other node.
    func offsetSlot(_ group: SimGroup, _ path: String) -> GroupSlot? {
        for topic in group.topics {
            let prefix = layout.offsetsPath(group.name, topic) + "/"
            if path.hasPrefix(prefix), let partition = BrokerPartition(String(path.dropFirst(prefix.count))) {
                return GroupSlot(topic: topic, partition: partition)
            }
        }
        return nil
    }

    /// Whether a member of `group` certainly keeps `msgId` of `topic`: its `append` returned (so
    /// it was synced) and no `remove` of it was attempted since.
    func isKept(_ group: SimGroup, _ topic: String, _ msgId: Int64) -> Bool {
        group.members.contains { $0.shadows[topic]?.kept.contains(msgId) == true }
    }

    /// Safety at every offset commit: each acknowledged message of the partition below the
    /// offset `committed` was handled by some member of the group, or is kept by one of its
    /// recover stores. A hand-off appends (synced) before the position past its message reaches
    /// the member, so no message may be "on its way" to a store: a doubtful one (whose write
    /// threw) does not count. Exempt: messages whose loss the flush policy or bit rot excuses.
    func checkCommitted(_ group: SimGroup, _ slot: GroupSlot, _ committed: Int64) {
        let partition = TopicPartition(slot.topic, Int32(slot.partition.partition))
        var skipped: [(offset: Int64, key: UInt64)] = []
        for (key, sent) in ledger where sent.broker == slot.partition.brokerId && sent.topic == slot.topic {
            guard case .acknowledged(let p, let offset, let msgId) = sent.outcome, p == partition.partition, offset < committed,
                  !group.handled.contains(key), !isKept(group, slot.topic, msgId),
                  lossExcuse(sent, partition, offset: offset, msgId: msgId, stuckAt: group.damagedAt[slot]) == nil else { continue }
            skipped.append((offset, key))
        }
        guard let first = skipped.min(by: { ($0.offset, $0.key) < ($1.offset, $1.key) }) else { return }
        fail("\(group.name) committed offset \(committed) of \(slot) past p\(first.key >> 32)#\(first.key & 0xFFFF_FFFF) at \(first.offset): "
             + "neither handled by the group nor kept in its recover stores (\(skipped.count) such)")
    }

    /// At the end (the world quiet, every member up and through a redelivery round since the
    /// faults stopped): every acknowledged message of the group's topics was handled by the group
    /// or sits in the `pending()` of one of its members' stores — the poison always in a store,
    /// since nothing handles it.
    func checkRecoverAfterConvergence() {
        guard let handlers = options.handlers else { return }
        for group in groups {
            var stored: Set<Int64> = []
            for member in group.members {
                for topic in group.topics.sorted() {
                    for recovered in recoverStore(member, topic)?.pending() ?? [] { stored.insert(recovered.message.id) }
                }
            }
            var missing: [String] = []
            for key in ledger.keys.sorted() {
                let sent = ledger[key]!
                guard group.topics.contains(sent.topic), case .acknowledged(let p, let offset, let msgId) = sent.outcome else { continue }
                if stored.contains(msgId) {
                    if handlers.isPoison(key) { counters.poisonKept += 1 }
                    continue
                }
                let target = TopicPartition(sent.topic, p)
                let slot = GroupSlot(topic: sent.topic, partition: BrokerPartition(brokerId: sent.broker, partition: Int(p)))
                guard !group.handled.contains(key),
                      lossExcuse(sent, target, offset: offset, msgId: msgId, stuckAt: group.damagedAt[slot]) == nil else { continue }
                missing.append("p\(sent.producer)#\(key & 0xFFFF_FFFF) broker\(sent.broker) \(target)@\(offset)\(handlers.isPoison(key) ? " (poison)" : "")")
            }
            if !missing.isEmpty {
                fail("\(group.name): \(missing.count) acknowledged message(s) neither handled nor in a recover store (skipped): "
                     + missing.prefix(5).joined(separator: ", "))
            }
        }
    }

    /// What the end waits for besides the groups' settling: every member through a redelivery
    /// round that began after the faults stopped.
    func recoverWaiting() -> [String] {
        guard options.handlers != nil else { return [] }
        var waiting: [String] = []
        for group in groups {
            for member in group.members where member.isUp && member.completedRoundStartNs < livenessStartNs {
                waiting.append("\(member.name) waits for a redelivery round")
            }
        }
        return waiting
    }
}
