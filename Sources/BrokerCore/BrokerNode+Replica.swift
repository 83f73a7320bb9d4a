import ProtocolCore
import StoreCore

/// A slave's copying of its master (issue 17, reference §6.1), as the node's part: one connection
/// to the master, the `ReplicaFetcher` that decides what to ask, and the master's records stored
/// as they are (same bytes, same offsets). The master's partitions come from its `stats offsets`
/// (asked when the link opens and every `refreshMs`), so a slave needs neither ZooKeeper nor the
/// master's topic sections to find them; the same answers give each partition's lag in bytes.
final class ReplicaState {
    enum Link: Equatable {
        case none
        case connecting(UInt64)
        case open(UInt64)
    }

    enum Request {
        case partitions
        case firstOffset(TopicPartition)
        case fetch(TopicPartition, offset: Int64)
        /// A durable end told to the master (its answer carries nothing the slave needs).
        case report
    }

    let settings: ReplicationConfig.Slave
    var fetcher: ReplicaFetcher
    var masterURI: String?
    var link = Link.none
    var nextLink: UInt64 = 1
    /// When to try connecting again after a failed or lost link.
    var reconnectAt: Instant?
    /// When to ask for the master's partitions again.
    var refreshAt: Instant?
    /// When the fetcher asked to be woken.
    var wakeAt: Instant?
    var pending: [Int32: (request: Request, sentAt: Instant)] = [:]
    var nextOpaque: Int32 = 1
    /// The master's readable end of each partition, from its last `stats offsets`.
    var masterEnds: [TopicPartition: Int64] = [:]
    /// And its first offset (retention moves it).
    var masterStarts: [TopicPartition: Int64] = [:]
    /// When each partition was last found at the master's end (its lag in time is measured
    /// from there); nil: not yet.
    var caughtUpAt: [TopicPartition: Instant] = [:]
    /// Partitions whose last fetch found nothing new.
    var atEnd: Set<TopicPartition> = []
    var bytesReplicated: Int64 = 0
    var fetches: Int64 = 0
    var linksOpened: Int64 = 0
    var logRestarts: Int64 = 0
    /// Bytes cut off because a new leader's history did not have them (failover).
    var bytesCut: Int64 = 0
    /// The problem reported last (reported again only after a success).
    var lastProblem: String?
    /// Whether the master answered this link's first hello (and its history, an elected
    /// leader's, was adopted): until then this slave fetches nothing from it.
    var helloAnswered = false

    static let refreshMs: Int64 = 1000
    /// An empty answer that took this long was held by the master (`fetchHoldMs`).
    static let heldAnswerMs: Int64 = 20
    static let reconnectDelayMs: Int64 = 1000
    /// A fetch not answered in this time means the link is broken (a held fetch at the master's
    /// end is answered within the master's `fetchHoldMs`, at most 60 s).
    static let requestTimeoutMs: Int64 = 70_000
    /// A question about the partitions not answered in this time means the same: the master
    /// holds one at most `MasterReplication.helloHoldMs` (1 s) and answers an offset at once. One
    /// of them is nearly always asked, so a master that died silently (a power loss: no reset
    /// comes) is given up within this, not after a fetch's timeout.
    static let questionTimeoutMs: Int64 = 10_000

    static func timeoutMs(of request: Request) -> Int64 {
        switch request {
        case .fetch: return requestTimeoutMs
        case .partitions, .firstOffset, .report: return questionTimeoutMs
        }
    }

    /// When the earliest request in flight times out.
    var requestDeadline: Instant? {
        pending.values.map { $0.sentAt.adding(milliseconds: Self.timeoutMs(of: $0.request)) }.min()
    }

    init(settings: ReplicationConfig.Slave, maxTransferSize: Int) {
        self.settings = settings
        fetcher = ReplicaFetcher(settings: .init(fetchBytes: min(1 << 20, maxTransferSize), maxTransferSize: maxTransferSize,
                                                 minDelayMs: 5, maxDelayMs: settings.maxDelayMs, retryDelayMs: 100))
    }

    var linkNumber: UInt64? {
        switch link {
        case .none: return nil
        case .connecting(let number), .open(let number): return number
        }
    }

    func takeOpaque() -> Int32 {
        let opaque = nextOpaque
        nextOpaque = nextOpaque == Int32.max - 1 ? 1 : nextOpaque + 1
        return opaque
    }

