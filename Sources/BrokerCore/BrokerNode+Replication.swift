import ProtocolCore
import StoreCore

/// A master's side of replication (issue 17): its slaves' fetches are ordinary `get`s of their
/// group `meta-slave-group_<slaveId>`; a fetch at X tells the `ReplicaTracker` that X is durable
/// on that slave. A fetch at the end of a partition is held until new bytes are durable here (or
/// `fetchHoldMs` passes), so a slave hears of a put at once instead of polling. In synchronous
/// mode a put's answer waits, after its own durability, for the tracker's high watermark.
final class MasterReplication {
    struct Parked {
        var connection: ConnectionID
        var get: GetCommand
        var until: Instant
    }

    var tracker: ReplicaTracker
    let fetchHoldMs: Int64
    /// Connections that fetched as a slave → that slave's id.
    var slaveConnections: [ConnectionID: Int] = [:]
    /// Held fetches per partition, in arrival order.
    var parked: [TopicPartition: [Parked]] = [:]
    var parkedCount = 0
    /// Synchronous puts: the end of each staged put's record (token → end), then, once durable
    /// here, the offset its answer carries while it waits for the tracker.
    var recordEnds: [UInt64: Int64] = [:]
    var waiting: [UInt64: Int64] = [:]
    var tickAt: Instant?
    var refusedPuts: Int64 = 0
    /// Slaves' partition questions held until the partitions change (or `helloHoldMs` passes).
    var parkedHellos: [(connection: ConnectionID, opaque: Int32, until: Instant)] = []

    /// How long a slave's question for the partitions is held when nothing changed.
    static let helloHoldMs: Int64 = 1000

    /// Held fetches at most (beyond, a fetch at the end is answered at once).
    static let maxParked = 4096

    init(config: ReplicationConfig) {
        tracker = ReplicaTracker(settings: .init(synchronous: config.synchronous, maxLagMs: config.maxLagMs,
                                                 minInSyncReplicas: config.minInSyncReplicas,
                                                 answerOnlyWithPublished: config.failover))
        fetchHoldMs = config.fetchHoldMs
    }

    var synchronous: Bool { tracker.settings.synchronous }

    var nextDeadline: Instant? {
        var earliest = tickAt
        for held in parkedHellos where earliest.map({ held.until < $0 }) ?? true { earliest = held.until }
        for list in parked.values {
            for held in list where earliest.map({ held.until < $0 }) ?? true { earliest = held.until }
        }
        return earliest
    }
}

extension BrokerNode {
    /// A `get` of a slave group (`meta-slave-group_<n>`) on a master: at the end of the partition
    /// it is held until the next sync (or `fetchHoldMs`). Returns false when `get` is not held (the
    /// machine answers it as any get). The slave's durable position comes in its `offset`
    /// reports (`slaveReport`), not from its fetches, which run ahead of its syncs.
    func slaveFetch(_ get: GetCommand, from connection: ConnectionID, _ clock: NodeClock, _ actions: inout [Action]) -> Bool {
        guard replica == nil, let slaveId = ReplicationConfig.Slave.slaveId(ofGroup: get.group) else { return false }
        let partition = TopicPartition(get.topic, get.partition)
        // A hostile name never reaches the tracker (it would hold a key per name): the machine
        // answers such a get as any other.
        guard MetaName.problem(with: get.topic) == nil, get.partition >= 0, get.offset >= 0 else { return false }
        if let refusal = notServingSlavesText {
            actions.append(.reply(connection, ResultResponse(code: StatusCode.internalServerError, text: refusal, opaque: get.opaque)))
            return true
        }
        let replication = replicas
        if replication.slaveConnections[connection] != slaveId {
            replication.slaveConnections[connection] = slaveId
            actions.append(.notice(.replication("slave \(slaveId) fetches on connection \(connection)")))
        }
        if let log = stores.log(partition), log.failure == nil {
            if get.offset == log.maxOffset, replication.fetchHoldMs > 0, replication.parkedCount < MasterReplication.maxParked,
               phase == .running {
                replication.parked[partition, default: []].append(
                    .init(connection: connection, get: get, until: clock.now.adding(milliseconds: replication.fetchHoldMs)))
                replication.parkedCount += 1
                armReplicationTimer(clock, &actions)
                return true
            }
        }
        armReplicationTimer(clock, &actions)
        return false
    }

