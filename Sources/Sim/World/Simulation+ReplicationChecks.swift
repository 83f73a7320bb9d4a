import BrokerCore
import ProtocolCore
import StoreCore

/// One partition's durable records on a disk, as recovery after a power loss now would find them:
/// the segments whose names are durable, from the first, as long as each starts where the one
/// before ends (recovery removes what follows a gap), cut before the first bytes that are not a
/// whole, checksum-verified record (a power loss may leave a zero-filled or torn tail there).
struct ReplicaImage {
    var start: Int64
    var bytes: [UInt8] = []

    /// `cutAtDamage` false: the bytes as they are (a master's rot or damage included).
    init(start: Int64, segments: [(start: Int64, bytes: [UInt8])], cutAtDamage: Bool = true) {
        self.start = start
        for segment in segments {
            guard segment.start == end else { break }
            bytes += segment.bytes
        }
        guard cutAtDamage else { return }
        let valid = bytes.withUnsafeBytes { raw in
            var position = 0
            while case .record(let header, _) = Record.parse(raw, at: position) { position += header.recordSize }
            return position
        }
        bytes.removeSubrange(valid...)
    }

    var end: Int64 { start + Int64(bytes.count) }

    /// The msgId and payload of the whole record at `offset`, nil when none is there (`verified`:
    /// nor when its checksum fails).
    func record(at offset: Int64, verified: Bool = false) -> (msgId: Int64, payload: ArraySlice<UInt8>)? {
        guard offset >= start, offset + Int64(Record.headerSize) <= end else { return nil }
        let i = Int(offset - start)
        if verified {
            let parsed = bytes.withUnsafeBytes { Record.parse($0, at: i) }
            guard case .record = parsed else { return nil }
        }
        func number(_ at: Int, _ width: Int) -> Int64 {
            bytes[at..<(at + width)].reduce(0) { $0 << 8 | Int64($1) }
        }
        let length = Int(Int32(truncatingIfNeeded: number(i, 4)))
        guard length >= 0, i + Record.headerSize + length <= bytes.count else { return nil }
        return (number(i + 8, 8), bytes[(i + Record.headerSize)..<(i + Record.headerSize + length)])
    }
}

/// What the destroyed master's disk held, and each slave's, at the moment it was destroyed.
struct SimDestruction {
    let master: [TopicPartition: ReplicaImage]
    let slaves: [[TopicPartition: ReplicaImage]]
}

/// The replication checkers (issue 17, docs/SIMULATION.md "Replicated worlds"):
/// - copies are byte-identical on their common durable range, per partition — when any process
///   of the replicated set starts, when the master's disk is destroyed and at the end;
/// - a synchronous master with `minInSyncReplicas` ≥ 2 acknowledges only what a slave holds
///   durably: when its disk is destroyed every acknowledged message is on some slave's disk;
/// - otherwise a destroyed master's loss is bounded by the unreplicated tail: what the best slave
///   lacks lies beyond its durable end (counted, never a failure);
/// - at the end of a run whose master survived, every slave holds every acknowledged message the
///   master still holds (the catch-up itself is part of convergence, Simulation+Replication).
extension Simulation {
    /// Every partition's durable image on `broker`'s disk.
    func durableImages(of broker: SimBroker) -> [TopicPartition: ReplicaImage] {
        var images: [TopicPartition: ReplicaImage] = [:]
        guard let names = try? broker.disk.list(broker.dataPath) else { return images }
        for name in names.sorted() {
            guard let dash = name.lastIndex(of: "-"), let number = Int32(name[name.index(after: dash)...]) else { continue }
            let partition = TopicPartition(String(name[..<dash]), number)
            images[partition] = durableImage(of: broker, partition)
        }
        return images
    }

    func durableImage(of broker: SimBroker, _ partition: TopicPartition, cutAtDamage: Bool = true) -> ReplicaImage? {
        let directory = StoragePath.join(broker.dataPath, "\(partition.topic)-\(partition.partition)")
        guard let files = broker.disk.durableFiles(in: directory) else { return nil }
        let segments = files.compactMap { file in SegmentName.start(of: file.name).map { ($0, file.bytes) } }.sorted { $0.0 < $1.0 }
        guard let first = segments.first else { return nil }
        return ReplicaImage(start: first.0, segments: segments, cutAtDamage: cutAtDamage)
    }

    /// Fails the run when a copy's bytes differ from the master's on their common range (the
    /// master's rotten sectors apart: a slave may hold the good bytes).
    func checkReplicasIdentical(_ original: [TopicPartition: ReplicaImage], of master: SimBroker,
                                copies: [(name: String, images: [TopicPartition: ReplicaImage])], when: String) {
        for partition in original.keys.sorted() {
            let source = original[partition]!
            let rotten = rotRanges[master.id]?[partition] ?? []
            for (name, images) in copies {
                guard let copy = images[partition] else { continue }
                let from = max(source.start, copy.start), to = min(source.end, copy.end)
                guard from < to else { continue }
                let common = from..<to
                counters.replicaBytesCompared += Int(common.count)
                let a = source.bytes[Int(common.lowerBound - source.start)..<Int(common.upperBound - source.start)]
                let b = copy.bytes[Int(common.lowerBound - copy.start)..<Int(common.upperBound - copy.start)]
                if a.elementsEqual(b) { continue }
                for (offset, (x, y)) in zip(common, zip(a, b)) where x != y && !rotten.contains(where: { $0.contains(offset) }) {
                    return fail("replicas differ \(when): \(master.name) and \(name) \(partition) at offset \(offset) "
                                + "(durable ranges \(source.start)..<\(source.end) and \(copy.start)..<\(copy.end))")
                }
            }
        }
    }