    /// The earliest time something is due.
    var nextDeadline: Instant? {
        var earliest: Instant?
        for candidate in [reconnectAt, refreshAt, wakeAt] {
            guard let candidate else { continue }
            if earliest.map({ candidate < $0 }) ?? true { earliest = candidate }
        }
        if let timeout = requestDeadline, earliest.map({ timeout < $0 }) ?? true { earliest = timeout }
        return earliest
    }
}

extension BrokerNode {
    /// Where the master is (nil: unknown). A new address closes the link to the old one.
    func masterAddressChanged(_ uri: String?, _ clock: NodeClock, _ actions: inout [Action]) {
        guard let replica, phase == .running, replica.masterURI != uri else { return }
        dropMasterLink(replica, clock, &actions, reason: uri.map { "the master is now \($0)" } ?? "the master is gone")
        replica.masterURI = uri
        replica.reconnectAt = nil
        if let uri {
            actions.append(.notice(.replication("following master \(uri) as slave \(replica.settings.slaveId)")))
            connectToMaster(replica, &actions)
        }
        armReplicationTimer(clock, &actions)
    }

    func connectToMaster(_ replica: ReplicaState, _ actions: inout [Action]) {
        guard let uri = replica.masterURI, replica.link == .none else { return }
        let number = replica.nextLink
        replica.nextLink += 1
        replica.link = .connecting(number)
        actions.append(.connectToMaster(link: number, uri: uri))
    }

    func masterLinkOpened(_ link: UInt64, _ clock: NodeClock, _ actions: inout [Action]) {
        guard let replica, replica.link == .connecting(link) else { return }
        replica.link = .open(link)
        replica.linksOpened += 1
        actions.append(.notice(.replication("connected to master \(replica.masterURI ?? "?")")))
        // Nothing is fetched on a new link before the master's answer to the hello: a master
        // elected for failover hands its history there, and bytes copied before it is adopted
        // are bytes of a term this copy does not follow yet (the failover sweep's seed 575: a
        // slave copied the new leader's term-3 bytes over the old one's link state, never read
        // term 3's history, led term 4 saying its logs followed term 1, and the deposed master
        // kept a term-1 tail under those bytes). The fetcher starts again from the logs as they
        // are, once the answer names the partitions.
        replica.fetcher = ReplicaFetcher(settings: replica.fetcher.settings)
        replica.helloAnswered = false
        askForPartitions(replica, clock, &actions)
        armReplicationTimer(clock, &actions)
    }

    func masterLinkClosed(_ link: UInt64, _ clock: NodeClock, _ actions: inout [Action]) {
        guard let replica, replica.linkNumber == link else { return }
        let wasOpen = replica.link == .open(link)
        replica.link = .none
        lostMasterRequests(replica, clock, &actions)
        replica.reconnectAt = clock.now.adding(milliseconds: ReplicaState.reconnectDelayMs)
        report(replica, wasOpen ? "the connection to master \(replica.masterURI ?? "?") closed; reconnecting"
                                : "cannot connect to master \(replica.masterURI ?? "?"); retrying", &actions)
        armReplicationTimer(clock, &actions)
    }

    /// Closes the link (if any) and forgets what was asked on it.
    func dropMasterLink(_ replica: ReplicaState, _ clock: NodeClock, _ actions: inout [Action], reason: String) {
        guard let number = replica.linkNumber else { return }
        actions.append(.closeMasterLink(link: number))
        replica.link = .none
        lostMasterRequests(replica, clock, &actions)
        actions.append(.notice(.replication("closed the connection to master \(replica.masterURI ?? "?"): \(reason)")))
    }

    func lostMasterRequests(_ replica: ReplicaState, _ clock: NodeClock, _ actions: inout [Action]) {
        replica.pending.removeAll()
        replica.refreshAt = nil
        performFetcher(replica.fetcher.connectionLost(now: clock.now), replica, clock, &actions)
    }

    func askForPartitions(_ replica: ReplicaState, _ clock: NodeClock, _ actions: inout [Action]) {
        replica.refreshAt = nil
        // The first hello on a link claims to know no partition, so that the master answers it at
        // once instead of holding it while its partitions do not change (this slave fetches
        // nothing until then; the count it knew came from another link, perhaps another master).
        let known = replica.helloAnswered ? replica.masterEnds.count : 0
        let item = Self.slaveHelloPrefix + "\(replica.settings.slaveId)-\(known)"
        send(.stats(StatsCommand(item: item, opaque: nil)), as: .partitions, replica, clock, &actions)
    }