    /// An `offset` request of a slave group on a master: the slave's report that `partition` is
    /// durable on its disk up to `command.offset` (then answered as any `offset`).
    func slaveReport(_ command: OffsetCommand, from connection: ConnectionID, _ clock: NodeClock, _ actions: inout [Action]) {
        guard replica == nil, let slaveId = ReplicationConfig.Slave.slaveId(ofGroup: command.group),
              replicas.slaveConnections[connection] == slaveId, command.offset >= 0, command.partition >= 0,
              MetaName.problem(with: command.topic) == nil else { return }
        let partition = TopicPartition(command.topic, command.partition)
        guard stores.log(partition) != nil else { return }
        performTracker(replicas.tracker.slaveReported(slaveId, partition, offset: command.offset, now: clock.now), clock, &actions)
        armReplicationTimer(clock, &actions)
    }

    /// `stats replica-<slaveId>-<partitions>` on a master: the connection is that slave's; the
    /// answer lists the partitions as `stats offsets` does — at once when their number differs
    /// from what the slave knows, else when a partition is created or `helloHoldMs` passes (so a
    /// slave hears of a new partition without polling). Returns false when `item` is not a hello.
    func slaveHello(_ item: String, opaque: Int32, from connection: ConnectionID, _ clock: NodeClock,
                    _ actions: inout [Action]) -> Bool {
        let fields = item.dropFirst(Self.slaveHelloPrefix.count).split(separator: "-")
        guard replica == nil, fields.count == 2, let slaveId = Int(fields[0]), (0...1023).contains(slaveId),
              let known = Int(fields[1]), known >= 0 else { return false }
        if let refusal = notServingSlavesText {
            actions.append(.reply(connection, ResultResponse(code: StatusCode.internalServerError, text: refusal, opaque: opaque)))
            return true
        }
        let replication = replicas
        if replication.slaveConnections[connection] != slaveId {
            replication.slaveConnections[connection] = slaveId
            actions.append(.notice(.replication("slave \(slaveId) connected (\(connection))")))
            // The tracker must know every partition's end before it judges the slave: with no
            // end known (no sync yet in this process or term) a slave that has nothing would
            // count as caught up — and be published as able to take over (the sweep's seed 424).
            var decisions: [ReplicaTracker.Decision] = []
            for partition in stores.partitions {
                guard let log = stores.log(partition), log.failure == nil else { continue }
                decisions += replication.tracker.localDurable(partition, end: log.maxOffset, now: clock.now)
            }
            performTracker(decisions + replication.tracker.slaveConnected(slaveId, now: clock.now), clock, &actions)
            armReplicationTimer(clock, &actions)
        }
        if known == stores.partitionCount, phase == .running,
           replication.parkedHellos.count < MasterReplication.maxParked {
            replication.parkedHellos.append((connection, opaque, clock.now.adding(milliseconds: MasterReplication.helloHoldMs)))
            armReplicationTimer(clock, &actions)
        } else {
            actions.append(.reply(connection, ResultResponse(code: StatusCode.success, body: partitionList(), opaque: opaque)))
        }
        return true
    }

    /// Why this broker serves no slave now (nil: it serves them): with failover, only the leader
    /// of a term does. A broker that takes part in an election and does not lead — waiting for
    /// the election, fenced, between terms — has no history to hand out, and a slave copying its
    /// bytes would hold bytes of no term it follows: the failover sweep's seed 29960, a slave
    /// with no term yet copied a record a restarted configured master had never had replicated,
    /// from that master while it waited for the election; much later, taking the final leader's
    /// history as a new copy's (nothing to cut: its logs followed no term), it kept that record
    /// where the final leader's log held another.
    var notServingSlavesText: String? {
        guard elected, leadingTerm == nil else { return nil }
        return "broker \(settings.brokerURI) does not lead broker \(config.brokerId) now and serves no slave: "
            + (fencedReason ?? "waiting for the election")
    }

    /// Every partition with its first and durable end offsets, as `stats offsets` lists them.
    func partitionList() -> [UInt8] {
        var lines = ["STATS"]
        let term = termLine()
        if let term { lines.append(term) }
        for partition in stores.partitions {
            guard let log = stores.log(partition) else { continue }
            var line = "\(partition.topic) part \(partition.partition) min_offset \(log.minOffset) max_offset \(log.maxOffset)"
            // A leader's history (failover): where its term began; a partition it created in its
            // term begins there.
            if term != nil { line += " term_start \(termStarts[partition] ?? log.minOffset)" }
            lines.append(line)
        }
        lines.append("END")
        return Array((lines.joined(separator: "\r\n") + "\r\n").utf8)
    }

