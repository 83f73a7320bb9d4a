import DequeModule

/// The master's view of its slaves (issue 17, reference §6): how far each slave's copy of each
/// partition is durable, which slaves are in sync, and — with synchronous replication — which
/// waiting puts may be answered.
///
/// One mechanism for both modes: a slave copies each partition with ordinary fetches and reports,
/// after each of its syncs, the end of what it has made durable ("everything below X is on my
/// disk", `slaveReported`). The master's **high watermark** of a partition is the lowest of its own
/// synced end and the positions of its in-sync slaves. Asynchronous mode only watches; in
/// synchronous mode a put waits until the high watermark passes its end — Kafka's rule — and the
/// put is refused with the original's text when fewer than `minInSyncReplicas` copies (the master
/// counts as one) are in sync.
///
/// A slave is **in sync** while it is connected and has been caught up — its position at or past
/// the master's synced end on every partition the master has — at some moment within the last
/// `maxLagMs`. One that falls behind or disconnects drops out (and stops holding puts back); it
/// rejoins by itself once it catches up again.
///
/// Pure: time comes with each event; slaves are visited in id order; every queue is bounded by
/// the puts the node admits.
public struct ReplicaTracker: Sendable {
    public struct Settings: Equatable, Sendable {
        /// Puts are answered only once the in-sync slaves have them (synchronous replication).
        public var synchronous: Bool
        /// How long a slave may be behind (or silent) before it leaves the in-sync set.
        public var maxLagMs: Int64
        /// Copies (the master's included) that must be in sync for a synchronous put to be
        /// answered; with fewer, waiting puts are refused. 1 favours availability (the master
        /// alone answers); the default 2 is the safe one — a put is on two disks before its answer.
        public var minInSyncReplicas: Int
        /// Failover: a put is answered only once `minInSyncReplicas` − 1 slaves are also in the
        /// published set (`inSyncPublished`), the slaves that may take over. Until the election
        /// has written a slave that joined, puts wait for it rather than being refused.
        public var answerOnlyWithPublished: Bool

        public init(synchronous: Bool = false, maxLagMs: Int64 = 10_000, minInSyncReplicas: Int = 2,
                    answerOnlyWithPublished: Bool = false) {
            self.synchronous = synchronous
            self.maxLagMs = maxLagMs
            self.minInSyncReplicas = max(1, minInSyncReplicas)
            self.answerOnlyWithPublished = answerOnlyWithPublished
        }
    }

    /// What the master's node must do.
    public enum Decision: Equatable, Sendable {
        /// The put with this token is replicated as the settings require: answer it.
        case answer(token: UInt64)
        /// It cannot be: answer it with this 500 text (the original's, §6.2).
        case refuse(token: UInt64, text: String)
        /// The in-sync set changed (publish it: failover takes a slave from it).
        case inSyncChanged([Int])
    }

    struct Slave: Sendable {
        var connected = false
        var positions: [TopicPartition: Int64] = [:]
        /// The partitions whose master end it has not reached (kept as events come, so no event
        /// scans every partition).
        var behind: Set<TopicPartition> = []
        /// When it was last caught up on every partition.
        var caughtUpAt: Instant?
    }

    public let settings: Settings
    var slaves: [Int: Slave] = [:]
    /// The master's own synced end per partition.
    var localEnd: [TopicPartition: Int64] = [:]
    /// Synchronous puts waiting for their replication, per partition in offset order.
    var waiting: [TopicPartition: Deque<(token: UInt64, end: Int64)>] = [:]
    /// The in-sync set last published (slave ids, ascending).
    public private(set) var inSync: [Int] = []
    /// With failover: the in-sync set ZooKeeper holds (the election confirmed its write), whose
    /// slaves may take over. The high watermark waits for them too, so no put is answered
    /// without a slave that could still take over.
    public private(set) var published: [Int] = []

    public init(settings: Settings) {
        self.settings = settings
    }

    // MARK: Events

    /// A slave connected (its first report will say where it is). What an earlier connection
    /// reported says nothing now: the slave may have cut or re-copied its logs since (a new
    /// term's history), so it starts behind on every partition the master has data in.
    public mutating func slaveConnected(_ slaveId: Int, now: Instant) -> [Decision] {
        var slave = Slave()
        slave.behind = Set(localEnd.filter { $0.value > 0 }.keys)
        slave.connected = true
        slaves[slaveId] = slave
        return reevaluate(now, drain: nil)
    }