    /// Sends a request on the open link; false when the link is not open (the caller fails the
    /// request, so the fetcher asks again later).
    @discardableResult
    func send(_ frame: Frame, as request: ReplicaState.Request, _ replica: ReplicaState, _ clock: NodeClock,
              _ actions: inout [Action]) -> Bool {
        guard case .open(let number) = replica.link else { return false }
        var frame = frame
        let opaque = replica.takeOpaque()
        switch frame {
        case .stats(var command): command.opaque = opaque; frame = .stats(command)
        case .offset(var command): command.opaque = opaque; frame = .offset(command)
        case .get(var command): command.opaque = opaque; frame = .get(command)
        default: break
        }
        replica.pending[opaque] = (request, clock.now)
        actions.append(.sendToMaster(link: number, frame))
        return true
    }

    /// An answer from the master.
    func masterLinkFrame(_ link: UInt64, _ frame: Frame, _ clock: NodeClock, _ actions: inout [Action]) {
        guard let replica, replica.link == .open(link) else { return }
        guard let opaque = frame.opaque, let (request, sentAt) = replica.pending.removeValue(forKey: opaque) else { return }
        switch request {
        case .partitions:
            // A question the master held (it answers when its partitions change) is asked again
            // at once; one answered at once (an older master) after `refreshMs`.
            let held = clock.now.milliseconds(since: sentAt) >= ReplicaState.heldAnswerMs
            replica.refreshAt = held ? clock.now : clock.now.adding(milliseconds: ReplicaState.refreshMs)
            guard case .result(let result) = frame, result.code == StatusCode.success else {
                report(replica, "master \(replica.masterURI ?? "?") refused `stats offsets`: \(Self.describe(frame))", &actions)
                return armReplicationTimer(clock, &actions)
            }
            let parsed = Self.parseOffsets(result.body)
            var offsets = parsed.0
            let history = parsed.1
            // Every partition becomes a log here: a master naming more than this broker would ever
            // create is copied up to the bound (by name), the rest reported.
            let bound = replicatedPartitionBound
            if offsets.count > bound {
                let kept = Set(offsets.keys.sorted().prefix(bound))
                report(replica, "master \(replica.masterURI ?? "?") has \(offsets.count) partitions; this slave copies the first "
                    + "\(bound) (maxAutoCreatedPartitions plus its configured topics' partitions)", &actions, problem: true)
                offsets = offsets.filter { kept.contains($0.key) }
            }
            if let history {
                // A leader elected for failover: make the copy consistent with its term first.
                let starts = offsets.mapValues { (min: $0.min, termStart: $0.termStart ?? $0.min) }
                guard adoptHistory(term: history.term, previous: history.previous, starts: starts, replica, clock, &actions) else {
                    // A log that failed while being cut (an fsync error) refuses writes until the
                    // broker restarts: say so as for any failed log, or nobody restarts it and the
                    // follower asks for the history forever (the failover sweep's seed 25633: no
                    // convergence in 60 s, the cut of t0-0 failing every second).
                    for partition in stores.partitions {
                        if let log = stores.log(partition), log.isFailed { reportFailure(partition, log, clock, &actions) }
                    }
                    replica.refreshAt = clock.now.adding(milliseconds: ReplicaState.refreshMs)
                    return armReplicationTimer(clock, &actions)
                }
            }
            replica.helloAnswered = true
            replica.masterEnds = offsets.mapValues(\.max)
            replica.masterStarts = offsets.mapValues(\.min)
            var localEnds: [TopicPartition: Int64] = [:]
            var writtenEnds: [TopicPartition: Int64] = [:]
            for partition in offsets.keys {
                guard let log = stores.log(partition) else { continue }
                localEnds[partition] = log.maxOffset
                writtenEnds[partition] = log.writtenOffset
            }
            performFetcher(replica.fetcher.master(partitions: offsets.keys.sorted(), localEnds: localEnds, writtenEnds: writtenEnds,
                                                  now: clock.now),
                           replica, clock, &actions)
        case .firstOffset(let partition):
            let answer: ReplicaFetcher.Answer
            switch frame {
            case .result(let result) where result.code == StatusCode.success:
                answer = Int64(result.text.trimmedOfWhitespace).map { .firstOffset($0) } ?? .failed("offset answered \(result.text)")
            case .result(let result) where result.code == StatusCode.notFound:
                answer = .firstOffset(0)  // no log on the master yet
            default:
                answer = .failed(Self.describe(frame))
            }
            performFetcher(replica.fetcher.answered(partition, answer, now: clock.now), replica, clock, &actions)
        case .report:
            break
        case .fetch(let partition, let offset):
            replica.fetches += 1
            let answer: ReplicaFetcher.Answer
            switch frame {
            case .value(let value) where !value.body.isEmpty:
                answer = .bytes(value.body)
            case .value:
                answer = .atEnd
            case .result(let result) where result.code == StatusCode.notFound:
                // Held by the master until something came or its hold ran out: ask again at once.
                answer = clock.now.milliseconds(since: sentAt) >= ReplicaState.heldAnswerMs ? .atEndAfterWaiting : .atEnd
            case .result(let result) where result.code == StatusCode.moved:
                if let minimum = Int64(result.text.trimmedOfWhitespace), minimum > offset,
                   minimum <= replica.masterStarts[partition] ?? 0 {
                    answer = .belowMinimum(minOffset: minimum)
                } else if let next = Int64(result.text.trimmedOfWhitespace), next > offset {
                    // Not the master's first offset: it skips a damaged range it will not serve.
                    // A byte-identical copy cannot go past it; wait (retention may remove it).
                    report(replica, "master \(replica.masterURI ?? "?") skips \(partition) from \(offset) to \(next) "
                        + "(damaged there, or its retention ran since the last look): this slave waits", &actions, problem: true)
                    answer = .failed("master skips a range")
                } else {
                    report(replica, "master \(replica.masterURI ?? "?") ends before this slave's copy of \(partition) "
                        + "(fetch at \(offset) answered 301 \(result.text)): the copies differ; this slave waits", &actions, problem: true)
                    answer = .failed("master behind slave")
                }
            default:
                answer = .failed(Self.describe(frame))
            }
            if answer == .atEnd || answer == .atEndAfterWaiting {
                replica.atEnd.insert(partition)
                replica.caughtUpAt[partition] = clock.now
                finishCopyingIfComplete(replica, &actions)
            } else {
                replica.atEnd.remove(partition)
            }
            performFetcher(replica.fetcher.answered(partition, answer, fetchedAt: offset, now: clock.now), replica, clock, &actions)
        }
        armReplicationTimer(clock, &actions)
    }

