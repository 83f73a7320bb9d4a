import ProtocolCore
import StoreCore

/// The two clocks a node reads, given with every event (DESIGN.md §3: time is an input).
public struct NodeClock: Sendable {
    /// Monotonic time: flush-policy deadlines, timers.
    public var now: Instant
    /// Wall-clock milliseconds since the epoch: message ids, file ages for retention, `stats`.
    public var wallMs: Int64
    /// The local time zone's offset from UTC (retention's cron expressions are in local time, as
    /// in MetaQ); drivers refresh it when a retention timer fires.
    public var utcOffsetSeconds: Int64

    public init(now: Instant, wallMs: Int64, utcOffsetSeconds: Int64 = 0) {
        self.now = now
        self.wallMs = wallMs
        self.utcOffsetSeconds = utcOffsetSeconds
    }
}

/// A timer the node asks its driver to arm; its firing comes back as `.timerFired`.
public enum NodeTimer: Hashable, Sendable, CustomStringConvertible {
    /// The flush policy's interval (or a postponed sync's retry) makes a sync of this log due.
    case syncDeadline(TopicPartition)
    /// The `deleteWhen` cron schedule with this index in `BrokerNode.retentionSchedules` fires.
    case retention(Int)
    /// The earliest transaction timeout (§4.6) is due.
    case transactionTimeout
    /// `checkpointInterval` passed: write a journal checkpoint and `heuristic.log` (§4.4).
    case transactionCheckpoint
    /// `flushTxLogAtCommit=2`: the once-a-second sync of the transaction journal.
    case transactionJournalFlush
    /// Replication's next deadline (a slave's next fetch or reconnect, a master's held fetch
    /// expiring or a lagging slave leaving the in-sync set).
    case replication

    public var description: String {
        switch self {
        case .syncDeadline(let partition): return "sync deadline of \(partition)"
        case .retention(let index): return "retention schedule #\(index)"
        case .transactionTimeout: return "transaction timeout"
        case .transactionCheckpoint: return "transaction checkpoint"
        case .transactionJournalFlush: return "transaction journal flush"
        case .replication: return "replication"
        }
    }
}

/// A sync the node started: the driver runs `batch.perform()` (fdatasync) wherever it likes and
/// reports the result with `.syncFinished(partition, id:, result)`.
public struct SyncJob {
    public let partition: TopicPartition
    public let batch: SyncBatch
    /// The data directory of the log: the runtime runs one sync thread per data directory.
    public let dataPath: String
    /// When the node began the sync, and when the oldest write it covers happened (sync-cycle
    /// statistics).
    public let begunAt: Instant
    public let firstWriteAt: Instant

    public var id: UInt64 { batch.id }
}

/// A sync of the transaction journal (`<dataLogPath>/transactions`, §4.3).
public struct JournalSyncJob {
    public let batch: SyncBatch
    /// The data directory the journal lives under (the runtime's sync thread for it).
    public let dataPath: String

    public var id: UInt64 { batch.id }
}

/// Part of a segment file to send to a consumer as the body of a `value` answer. The driver owns
/// `file` from here on and closes it once the bytes are sent (or the connection is gone).
public struct FileSlice {
    public let file: any StorageFile
    public let position: Int64
    public let count: Int
}

/// Facts only the process knows, asked for with `.collectProcessFacts` when a `stats` needs them.
public struct ProcessFacts: Sendable {
    public var pid: Int
    public var threads: Int

    public init(pid: Int, threads: Int) {
        self.pid = pid
        self.threads = threads
    }
}

/// What the node tells an operator; drivers log it (runtime) or trace it (simulator).
public enum BrokerNotice: Equatable, Sendable, CustomStringConvertible {
    public enum Level: Sendable { case info, warning, error, critical }

    /// A write or sync failed the partition's log: it refuses writes until the broker restarts.
    case partitionFailed(TopicPartition, LogFailure)
    /// A sync could not open its files (out of descriptors); retried every `syncRetryDelayMs`.
    case syncPostponed(TopicPartition, StorageError)
    /// Syncs run again after `postponed` attempts were postponed.
    case syncsResumed(postponed: Int)
    /// The message-id reservation could not be persisted.
    case idReservationNotPersisted(String)
    /// A get's segment could not be opened; the get is answered 500.
    case segmentUnreadable(detail: String)
    /// Retention removed (deleted or archived) these segments.
    case retentionRemoved(TopicPartition, policy: DeletePolicy, segments: [Int64], minOffset: Int64)
    case retentionFailed(TopicPartition, String)
    /// The final sync of a graceful stop failed.
    case finalSyncFailed(TopicPartition, String)
    /// Something the transaction machine or journal wants in the log (a timeout, a failed
    /// commit, a replay detail).
    case transaction(String)
    /// The transaction journal failed a write or sync: transactions are refused until restart.
    case transactionJournalFailed(String)
    /// What replication wants in the log (a slave connected or lost, a log restarted, a slave
    /// entering or leaving the in-sync set).
    case replication(String)
    /// Replication found something wrong it cannot repair by itself (a master behind its slave,
    /// a record that fails its checksum).
    case replicationProblem(String)
    /// An operator's admin verb did something (close-partitions, open-partitions, reload).
    case admin(String)