    /// Answers the held partition questions that `release` picks (all by default).
    func releaseHellos(_ clock: NodeClock, _ actions: inout [Action],
                       where release: ((connection: ConnectionID, opaque: Int32, until: Instant)) -> Bool = { _ in true }) {
        let replication = replicas
        var body: [UInt8]?
        var kept: [(connection: ConnectionID, opaque: Int32, until: Instant)] = []
        let refusal = notServingSlavesText
        for held in replication.parkedHellos {
            guard release(held) else { kept.append(held); continue }
            guard openConnections.contains(held.connection) else { continue }
            if let refusal {
                // Held while leading, released once it stopped: no history to hand out now.
                actions.append(.reply(held.connection, ResultResponse(code: StatusCode.internalServerError, text: refusal,
                                                                      opaque: held.opaque)))
                continue
            }
            if body == nil { body = partitionList() }
            actions.append(.reply(held.connection, ResultResponse(code: StatusCode.success, body: body!, opaque: held.opaque)))
        }
        replication.parkedHellos = kept
    }

    /// A sync of `partition` finished on a master: the tracker learns the new durable end, and
    /// the fetches held at the old end are answered.
    func masterSynced(_ partition: TopicPartition, _ log: PartitionLog, _ clock: NodeClock, _ actions: inout [Action]) {
        guard replica == nil else { return }
        let replication = replicas
        if replication.synchronous || !replication.slaveConnections.isEmpty {
            performTracker(replication.tracker.localDurable(partition, end: log.maxOffset, now: clock.now), clock, &actions)
        }
        releaseParked(partition, clock, &actions) { $0.get.offset < log.maxOffset }
    }

    /// Answers the held fetches of `partition` that `release` picks (through the machine, as
    /// ordinary gets).
    func releaseParked(_ partition: TopicPartition, _ clock: NodeClock, _ actions: inout [Action],
                       where release: (MasterReplication.Parked) -> Bool) {
        let replication = replicas
        guard let list = replication.parked[partition] else { return }
        var kept: [MasterReplication.Parked] = []
        var released: [MasterReplication.Parked] = []
        for held in list { if release(held) { released.append(held) } else { kept.append(held) } }
        replication.parked[partition] = kept.isEmpty ? nil : kept
        replication.parkedCount -= released.count
        for held in released where openConnections.contains(held.connection) {
            feed(.request(held.connection, .get(held.get)), clock, &actions)
        }
    }

    /// A connection closed: a slave's leaves the tracker (when it was that slave's last), its
    /// held fetches go.
    func replicationConnectionClosed(_ connection: ConnectionID, _ clock: NodeClock, _ actions: inout [Action]) {
        let replication = replicas
        replication.parkedHellos.removeAll { $0.connection == connection }
        guard let slaveId = replication.slaveConnections.removeValue(forKey: connection) else { return }
        for partition in replication.parked.keys.sorted() {
            let before = replication.parked[partition]!.count
            replication.parked[partition]!.removeAll { $0.connection == connection }
            replication.parkedCount -= before - replication.parked[partition]!.count
            if replication.parked[partition]!.isEmpty { replication.parked[partition] = nil }
        }
        if !replication.slaveConnections.values.contains(slaveId) {
            actions.append(.notice(.replication("slave \(slaveId) disconnected")))
            performTracker(replication.tracker.slaveDisconnected(slaveId, now: clock.now), clock, &actions)
        }
    }

    /// A synchronous master's put is durable here: it waits for its copies (answered now when the
    /// tracker says so). Returns false when the put does not wait (asynchronous mode).
    func awaitReplication(_ token: UInt64, offset: Int64, partition: TopicPartition, _ clock: NodeClock,
                          _ actions: inout [Action]) -> Bool {
        let replication = replicas
        guard replication.synchronous, let end = replication.recordEnds.removeValue(forKey: token) else { return false }
        if settings.canary == .answerBeforeSlavesConfirm { return false }
        replication.waiting[token] = offset
        performTracker(replication.tracker.putWaiting(token: token, partition, end: end, now: clock.now), clock, &actions)
        armReplicationTimer(clock, &actions)
        return true
    }