    /// Carries out what the fetcher asks for.
    func performFetcher(_ fetcherActions: [ReplicaFetcher.Action], _ replica: ReplicaState, _ clock: NodeClock,
                        _ actions: inout [Action]) {
        for action in fetcherActions {
            switch action {
            case .queryFirstOffset(let partition):
                let sent = send(.offset(OffsetCommand(topic: partition.topic, group: replica.settings.slaveGroup,
                                                      partition: partition.partition, offset: 0, opaque: 0)),
                                as: .firstOffset(partition), replica, clock, &actions)
                if !sent { notSent(partition, replica, clock, &actions) }
            case .fetch(let partition, let offset, let maxBytes):
                let sent = send(.get(GetCommand(topic: partition.topic, group: replica.settings.slaveGroup, partition: partition.partition,
                                                offset: offset, maxSize: Int32(clamping: maxBytes), opaque: 0)),
                                as: .fetch(partition, offset: offset), replica, clock, &actions)
                if !sent { notSent(partition, replica, clock, &actions) }
            case .createLog(let partition, let offset):
                do {
                    _ = try replicaLog(partition, startingAt: offset, clock, &actions)
                } catch {
                    report(replica, "cannot create the copy of \(partition): \(error)", &actions, problem: true)
                }
            case .append(let partition, let offset, let records):
                appendReplicated(partition, offset: offset, records, replica, clock, &actions)
            case .report(let partition, let end):
                // Without a link the next connection is told (after its partitions question).
                let sent = send(.offset(OffsetCommand(topic: partition.topic, group: replica.settings.slaveGroup,
                                                      partition: partition.partition, offset: end, opaque: 0)),
                                as: .report, replica, clock, &actions)
                if !sent { replica.fetcher.reportNotSent(partition) }
            case .sync(let partition, _):
                // The append requested a prompt sync; the end of the tick starts it, and its
                // completion tells the fetcher (`replicaSynced`).
                if let log = stores.log(partition) { markDirty(partition, log) }
            case .restartLog(let partition, let offset):
                restartReplicaLog(partition, at: offset, replica, clock, &actions)
            case .wakeUp(let at):
                if replica.wakeAt.map({ at < $0 }) ?? true { replica.wakeAt = at }
            }
        }
    }

    /// The most partitions a slave copies: what its own configuration could ever hold.
    var replicatedPartitionBound: Int {
        config.maxAutoCreatedPartitions + config.topics.reduce(0) { $0 + ($1.numPartitions ?? config.numPartitions) }
    }