    public var level: Level {
        switch self {
        case .partitionFailed, .finalSyncFailed, .idReservationNotPersisted, .transactionJournalFailed: return .critical
        case .transaction, .replication, .admin: return .info
        case .replicationProblem: return .error
        case .syncPostponed: return .warning
        case .segmentUnreadable, .retentionFailed: return .error
        case .syncsResumed, .retentionRemoved: return .info
        }
    }

    public var description: String {
        switch self {
        case .partitionFailed(let partition, let failure):
            return "\(failure.operation.rawValue) failed: the partition refuses writes until the broker is restarted (partition \(partition): \(failure.error))"
        case .syncPostponed(let partition, let error):
            return "a sync of \(partition) could not start, retrying every \(PartitionLog.syncRetryDelayMs) ms: \(error)"
        case .syncsResumed(let postponed): return "syncs run again (\(postponed) postponed)"
        case .idReservationNotPersisted(let error): return "cannot persist the message-id reservation: \(error)"
        case .segmentUnreadable(let detail): return "a get failed: cannot open its segment: \(detail)"
        case .retentionRemoved(let partition, let policy, let segments, let minOffset):
            return "retention (\(policy)) removed segments \(segments) of \(partition); it now starts at \(minOffset)"
        case .retentionFailed(let partition, let error): return "retention of \(partition) failed: \(error)"
        case .finalSyncFailed(let partition, let error): return "final sync failed (partition \(partition)): \(error)"
        case .transaction(let text): return "transactions: \(text)"
        case .replication(let text): return "replication: \(text)"
        case .replicationProblem(let text): return "replication: \(text)"
        case .admin(let text): return "admin: \(text)"
        case .transactionJournalFailed(let error):
            return "the transaction journal failed: transactions are refused until the broker is restarted: \(error)"
        }
    }
}

/// How a graceful stop ended: the partitions whose log is failed (their final sync failed, or a
/// write or sync failed earlier), in partition order. Empty when everything written is durable.
public struct StopReport: Sendable {
    public var failedPartitions: [(partition: TopicPartition, failure: LogFailure)]
    /// Puts the final syncs made durable and answered.
    public var answeredByFinalSync: Int
    /// Partitions closed with a clean-stop mark: their next start skips the last segment's scan.
    public var cleanStopMarks: Int
}

/// What the node found when it opened its stores.
public struct StartReport {
    public var recoveries: [(partition: TopicPartition, report: RecoveryReport)]
    public var notices: [OpenNotice]
    /// Partitions of topics without their own section, and the bound on creating more.
    public var autoCreatedPartitions: Int
    public var maxAutoCreatedPartitions: Int
    /// The transaction journal's recovery (§4.5).
    public var transactions: TransactionRecoveryReport
}

extension BrokerNode {
    /// What a driver tells the node.
    public enum Event {
        /// Fed once after `open`: arms the retention timers.
        case start
        /// A connection was accepted.
        case connectionOpened(ConnectionID)
        /// A whole request decoded from a connection (framing errors close the connection in the
        /// driver, as MetaQ does, §1.1; they never reach the node).
        case request(ConnectionID, Frame)
        case connectionClosed(ConnectionID)
        /// The driver's batch of events is over (an event-loop tick, a simulated delivery): the
        /// node writes what it staged, answers what needed only the write, starts due syncs.
        case tickEnded
        /// The sync `id` of `partition`'s log ended.
        case syncFinished(TopicPartition, id: UInt64, Result<Void, StorageError>)
        /// The sync `id` of the transaction journal ended.
        case journalSyncFinished(id: UInt64, Result<Void, StorageError>)
        case timerFired(NodeTimer)
        case processFacts(token: UInt64, ProcessFacts)
        /// Runs retention over every partition now, as the topics' `deleteWhen` schedules would,
        /// judging file ages at `asOfWallMs` (the simulator ages its segments this way).
        case retentionRequested(asOfWallMs: Int64)
        /// Graceful stop: no new sync starts, those in flight finish, a final sync makes
        /// everything written durable and answers its puts, then connections and logs close.
        case stopRequested
        /// A slave learns where its master is (`meta://host:port`): from `[replication] master`
        /// at start, or from ZooKeeper's `/meta/brokers/ids/<id>/master` (nil while absent).
        case masterAddress(String?)
        /// The connection `.connectToMaster(link:)` asked for is open.
        case masterLinkOpened(link: UInt64)
        /// A whole answer decoded from the master link.
        case masterLinkFrame(link: UInt64, Frame)
        /// The master link closed, or could not be opened (never reported after
        /// `.closeMasterLink`).
        case masterLinkClosed(link: UInt64)
        /// The election of this broker id decided (failover, docs/REPLICATION.md): lead in a term,
        /// follow a master, or accept nothing.
        case leadership(Leadership)
        /// The election wrote this in-sync set to ZooKeeper (failover): a synchronous leader
        /// stops waiting for a slave only once it is out of the published set.
        case inSyncPublished([Int])
    }