    /// A slave's connection is gone: it leaves the in-sync set at once.
    public mutating func slaveDisconnected(_ slaveId: Int, now: Instant) -> [Decision] {
        slaves[slaveId]?.connected = false
        slaves[slaveId]?.caughtUpAt = nil
        return reevaluate(now, drain: nil)
    }

    /// A slave reported `partition` durable up to `offset`: everything below it is on its disk.
    /// (A report behind the last one — a slave that restarted and lost an unsynced tail — is
    /// taken as it is: the slave has less than it said.)
    public mutating func slaveReported(_ slaveId: Int, _ partition: TopicPartition, offset: Int64, now: Instant) -> [Decision] {
        if slaves[slaveId] == nil { _ = slaveConnected(slaveId, now: now) }
        slaves[slaveId]!.connected = true
        slaves[slaveId]!.positions[partition] = offset
        if offset >= localEnd[partition] ?? 0 {
            slaves[slaveId]!.behind.remove(partition)
        } else {
            slaves[slaveId]!.behind.insert(partition)
        }
        return reevaluate(now, drain: partition)
    }

    /// The master's log of `partition` is durable up to `end`.
    public mutating func localDurable(_ partition: TopicPartition, end: Int64, now: Instant) -> [Decision] {
        let newEnd = max(localEnd[partition] ?? 0, end)
        localEnd[partition] = newEnd
        for id in slaves.keys where (slaves[id]!.positions[partition] ?? 0) < newEnd { slaves[id]!.behind.insert(partition) }
        return reevaluate(now, drain: partition)
    }

    /// A put to `partition` ending at `end`, durable on the master or about to be, waits for its
    /// replication (synchronous mode; in asynchronous mode it is answered at once).
    public mutating func putWaiting(token: UInt64, _ partition: TopicPartition, end: Int64, now: Instant) -> [Decision] {
        guard settings.synchronous else { return [.answer(token: token)] }
        // The hot path of a synchronous put: no scan of slaves or partitions.
        if inSync.count + 1 < settings.minInSyncReplicas { return [.refuse(token: token, text: Self.disconnectedText)] }
        if waiting[partition] == nil, publishedEnough, end <= highWatermark(partition) { return [.answer(token: token)] }
        // Puts reach here in offset order per partition (the node answers a log's puts in order);
        // one that does not is placed where it belongs rather than trusted blindly. In place: a
        // copy of the queue per put would make a long queue quadratic.
        if let last = waiting[partition]?.last, last.end > end {
            let index = waiting[partition]!.firstIndex { $0.end > end }!
            waiting[partition]!.insert((token, end), at: index)
        } else {
            waiting[partition, default: []].append((token, end))
        }
        return []
    }

    /// Forgets every waiting put (the master stops, or stops leading: the node answers them
    /// itself); their tokens, by partition and offset.
    public mutating func removeAllWaiting() -> [UInt64] {
        var tokens: [UInt64] = []
        for partition in waiting.keys.sorted() { tokens += waiting[partition]!.map(\.token) }
        waiting = [:]
        return tokens
    }

    /// The original's refusal when its slave is gone (§6.2).
    public static let disconnectedText = "Slave is disconnected "

    /// Time passes: slaves that stopped catching up leave the in-sync set.
    public mutating func tick(now: Instant) -> [Decision] {
        reevaluate(now, drain: nil)
    }

    // MARK: Queries

    /// The highest offset of `partition` every in-sync copy has durably (the master's included),
    /// and every slave of the published set (failover: any of them may take over).
    public func highWatermark(_ partition: TopicPartition) -> Int64 {
        var mark = localEnd[partition] ?? 0
        for id in inSync { mark = min(mark, slaves[id]?.positions[partition] ?? 0) }
        for id in published where !inSync.contains(id) { mark = min(mark, slaves[id]?.positions[partition] ?? 0) }
        return mark
    }

    /// Whether enough slaves that may take over are published (always, without
    /// `answerOnlyWithPublished`).
    var publishedEnough: Bool {
        !settings.answerOnlyWithPublished || published.count + 1 >= settings.minInSyncReplicas
    }