    /// A request the link could not carry (it is closed): failed, so the fetcher retries later.
    func notSent(_ partition: TopicPartition, _ replica: ReplicaState, _ clock: NodeClock, _ actions: inout [Action]) {
        performFetcher(replica.fetcher.answered(partition, .failed("not connected to the master"), now: clock.now),
                       replica, clock, &actions)
    }

    /// The local copy of `partition`, created at `startingAt` when missing (its topic registered
    /// like a put's first partition, §3.2).
    func replicaLog(_ partition: TopicPartition, startingAt offset: Int64, _ clock: NodeClock,
                    _ actions: inout [Action]) throws(StoresError) -> PartitionLog {
        if let log = stores.log(partition) { return log }
        let newTopic = !stores.partitions.contains { $0.topic == partition.topic }
        let log = try stores.logCreatingIfNeeded(partition, now: clock.now, startingAt: offset)
        machine.partitionHasData(partition)
        if newTopic {
            actions.append(.registerTopic(registration(of: partition.topic)))
            armRetentionTimer(for: partition.topic, clock, &actions)
        }
        return log
    }

    func appendReplicated(_ partition: TopicPartition, offset: Int64, _ records: [UInt8], _ replica: ReplicaState,
                          _ clock: NodeClock, _ actions: inout [Action]) {
        guard let log = stores.log(partition), !log.isFailed else {
            report(replica, "the copy of \(partition) cannot take the master's records (its log is failed or missing)",
                   &actions, problem: true)
            return performFetcher(replica.fetcher.appendFailed(partition, logEnd: stores.log(partition)?.writtenOffset ?? 0,
                                                               now: clock.now), replica, clock, &actions)
        }
        do {
            try log.stageReplicated(records: records, at: offset)
            replica.bytesReplicated += Int64(records.count)
            replica.lastProblem = nil
            markDirty(partition, log)
            // Written and its sync started at the end of this tick, which the node asks for
            // itself (a driver ends ticks after reading its connections, not its master link).
            actions.append(.endTickNow)
        } catch {
            // Records that fail their checksum, or a copy whose end moved: nothing is stored; the
            // fetcher asks again after its retry delay.
            report(replica, "did not store the master's records for \(partition) at \(offset): \(error)", &actions, problem: true)
            if case .failed = error { abandon(partition, log, clock, &actions) }
            performFetcher(replica.fetcher.appendFailed(partition, logEnd: log.writtenOffset, now: clock.now), replica, clock, &actions)
        }
    }

    func restartReplicaLog(_ partition: TopicPartition, at offset: Int64, _ replica: ReplicaState, _ clock: NodeClock,
                           _ actions: inout [Action]) {
        guard syncing[partition] == nil else {
            // Not while a sync of the old log runs; the fetch that found this is asked again.
            return performFetcher(replica.fetcher.answered(partition, .failed("sync running"), now: clock.now), replica, clock, &actions)
        }
        do {
            if lastLog?.partition == partition { lastLog = nil }
            dirtyLogs.removeAll { $0.partition == partition }
            _ = try stores.recreate(partition, startingAt: offset, now: clock.now)
            replica.logRestarts += 1
            actions.append(.notice(.replication("the master no longer has what this slave lacks of \(partition): "
                + "its copy now starts at the master's first offset \(offset)")))
        } catch {
            report(replica, "cannot restart the copy of \(partition) at \(offset): \(error)", &actions, problem: true)
        }
    }

    /// A sync of `partition` finished on a slave: the fetcher may ask for what follows.
    func replicaSynced(_ partition: TopicPartition, _ log: PartitionLog, _ clock: NodeClock, _ actions: inout [Action]) {
        guard let replica else { return }
        performFetcher(replica.fetcher.durable(partition, end: log.maxOffset, now: clock.now), replica, clock, &actions)
        finishCopyingIfComplete(replica, &actions)
        armReplicationTimer(clock, &actions)
    }

    /// A follower copying again (`logsCopying`) has a complete copy once every partition's last
    /// fetch found its leader's end and all it copied is durable: its fetches run ahead of its
    /// syncs, so reaching the end is not yet holding it — a power loss then would leave a half
    /// copy that says it is complete, and may take over.
    func finishCopyingIfComplete(_ replica: ReplicaState, _ actions: inout [Action]) {
        guard logsCopying, replica.masterEnds.keys.allSatisfy({ partition in
            replica.atEnd.contains(partition) && replica.fetcher.durableEnd(partition) == replica.fetcher.writtenEnd(partition)
        }), markCopying(false, &actions) else { return }
        actions.append(.notice(.replication("the logs are a complete copy again: this broker may take over")))
    }