    /// An acknowledged message of `master` (offset ≥ 0: a transaction's puts answer -1 and are
    /// the transaction checkers' business).
    struct Acknowledged {
        var key: UInt64
        var sent: Sent
        var partition: TopicPartition
        var offset: Int64
        var msgId: Int64

        var name: String { "p\(sent.producer)#\(key & 0xFFFF_FFFF) \(partition)@\(offset)" }

        func isHeld(by image: ReplicaImage?) -> Bool {
            guard let record = image?.record(at: offset) else { return false }
            return record.msgId == msgId && record.payload.elementsEqual(sent.payload)
        }
    }

    func acknowledged(on master: Int) -> [Acknowledged] {
        ledger.keys.sorted().compactMap { key in
            let sent = ledger[key]!
            guard sent.broker == master, case .acknowledged(let partition, let offset, let msgId) = sent.outcome,
                  offset >= 0 else { return nil }
            return Acknowledged(key: key, sent: sent, partition: TopicPartition(sent.topic, partition), offset: offset, msgId: msgId)
        }
    }

    /// A synchronous master with `minInSyncReplicas` ≥ 2 answered a put only once an in-sync
    /// slave had it durably: every acknowledged message is on at least one of `images` (below
    /// the master's retention floor apart: removed on purpose, the slaves' copies with it).
    func checkPromisedCopies(_ images: [[TopicPartition: ReplicaImage]], when: String) {
        guard let replication = options.replication, replication.promisesCopies else { return }
        let master = brokers[replication.master]
        for ack in acknowledged(on: master.id) {
            if let floor = master.retentionFloor[ack.partition], ack.offset < floor { continue }
            guard !images.contains(where: { ack.isHeld(by: $0[ack.partition]) }) else { continue }
            let ends = images.map { $0[ack.partition].map { "\($0.start)..<\($0.end)" } ?? "none" }.joined(separator: ", ")
            fail("acknowledged by synchronous \(master.name) (minInSyncReplicas=\(replication.minInSyncReplicas)) but on no slave's disk "
                 + "\(when): \(ack.name) (the slaves' durable copies: \(ends))")
            if failuresCount >= 20 { return }
        }
    }

    /// Without that promise the loss is the unreplicated tail: what the best slave (the one
    /// missing the fewest acknowledged messages) lacks lies at or beyond its durable end.
    func checkLossBoundedByTail(_ destruction: SimDestruction) {
        guard let replication = options.replication, !replication.promisesCopies else { return }
        let master = brokers[replication.master]
        let candidates = acknowledged(on: master.id).filter {
            storeLossExcuse($0.sent, $0.partition, offset: $0.offset, msgId: $0.msgId, stuckAt: nil) == nil
        }
        let missing = destruction.slaves.map { images in candidates.filter { !$0.isHeld(by: images[$0.partition]) } }
        guard let best = missing.indices.min(by: { missing[$0].count < missing[$1].count }) else { return }
        counters.acknowledgedLostWithMaster += missing[best].count
        counters.acknowledgedOnSlaves += candidates.count - missing[best].count
        for ack in missing[best] {
            let image = destruction.slaves[best][ack.partition]
            guard let image, ack.offset < image.end else { continue }
            return fail("\(slaves[best].name) lacks \(ack.name), acknowledged by \(master.name) before its disk was destroyed, "
                        + "inside its durable copy \(image.start)..<\(image.end): the loss is not just the unreplicated tail")
        }
    }

    /// A process of the replicated set started (recovery done): its copy agrees with the others.
    func replicaStarted(_ broker: SimBroker) {
        // Failover worlds compare copies at the end only: a deposed leader's tail differs from
        // its successor's until its rejoin cuts it.
        guard let replication = options.replication, destruction == nil, replication.failover == nil,
              broker.isSlave || broker.id == replication.master else { return }
        let master = brokers[replication.master]
        let copies = (broker.isSlave ? [broker] : slaves).map { ($0.name, durableImages(of: $0)) }
        checkReplicasIdentical(durableImages(of: master), of: master, copies: copies, when: "when \(broker.name) started")
    }

    func checkReplicationAtTheEnd() {
        guard let replication = options.replication else { return }
        if replication.failover != nil { return checkFailoverAtTheEnd() }
        let master = brokers[replication.master]
        let current = slaves.map { ($0.name, durableImages(of: $0)) }
        if let destruction {
            checkReplicasIdentical(destruction.master, of: master, copies: current, when: "at the end")
            // Acknowledgements still on the way at the destruction count too.
            checkPromisedCopies(destruction.slaves, when: "when \(master.name)'s disk was destroyed")
            checkPromisedCopies(current.map(\.1), when: "at the end")
            if replication.promisesCopies {
                counters.acknowledgedOnSlaves += acknowledged(on: master.id).count
            } else {
                checkLossBoundedByTail(destruction)
            }
            return
        }
        checkReplicasIdentical(durableImages(of: master), of: master, copies: current, when: "at the end")
        // Caught up (convergence waited for it): every slave holds what the master holds, up to
        // where it is held (rot or damage on the master).
        for ack in acknowledged(on: master.id) {
            for (slave, (name, images)) in zip(slaves, current) {
                if storeLossExcuse(ack.sent, ack.partition, offset: ack.offset, msgId: ack.msgId, stuckAt: nil) != nil { continue }
                if let end = images[ack.partition]?.end, ack.offset >= end, isHeld(slave, ack.partition, end: end) { continue }
                if !ack.isHeld(by: images[ack.partition]) {
                    fail("\(name) lacks \(ack.name), acknowledged by \(master.name), after it caught up")
                    if failuresCount >= 20 { return }
                } else {
                    counters.acknowledgedOnSlaves += 1
                }
            }
        }
    }
}