    func performTracker(_ decisions: [ReplicaTracker.Decision], _ clock: NodeClock, _ actions: inout [Action]) {
        let replication = replicas
        for decision in decisions {
            switch decision {
            case .answer(let token):
                guard let offset = replication.waiting.removeValue(forKey: token) else {
                    violated("the replication tracker answered an unknown put \(token)")
                    continue
                }
                if Self.isCommitToken(token) {
                    commitBatchStored(token, clock, &actions)
                } else {
                    feed(.appended(token: token, .success(offset)), clock, &actions)
                }
            case .refuse(let token, let text):
                guard replication.waiting[token] != nil else {
                    violated("the replication tracker refused an unknown put \(token)")
                    continue
                }
                if Self.isCommitToken(token) {
                    // A commit whose entry is durable cannot be refused: its transaction is
                    // committed here, and a resend would store its messages twice. With too few
                    // copies in sync it is answered on this broker's copy alone.
                    replication.waiting[token] = nil
                    commitBatchStored(token, clock, &actions)
                } else {
                    failReplicationWait(token, text, clock, &actions)
                }
            case .inSyncChanged(let slaves):
                actions.append(.notice(.replication(slaves.isEmpty ? "no slave is in sync"
                                                        : "slaves in sync: \(slaves.map(String.init).joined(separator: ","))")))
                actions.append(.publishInSync(slaves))
            }
        }
    }

    /// Answers a put (or a commit's batch) that waited for its slaves with `text`: stored here,
    /// not confirmed as the mode promises.
    func failReplicationWait(_ token: UInt64, _ text: String, _ clock: NodeClock, _ actions: inout [Action]) {
        guard replicas.waiting.removeValue(forKey: token) != nil else { return }
        replicas.refusedPuts += 1
        if Self.isCommitToken(token) {
            commitBatchFailed(token, text, clock, &actions)
        } else {
            feed(.appended(token: token, .failure(.init(text))), clock, &actions)
        }
    }

    /// The master's due work: held fetches that waited long enough are answered (nothing new),
    /// the tracker drops slaves that stopped catching up.
    func masterTimerFired(_ clock: NodeClock, _ actions: inout [Action]) {
        let replication = replicas
        let now = clock.now
        for partition in replication.parked.keys.sorted() { releaseParked(partition, clock, &actions) { $0.until <= now } }
        releaseHellos(clock, &actions) { $0.until <= now }
        if let at = replication.tickAt, at <= now {
            replication.tickAt = nil
            performTracker(replication.tracker.tick(now: now), clock, &actions)
        }
    }

    /// Arms the replication timer for the earliest deadline of either side.
    func armReplicationTimer(_ clock: NodeClock, _ actions: inout [Action]) {
        guard phase == .running else { return }
        let replication = replicas
        // The tracker needs time to pass only while slaves are connected or puts wait.
        if replication.tickAt == nil, !replication.slaveConnections.isEmpty || !replication.waiting.isEmpty {
            replication.tickAt = clock.now.adding(milliseconds: max(10, min(1000, replication.tracker.settings.maxLagMs / 4)))
        }
        var deadline = replication.nextDeadline
        if let slaveDeadline = replica?.nextDeadline, deadline.map({ slaveDeadline < $0 }) ?? true { deadline = slaveDeadline }
        if let retry = leadRetry?.at, deadline.map({ retry < $0 }) ?? true { deadline = retry }
        guard let deadline else { return }
        if let armed = replicationTimerAt, armed <= deadline, armed > clock.now { return }
        replicationTimerAt = deadline
        actions.append(.armTimer(.replication, at: deadline))
    }

    func replicationTimerFired(_ clock: NodeClock, _ actions: inout [Action]) {
        replicationTimerAt = nil
        retryLeading(clock, &actions)
        if let replica { replicaTimerFired(replica, clock, &actions) }
        masterTimerFired(clock, &actions)
        armReplicationTimer(clock, &actions)
    }

    /// Stop: held fetches are answered, synchronous puts still waiting for their copies are
    /// refused (they are stored here, but not confirmed by the slaves the mode promises).
    func stopReplication(_ clock: NodeClock, _ actions: inout [Action]) {
        let replication = replicas
        for partition in replication.parked.keys.sorted() { releaseParked(partition, clock, &actions) { _ in true } }
        releaseHellos(clock, &actions)
        for token in replication.tracker.removeAllWaiting() {
            failReplicationWait(token, "the broker is stopping before its slaves confirmed the message", clock, &actions)
        }
        if let replica, let number = replica.linkNumber {
            actions.append(.closeMasterLink(link: number))
            replica.link = .none
        }
    }