    /// A slave's copy is its master's byte for byte, so damage recovery kept in place (a power
    /// loss tore unsynced records and kept later ones) is not skipped, as a master's log skips it:
    /// the copy is cut back to where the damage starts, and what follows is copied again. (Recovery
    /// finds damage only in the last segment; damage elsewhere cannot be cut off and is reported.)
    func cutDamagedCopies(_ replica: ReplicaState, _ clock: NodeClock, _ actions: inout [Action]) {
        for partition in stores.partitions {
            guard let log = stores.log(partition), let damage = log.damagedRanges.min(by: { $0.lowerBound < $1.lowerBound }) else {
                continue
            }
            do {
                try log.truncate(to: damage.lowerBound)
                actions.append(.notice(.replication("cut the copy of \(partition) back to \(damage.lowerBound), where a power loss "
                    + "left damage; the rest is copied from the master again")))
            } catch {
                report(replica, "the copy of \(partition) is damaged at \(damage) and cannot be cut back there: \(error)",
                       &actions, problem: true)
            }
        }
    }

    /// The slave's due work: reconnect, refresh the partitions, fetch, give up on a silent master.
    func replicaTimerFired(_ replica: ReplicaState, _ clock: NodeClock, _ actions: inout [Action]) {
        let now = clock.now
        if let deadline = replica.requestDeadline, deadline <= now {
            dropMasterLink(replica, clock, &actions, reason: "a request got no answer in time")
            replica.reconnectAt = now
        }
        if let at = replica.reconnectAt, at <= now {
            replica.reconnectAt = nil
            connectToMaster(replica, &actions)
        }
        if let at = replica.refreshAt, at <= now { askForPartitions(replica, clock, &actions) }
        if let at = replica.wakeAt, at <= now {
            replica.wakeAt = nil
            performFetcher(replica.fetcher.tick(now: now), replica, clock, &actions)
        }
    }

    /// Logs a problem once per episode (a success in between starts a new one).
    func report(_ replica: ReplicaState, _ text: String, _ actions: inout [Action], problem: Bool = false) {
        guard replica.lastProblem != text else { return }
        replica.lastProblem = text
        actions.append(.notice(problem ? .replicationProblem(text) : .replication(text)))
    }

    /// `stats replica-<slaveId>-<partitions it knows>`: a slave's question for its master's
    /// partitions, which also tells the master that this connection is that slave's (before it
    /// fetches anything: a master with no partition yet knows its slave is there). Answered like
    /// `stats offsets`, held by the master while nothing changed.
    static let slaveHelloPrefix = "replica-"

    /// The answer to a hello: `stats offsets` lines `<topic> part <p> min_offset <n> max_offset <n>`,
    /// from an elected leader with ` term_start <n>` and a line `term <L> previous <P|none>`.
    static func parseOffsets(_ body: [UInt8])
        -> ([TopicPartition: (min: Int64, max: Int64, termStart: Int64?)], (term: Int64, previous: Int64?)?) {
        var ends: [TopicPartition: (min: Int64, max: Int64, termStart: Int64?)] = [:]
        var history: (term: Int64, previous: Int64?)?
        for line in String(decoding: body, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: " ")
            if fields.count == 4, fields[0] == "term", fields[2] == "previous", let term = Int64(fields[1]), term > 0 {
                history = (term, Int64(fields[3]))
                continue
            }
            guard fields.count == 7 || (fields.count == 9 && fields[7] == "term_start"),
                  fields[1] == "part", fields[3] == "min_offset", fields[5] == "max_offset",
                  let partition = Int32(fields[2]), partition >= 0, let start = Int64(fields[4]), let end = Int64(fields[6]),
                  start >= 0, end >= start, MetaName.problem(with: String(fields[0])) == nil else { continue }
            let termStart = fields.count == 9 ? Int64(fields[8]).map { min(max($0, start), end) } : nil
            ends[TopicPartition(String(fields[0]), partition)] = (start, end, termStart)
        }
        return (ends, history)
    }

    static func describe(_ frame: Frame) -> String {
        switch frame {
        case .result(let result): return "\(result.code) \(result.text)"
        case .value(let value): return "\(value.body.count) bytes"
        default: return "an unexpected frame"
        }
    }
}
