import ProtocolCore
import StoreCore

/// The end of a run's delivery checks (DESIGN.md §6): every acknowledged message was delivered,
/// unless the durability contract lets it be missing (`lossExcuse`).
extension Simulation {
    /// `destroyed`: the broker's disk was destroyed; the replication checkers judge what its
    /// slaves kept (Simulation+ReplicationChecks).
    enum LossExcuse { case unsyncedTail, rot, retention, destroyed }

    /// Why the durability contract allows the acknowledged `sent` (at `target`@`offset`) to be
    /// missing: under `unflushThreshold` an unsynced tail at a power loss; bit rot of its bytes,
    /// or before them in a partition whose reader stopped at the rot (`stuckAt`).
    func lossExcuse(_ sent: Sent, _ target: TopicPartition, offset: Int64, msgId: Int64, stuckAt: Int64?) -> LossExcuse? {
        if brokers[sent.broker].destroyed { return .destroyed }
        return storeLossExcuse(sent, target, offset: offset, msgId: msgId, stuckAt: stuckAt)
    }

    /// `lossExcuse` by what the broker's own store may lose or remove.
    func storeLossExcuse(_ sent: Sent, _ target: TopicPartition, offset: Int64, msgId: Int64, stuckAt: Int64?) -> LossExcuse? {
        if case .threshold = options.flush, let incarnation = storedBy[sent.broker]?[msgId],
           let loss = powerLossRecords[sent.broker]?.first(where: { $0.incarnation == incarnation }),
           offset >= loss.ends[target] ?? 0 {
            return .unsyncedTail
        }
        // Retention removed the segments below its floor on purpose (reference §2.7).
        if let floor = brokers[sent.broker].retentionFloor[target], offset < floor { return .retention }
        // Rot destroys the records it overlaps, and the reader stops at the first of them.
        let record = offset..<(offset + Int64(Record.headerSize + sent.payload.count))
        if let rotten = rotRanges[sent.broker]?[target],
           rotten.contains(where: { $0.overlaps(record) }) || (stuckAt.map { $0 <= offset } ?? false) {
            return .rot
        }
        return nil
    }

    /// Every acknowledged message was delivered — to the consumer of its partition (topics no
    /// group reads) and to every group subscribed to its topic — unless `lossExcuse` allows it.
    func finalChecks() {
        let consumedTopics = Set(consumers.map(\.partition.topic))
        let flush = options.flush == .groupCommit ? "group commit" : "\(options.flush)"
        for key in ledger.keys.sorted() {
            let sent = ledger[key]!
            guard case .acknowledged(let partition, let offset, let msgId) = sent.outcome else { continue }
            // A failover broker id's messages: judged on its final leader (Simulation+Failover).
            if sent.broker == options.replication?.failoverBrokerId { continue }
            let target = TopicPartition(sent.topic, partition)
            let name = "p\(sent.producer)#\(key & 0xFFFF_FFFF) broker\(sent.broker) \(target)@\(offset)"
            // Counted once per message, however many readers missed it.
            var excused: LossExcuse?
            if !delivered.contains(key) && consumedTopics.contains(sent.topic) {
                let stuck = consumers.filter { $0.broker == sent.broker && $0.partition == target }.compactMap(\.damagedAt).min()
                excused = lossExcuse(sent, target, offset: offset, msgId: msgId, stuckAt: stuck)
                if excused == nil { finalFailure("acknowledged message never delivered (lost?) under \(flush): \(name)") }
            }
            let slot = GroupSlot(topic: sent.topic, partition: BrokerPartition(brokerId: sent.broker, partition: Int(partition)))
            for group in groups where group.topics.contains(sent.topic) && !group.delivered.contains(key) {
                let excuse = lossExcuse(sent, target, offset: offset, msgId: msgId, stuckAt: group.damagedAt[slot])
                if excuse == nil { finalFailure("acknowledged message never delivered to group \(group.name) under \(flush): \(name)") }
                excused = excused ?? excuse
            }
            switch excused {
            case .unsyncedTail?: counters.lostUnsyncedAcknowledged += 1
            case .rot?: counters.rotDestroyed += 1
            case .retention?: counters.retentionExcused += 1
            case .destroyed?, nil: break
            }
            if failuresCount >= 20 { break }
        }
    }
}