    /// A put sent to a slave (issue 17), or to a master that does not lead now (failover):
    /// refused, as a slave's logs take the master's bytes only.
    func refuseOnSlave(_ frame: borrowing Frame, from connection: ConnectionID, _ actions: inout [Action]) -> Bool {
        let text: String
        if let replica {
            text = "broker \(settings.brokerURI) is slave \(replica.settings.slaveId) of broker \(config.brokerId)"
                + " and accepts no messages; send them to its master\(replica.masterURI.map { " \($0)" } ?? "")"
        } else if let fencedReason {
            text = "broker \(settings.brokerURI) does not lead broker \(config.brokerId) now and accepts no messages: \(fencedReason)"
        } else {
            return false
        }
        switch frame {
        case .put(let put):
            actions.append(.reply(connection, ResultResponse(
                code: StatusCode.internalServerError,
                text: "Put message to [broker '\(settings.brokerURI)'] [partition '\(put.topic)-\(put.partition)'] failed.Detail:\(text)",
                opaque: put.opaque)))
            return true
        case .transaction(let command):
            actions.append(.reply(connection, ResultResponse(code: StatusCode.internalServerError, text: text, opaque: command.opaque)))
            return true
        default:
            return false
        }
    }

    /// `stats replication`: what this broker replicates, per partition, and how far behind.
    func replicationStats(_ clock: NodeClock) -> [UInt8] {
        var lines = ["STATS"]
        if let replica {
            lines.append("role slave")
            lines.append("slave_id \(replica.settings.slaveId)")
            lines.append("slave_group \(replica.settings.slaveGroup)")
            lines.append("master \(replica.masterURI ?? "unknown")")
            let linkState: String
            switch replica.link {
            case .none: linkState = "closed"
            case .connecting: linkState = "connecting"
            case .open: linkState = "open"
            }
            lines.append("master_link \(linkState)")
            lines.append("replicate_partitions \(replica.masterEnds.count)")
            lines.append("replicated_bytes \(replica.bytesReplicated)")
            lines.append("fetches \(replica.fetches)")
            lines.append("log_restarts \(replica.logRestarts)")
            lines.append("bytes_cut \(replica.bytesCut)")
            if let consistentTerm { lines.append("term \(consistentTerm)") }
            // A follower copying a partition again may not take over until it reached the end.
            if elected { lines.append("copying_again \(logsCopying)") }
            for partition in replica.masterEnds.keys.sorted() {
                let local = stores.log(partition)?.maxOffset ?? 0
                let master = replica.masterEnds[partition] ?? 0
                let lagBytes = max(0, master - local)
                let lagMs: String
                if replica.atEnd.contains(partition) {
                    lagMs = "0"
                } else if let at = replica.caughtUpAt[partition] {
                    lagMs = "\(clock.now.milliseconds(since: at))"
                } else {
                    lagMs = "unknown"
                }
                lines.append("\(partition.topic) part \(partition.partition) local_end \(local) master_end \(master) "
                    + "lag_bytes \(lagBytes) lag_ms \(lagMs)")
            }
        } else {
            let replication = replicas
            lines.append("role master")
            if let leadingTerm { lines.append("term \(leadingTerm)") }
            if let fencedReason { lines.append("fenced \(fencedReason)") }
            lines.append("synchronous \(replication.synchronous)")
            lines.append("min_in_sync_replicas \(replication.tracker.settings.minInSyncReplicas)")
            lines.append("max_lag_ms \(replication.tracker.settings.maxLagMs)")
            let connected = Set(replication.slaveConnections.values).sorted()
            lines.append("slaves_connected \(connected.map(String.init).joined(separator: ","))")
            lines.append("slaves_in_sync \(replication.tracker.inSync.map(String.init).joined(separator: ","))")
            lines.append("puts_waiting \(replication.waiting.count)")
            lines.append("puts_refused \(replication.refusedPuts)")
            for slave in connected {
                for partition in stores.partitions {
                    let position = replication.tracker.position(of: slave, partition)
                    lines.append("slave \(slave) \(partition.topic) part \(partition.partition) position \(position.map(String.init) ?? "none") "
                        + "lag_bytes \(replication.tracker.lag(of: slave, partition)) "
                        + "lag_ms \(replication.tracker.lagMs(of: slave, now: clock.now).map(String.init) ?? "unknown")")
                }
            }
        }
        lines.append("END")
        return Array((lines.joined(separator: "\r\n") + "\r\n").utf8)
    }
}