    /// The election wrote `ids` as the in-sync set: puts that waited only for slaves outside it
    /// may now be answered.
    public mutating func inSyncPublished(_ ids: [Int], now: Instant) -> [Decision] {
        published = ids.sorted()
        guard settings.synchronous, !waiting.isEmpty else { return [] }
        var decisions: [Decision] = []
        for partition in waiting.keys.sorted() { drainWaiting(partition, &decisions) }
        return decisions
    }

    /// How far `slaveId` is behind on `partition`, in bytes (the master's synced end minus its
    /// position).
    public func lag(of slaveId: Int, _ partition: TopicPartition) -> Int64 {
        max(0, (localEnd[partition] ?? 0) - (slaves[slaveId]?.positions[partition] ?? 0))
    }

    /// The durable position `slaveId` last reported for `partition`.
    public func position(of slaveId: Int, _ partition: TopicPartition) -> Int64? {
        slaves[slaveId]?.positions[partition]
    }

    /// How long ago `slaveId` was last caught up on every partition (nil: never, or gone).
    public func lagMs(of slaveId: Int, now: Instant) -> Int64? {
        slaves[slaveId]?.caughtUpAt.map { now.milliseconds(since: $0) }
    }

    public var waitingPuts: Int { waiting.values.reduce(0) { $0 + $1.count } }

    // MARK: Rules

    /// Recomputes who is in sync (O(slaves): each slave's `behind` set is kept by the events),
    /// then answers or refuses what the new state allows — on every partition when the set
    /// changed, else on `drain` only.
    mutating func reevaluate(_ now: Instant, drain: TopicPartition?) -> [Decision] {
        var decisions: [Decision] = []
        var current: [Int] = []
        for id in slaves.keys.sorted() where slaves[id]!.connected {
            if slaves[id]!.behind.isEmpty { slaves[id]!.caughtUpAt = now }
            if let at = slaves[id]!.caughtUpAt, now.milliseconds(since: at) <= settings.maxLagMs { current.append(id) }
        }
        let changed = current != inSync
        if changed {
            inSync = current
            decisions.append(.inSyncChanged(current))
        }
        guard settings.synchronous, !waiting.isEmpty else { return decisions }
        if changed {
            for partition in waiting.keys.sorted() { drainWaiting(partition, &decisions) }
        } else if let drain, waiting[drain] != nil {
            drainWaiting(drain, &decisions)
        }
        return decisions
    }

    /// Answers the waiting puts of `partition` below the high watermark, or refuses them all
    /// when fewer copies than `minInSyncReplicas` are in sync (the original's answer when its
    /// slave is gone, §6.2, so the producer retries elsewhere or later).
    mutating func drainWaiting(_ partition: TopicPartition, _ decisions: inout [Decision]) {
        let enoughCopies = inSync.count + 1 >= settings.minInSyncReplicas
        // Enough in sync but not yet published: wait for the election's write, refuse nothing.
        if enoughCopies, !publishedEnough { return }
        let mark = enoughCopies ? highWatermark(partition) : Int64.min
        while let first = waiting[partition]?.first {
            if enoughCopies {
                guard first.end <= mark else { break }
                decisions.append(.answer(token: first.token))
            } else {
                decisions.append(.refuse(token: first.token, text: Self.disconnectedText))
            }
            waiting[partition]!.removeFirst()
        }
        if waiting[partition]?.isEmpty == true { waiting[partition] = nil }
    }

    /// Invariants: waiting puts in offset order per partition; only synchronous mode has any; the
    /// published set holds connected slaves only.
    public func checkInvariants() -> [String] {
        var problems: [String] = []
        if !settings.synchronous && !waiting.isEmpty { problems.append("puts wait in asynchronous mode") }
        for (partition, queue) in waiting where !zip(queue, queue.dropFirst()).allSatisfy({ $0.end <= $1.end }) {
            problems.append("puts of \(partition) wait out of offset order")
        }
        for id in inSync where slaves[id]?.connected != true { problems.append("slave \(id) is in sync but not connected") }
        for (id, slave) in slaves.sorted(by: { $0.key < $1.key }) {
            let expected = Set(localEnd.filter { (slave.positions[$0.key] ?? 0) < $0.value }.keys)
            if slave.behind != expected { problems.append("slave \(id): behind on \(slave.behind.sorted()), expected \(expected.sorted())") }
        }
        return problems
    }
}