    /// What the election tells a node (the driver maps `BrokerElection`'s actions onto it).
    public enum Leadership: Equatable, Sendable {
        /// Accept puts, in this term.
        case leading(term: Int64)
        /// Replicate from the master at this URI; accept no puts.
        case following(masterURI: String)
        /// Accept no puts and follow nobody (yet).
        case fenced(reason: String)
    }

    /// What the node asks its driver to do.
    public enum Action {
        /// Encode and buffer an answer for the connection (flushed at `.flush`).
        case reply(ConnectionID, ResultResponse)
        case putAnswer(ConnectionID, BrokerMachine.PutAnswer)
        /// `value <n> <opaque>` followed by `body`.
        case sendValue(ConnectionID, body: [UInt8], opaque: Int32)
        /// `value <n> <opaque>` followed by the bytes of a segment file (sendfile in the runtime).
        /// (The rare, large payloads are `indirect`: every action of the hot path — a put's
        /// answer — is copied through the actions array, and the enum is as large as its
        /// largest inline payload.)
        indirect case sendFile(ConnectionID, FileSlice, opaque: Int32)
        /// Hand every buffered answer to its connection now.
        case flush
        /// Feed `.tickEnded` now, once the actions before this one are carried out (a finished
        /// sync's answers go out in the same task, after the next sync has started).
        case endTickNow
        /// Flush what is buffered for the connection, then close it.
        case close(ConnectionID)
        indirect case startSync(SyncJob)
        /// Run this sync of the transaction journal (on the sync thread of `dataPath`), then feed
        /// `.journalSyncFinished`.
        indirect case startJournalSync(JournalSyncJob)
        case armTimer(NodeTimer, at: Instant)
        case collectProcessFacts(token: UInt64)
        /// A topic with no partition on this broker before got its first one (cluster mode
        /// registers it in ZooKeeper, §3.2).
        indirect case registerTopic(BrokerRegistration.Topic)
        /// A finished sync answered this many puts (sync-cycle statistics).
        case syncAnswered(TopicPartition, count: Int)
        indirect case notice(BrokerNotice)
        /// The graceful stop is complete; the node ignores every later event.
        indirect case stopped(StopReport)
        /// A slave opens a connection to its master (`meta://host:port`); the driver reports
        /// `.masterLinkOpened` or `.masterLinkClosed` with the same link number.
        indirect case connectToMaster(link: UInt64, uri: String)
        /// Encode and send a request on the master link (flushed by the driver's next flush).
        indirect case sendToMaster(link: UInt64, Frame)
        /// Close the master link; no `.masterLinkClosed` follows for it.
        case closeMasterLink(link: UInt64)
        /// An operator asked this broker to take over its broker id (`metaq admin promote`): the
        /// driver tells the election (`BrokerElection.Event.promote(force:)`).
        case promote(force: Bool)
        /// The slaves in sync with this leader changed: the driver tells the election
        /// (`BrokerElection.Event.publishInSync`), which writes them for failover.
        indirect case publishInSync([Int])
        /// The term this broker's logs are consistent with changed (persisted in
        /// `<dataPath>/replication-term`): the driver tells the election
        /// (`BrokerElection.Event.logsConsistent`), which decides from it whether this broker may
        /// take over.
        case logsConsistent(term: Int64?)
        /// An operator asked for `reload` (§8.4): read and parse the broker's server.ini, call
        /// `reload(_:replyTo:clock:into:)` with it and this connection, carry out its actions.
        case reloadConfig(replyTo: ConnectionID, opaque: Int32)
    }
}
