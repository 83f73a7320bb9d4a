import ProtocolCore
import StoreCore

/// One broker as a pure node (DESIGN.md §4, "The broker node"): everything between a decoded
/// request and the bytes of its answer — the broker machine, the partition stores, the commit
/// pipeline (stage, write once per tick, answer after the write or after the covering sync),
/// sync scheduling and completion, what a failed write or sync does, timers, start-up, topic
/// registration, retention, `stats` and graceful stop.
///
/// Events in, actions out. Two drivers run it: the Linux runtime (`BrokerServer`: sockets,
/// sync threads, timers, sendfile) and the simulator (`SimBroker`: SimNetwork, SimDisk, the
/// virtual clock). Neither holds a rule of its own; a put can be followed from `.request` to
/// `.putAnswer` without leaving this folder. The node reaches storage only through `Storage`
/// (writes happen here, in `.tickEnded`; only the fdatasync of a sync runs in the driver).
///
/// Single owner: the driver calls `handle` from one thread or executor only. Hot properties are
/// `@exclusivity(unchecked)`: nothing here calls back into the driver, so no access overlaps.
public final class BrokerNode {
    /// What the driver decides about the node.
    public struct Settings {
        /// `meta://host:port`, as the machine puts it in answers.
        public var brokerURI: String
        public var version: String
        /// The bytes of the server.ini the broker started with (or last reloaded, §8.4): the
        /// `config` command's answer and `config_checksum` of `stats` (§9).
        public var configFile: [UInt8]
        /// Moves expired segments away for `archive` retention (the runtime's compresses).
        public var archiver: any SegmentArchiver
        /// Seeds the machine's message-id generator.
        public var seed: UInt64
        /// Simulation only, never set in production: a deliberately broken pipeline the
        /// simulator's checkers must catch.
        public var canary: Canary?

        public init(brokerURI: String, version: String, configFile: [UInt8], archiver: any SegmentArchiver = RenamingArchiver(),
                    seed: UInt64, canary: Canary? = nil) {
            self.brokerURI = brokerURI
            self.version = version
            self.configFile = configFile
            self.archiver = archiver
            self.seed = seed
            self.canary = canary
        }
    }

    /// The broken pipelines (DESIGN.md §6): each proves a checker of the simulator can fail, in
    /// the code production runs.
    public enum Canary: Sendable {
        /// Group-commit puts answered after the write, before their sync (lost at a power loss).
        case ackBeforeSync
        /// The puts a failed log abandons are never answered (they would wait forever).
        case forgetFailedLogPuts
        /// The puts a failed log abandons are answered as stored.
        case acknowledgeFailedLogPuts
        /// A graceful stop closes without its final sync (its puts unanswered).
        case skipFinalSync
        /// A commit's held batches are released as soon as its commit entry is written, not once
        /// it is durable: a power loss can keep a batch (or part of one) without its entry.
        case releaseCommitBeforeEntryDurable
        /// Recovery does not append a committed batch that is missing or torn (§4.5).
        case skipCommitReappend
        /// A synchronous master answers a put once it is durable here, without waiting for its
        /// slaves (issue 17): a master whose disk is destroyed takes acknowledged messages along.
        case answerBeforeSlavesConfirm
        /// Recovery keeps a clean-stop mark after open and trusts it whatever the last segment
        /// became (issue 18): a start after a later crash skips the scan of a torn tail.
        case trustStaleCleanStopMark
    }

    enum Phase {
        case running
        /// Stop requested: no sync starts; waiting for the syncs in flight to finish.
        case draining
        /// Stopped: every event is ignored.
        case stopped
    }

    /// Fixed but for `configFile`, which `reload` replaces (§8.4).
    public internal(set) var settings: Settings
    public let stores: PartitionStores
    let storage: any Storage
    @exclusivity(unchecked) public internal(set) var machine: BrokerMachine
    /// CRC32 of the server.ini the broker started with or last reloaded (`config_checksum` of
    /// `stats`, §9).
    public internal(set) var configChecksum: Int64
    /// When the node started (monotonic; uptime and the dashboard's start time).
    public let startedAt: Instant
    /// The server.ini bytes the node started with: what a `reload` compares `[system]` with (it
    /// applies none of it, so a change stays "needs a restart" until the restart).
    let startedConfigFile: [UInt8]
    /// When the running server.ini was loaded (wall-clock ms): at start, then at each reload
    /// (the dashboard's config page, the original's `lastLoaded`).
    public internal(set) var configLoadedWallMs: Int64 = 0
    @exclusivity(unchecked) var phase = Phase.running

    /// Group-commit puts staged and waiting for the sync that covers them: token → the offset
    /// their answer carries (their log holds the same tokens as its waiters).
    @exclusivity(unchecked) var awaitingSync: [UInt64: Int64] = [:]
    /// Puts answered once their staged bytes are written (`unflushThreshold > 0`, or the canary).
    @exclusivity(unchecked) var awaitingWrite: [(token: UInt64, offset: Int64, partition: TopicPartition, log: PartitionLog)] = []
    /// Logs with staged records or a sync to consider at the end of this tick.
    @exclusivity(unchecked) var dirtyLogs: [(partition: TopicPartition, log: PartitionLog)] = []
    /// Puts finished syncs made durable, answered at the end of the tick, by log.
    @exclusivity(unchecked) var durable: [(partition: TopicPartition, tickets: [UInt64])] = []
    /// Empty buffers `endOfTick` swaps in for the two above.
    @exclusivity(unchecked) var spareAwaitingWrite: [(token: UInt64, offset: Int64, partition: TopicPartition, log: PartitionLog)] = []
    @exclusivity(unchecked) var spareDirtyLogs: [(partition: TopicPartition, log: PartitionLog)] = []
    /// The log the last append went to (most puts of a batch go to the same partition).
    @exclusivity(unchecked) var lastLog: (partition: TopicPartition, log: PartitionLog)?
    /// Reused arrays of machine actions (a stack: handling one can handle another).
    @exclusivity(unchecked) var machineActionPool: [[BrokerMachine.Action]] = []
    /// Set while the machine's actions for one put are carried out, when persisting the id
    /// reservation that put asked for failed: its append is refused.
    @exclusivity(unchecked) var reservationFailure: String?
    /// Segment slices opened for a get, until the machine sends them: token → slice.
    @exclusivity(unchecked) var openedSlices: [UInt64: FileSlice] = [:]
    /// The sync running for each log (at most one per log).
    @exclusivity(unchecked) var syncing: [TopicPartition: SyncBatch] = [:]
    @exclusivity(unchecked) var armedTimers: Set<NodeTimer> = []
    /// When each log's oldest write not covered by a begun sync happened.
    @exclusivity(unchecked) var unsyncedSince: [TopicPartition: Instant] = [:]
    @exclusivity(unchecked) var syncPostponedEpisode = RefusalEpisode()
    @exclusivity(unchecked) var openConnections: Set<ConnectionID> = []
    /// The distinct `deleteWhen` schedules, by the index their timers carry.
    @exclusivity(unchecked) var retentionSchedules: [CronExpression] = []
    /// Invariant violations seen (the first few): the simulator fails a seed on any; the runtime
    /// logs them. Kept rather than trapping so a sweep reports the seed.
    @exclusivity(unchecked) public internal(set) var violations: [String] = []
    /// Simulation only: called with the message id of every staged put (which incarnation
    /// stored a message).
    @exclusivity(unchecked) public var observeStaged: ((Int64) -> Void)?
    /// Group-commit puts the canary answered before their sync.
    @exclusivity(unchecked) public internal(set) var canaryEarlyAcks = 0

    /// The transaction redo log (`<dataLogPath>/transactions`, §4.3).
    public let journal: TxJournal
    /// The data directory the journal lives under (its syncs run on that directory's thread).
    let journalDataPath: String
    /// What transaction recovery found at start-up.
    public let transactionRecovery: TransactionRecoveryReport
    /// Commits waiting for their entry and batches, by id.
    @exclusivity(unchecked) var commits: [UInt64: CommitInFlight] = [:]
    @exclusivity(unchecked) var nextCommitId: UInt64 = 1
    /// Commit batches not yet stored, by token (`commitTokenBit` set).
    @exclusivity(unchecked) var commitBatches: [UInt64: CommitBatch] = [:]
    @exclusivity(unchecked) var nextCommitToken: UInt64 = 1
    /// What waits for the journal to be durable up to a position, in position order.
    @exclusivity(unchecked) var journalWaiters: [(upTo: TxJournalPosition, waiter: JournalWaiter)] = []
    /// Puts whose APPEND_MSG entries are staged in the journal, not yet written.
    @exclusivity(unchecked) var journaledPuts: [(put: BrokerMachine.TransactionPutJournal, position: TxJournalPosition)] = []
    /// Answers of transactional puts the machine holds already, sent once their entries are
    /// written (end of tick).
    @exclusivity(unchecked) var deferredPutAnswers: [Action] = []
    /// The journal sync running (at most one).
    @exclusivity(unchecked) var journalSyncing: SyncBatch?
    @exclusivity(unchecked) var journalFailureReported = false
    /// Answers owed after a write, whose log holds its writes for a commit: due at its release.
    @exclusivity(unchecked) var awaitingRelease: [(token: UInt64, offset: Int64, partition: TopicPartition, log: PartitionLog)] = []
    /// Commits answered after the write of batches their logs have not synced yet: their first
    /// entries bound the next checkpoint.
    @exclusivity(unchecked) var committedUnsynced: [(firstEntry: TxJournalPosition, batches: [(log: PartitionLog, end: Int64)])] = []
    @exclusivity(unchecked) var committedUnsyncedPruneAt = 64
    /// When the armed transaction-timeout timer fires.
    @exclusivity(unchecked) var transactionTimerAt: Instant?
    /// A slave's copying of its master (nil on a master, issue 17).
    @exclusivity(unchecked) var replica: ReplicaState?
    /// Failover (docs/REPLICATION.md): the term this node leads in, the term its logs were
    /// consistent with before (`previousTerm`), each partition's end when the term began, and
    /// why puts are refused while it neither leads nor follows. All nil/empty without an election.
    @exclusivity(unchecked) var leadingTerm: Int64?
    @exclusivity(unchecked) var previousTerm: Int64?
    @exclusivity(unchecked) var termStarts: [TopicPartition: Int64] = [:]
    /// The term `previousTerm` and `termStarts` describe: set when this node began leading it, so
    /// leading the same term again (the election re-accepts after a lost connection) keeps them.
    @exclusivity(unchecked) var historyTerm: Int64?
    @exclusivity(unchecked) var fencedReason: String?
    /// A term the election handed this node that it could not start leading (its
    /// replication-term file could not be written), and when to try again.
    @exclusivity(unchecked) var leadRetry: (term: Int64, at: Instant)?
    /// The term the logs of this broker are consistent with (`replication-term` in the data
    /// directory): the term it last led, or whose leader it last copied from.
    @exclusivity(unchecked) var consistentTerm: Int64?
    /// A follower copying a partition again lacks what its logs had (`replication-copying`): it
    /// may not take over until it has reached its leader's end on every partition.
    @exclusivity(unchecked) var logsCopying = false
    /// Whether an election drives this node (it told it something).
    @exclusivity(unchecked) var elected = false
    /// A master's view of its slaves' fetches and, in synchronous mode, the puts waiting for them.
    let replicas: MasterReplication
    /// When the armed replication timer fires.
    @exclusivity(unchecked) var replicationTimerAt: Instant?

    init(settings: Settings, stores: PartitionStores, storage: any Storage, machine: BrokerMachine, startedAt: Instant,
         transactions: RecoveredTransactions) {
        self.settings = settings
        self.stores = stores
        self.storage = storage
        self.machine = machine
        self.startedAt = startedAt
        journal = transactions.journal
        journalDataPath = stores.config.dataLogPath ?? stores.defaultDataPath
        transactionRecovery = transactions.report
        configChecksum = Int64(CRC32.checksum(settings.configFile))
        startedConfigFile = settings.configFile
        replica = stores.config.replication.slave.map {
            ReplicaState(settings: $0, maxTransferSize: stores.config.maxTransferSize)
        }
        replicas = MasterReplication(config: stores.config.replication)
        consistentTerm = ReplicationTermFile.load(storage: storage, dataPath: stores.defaultDataPath)
        logsCopying = consistentTerm != nil && ReplicationTermFile.loadCopying(storage: storage, dataPath: stores.defaultDataPath)
    }

    /// Start-up: opens and recovers every partition under every data path, loads the message-id
    /// reservation and builds the machine. Feed `.start` next.
    public static func open(storage: any Storage, config: ServerConfig, defaultDataPath: String, settings: Settings,
                            clock: NodeClock) throws -> (BrokerNode, StartReport) {
        let stores = PartitionStores(storage: storage, config: config, defaultDataPath: defaultDataPath)
        stores.canaryTrustsStaleCleanStopMarks = settings.canary == .trustStaleCleanStopMark
        let reports = try stores.openAll(now: clock.now)
        let reservation = try IdReservationFile.load(storage: storage, dataPath: stores.defaultDataPath)
        let transactionSettings = TransactionMachine.Settings(
            maxTxTimeoutInSeconds: Int32(clamping: config.maxTxTimeoutSeconds),
            maxTxTimeoutTimerCapacity: config.maxTxTimeoutTimerCapacity)
        var machineSettings = BrokerMachine.Settings(
            brokerId: config.brokerId, brokerURI: settings.brokerURI, port: config.serverPort, version: settings.version,
            maxTransferSize: Int32(clamping: config.maxTransferSize), updateConsumerOffsets: config.updateConsumerOffsets,
            topics: stores.topicRules(), maxAutoCreatedPartitions: config.maxAutoCreatedPartitions,
            transactions: transactionSettings)
        machineSettings.acceptsSync = config.replication.acceptSync
        // Transactions after the partitions: a replayed commit is checked against them (§4.5).
        let transactions = try recoverTransactions(storage: storage, stores: stores, config: config,
                                                   settings: transactionSettings, clock: clock, canary: settings.canary)
        var machine = BrokerMachine(settings: machineSettings, partitionsWithData: Set(stores.partitions),
                                    idReservationMs: reservation, seed: settings.seed, transactions: transactions.machine)
        // Closed partitions stay closed across restarts (our difference from §11.10).
        for partition in try ClosedPartitionsFile.load(storage: storage, dataPath: stores.defaultDataPath).sorted() {
            _ = machine.handle(.partitionClosed(partition), nowMs: clock.wallMs)
        }
        let node = BrokerNode(settings: settings, stores: stores, storage: storage, machine: machine, startedAt: clock.now,
                              transactions: transactions)
        node.configLoadedWallMs = clock.wallMs
        let report = StartReport(recoveries: reports.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                                 notices: stores.openNotices, autoCreatedPartitions: machine.autoCreatedPartitions.count,
                                 maxAutoCreatedPartitions: config.maxAutoCreatedPartitions,
                                 transactions: transactions.report)
        return (node, report)
    }

    public var config: ServerConfig { stores.config }
    public var isStopped: Bool { phase == .stopped }
    /// Puts accepted and not answered yet.
    public var unansweredPuts: Int {
        awaitingSync.count + awaitingWrite.count + awaitingRelease.count + journaledPuts.count + replicas.waiting.count
    }

    /// Feeds one event; what the driver must do is appended to `actions`, in order.
    public func handle(_ event: Event, clock: NodeClock, into actions: inout [Action]) {
        guard phase != .stopped else { return }
        switch event {
        case .request(let connection, let frame): handleRequest(frame, from: connection, clock: clock, into: &actions)
        case .tickEnded: endOfTick(clock, &actions)
        case .connectionOpened(let connection):
            // A stopping broker takes no new connection (the runtime has closed its listener).
            guard phase == .running else { return actions.append(.close(connection)) }
            openConnections.insert(connection)
        case .connectionClosed(let connection):
            guard openConnections.remove(connection) != nil else { return }
            replicationConnectionClosed(connection, clock, &actions)
            // Its staged transactional puts first: they belong before the rollbacks of its
            // local transactions.
            recordStagedPuts(clock)
            feed(.connectionClosed(connection), clock, &actions)
        case .syncFinished(let partition, let id, let result): syncFinished(partition, id: id, result, clock, &actions)
        case .journalSyncFinished(let id, let result): journalSyncFinished(id: id, result, clock, &actions)
        case .timerFired(let timer): timerFired(timer, clock, &actions)
        case .processFacts(let token, let facts): feed(.statsCollected(token: token, snapshot(facts, clock)), clock, &actions)
        case .retentionRequested(let asOfWallMs): runRetention(nil, wallMs: asOfWallMs, &actions)
        case .start:
            if let replica { cutDamagedCopies(replica, clock, &actions) }
            armRetentionTimers(clock, &actions)
            armTransactionTimers(clock, &actions)
        case .stopRequested: requestStop(clock, &actions)
        case .masterAddress(let uri): masterAddressChanged(uri, clock, &actions)
        case .masterLinkOpened(let link): masterLinkOpened(link, clock, &actions)
        case .masterLinkFrame(let link, let frame): masterLinkFrame(link, frame, clock, &actions)
        case .masterLinkClosed(let link): masterLinkClosed(link, clock, &actions)
        case .leadership(let leadership): leadershipChanged(leadership, clock, &actions)
        case .inSyncPublished(let ids):
            performTracker(replicas.tracker.inSyncPublished(ids, now: clock.now), clock, &actions)
        }
    }

    /// `handle(.request(connection, frame), ...)` without wrapping the frame in an event and
    /// unwrapping it again: the hot path of every put, where each copy of a frame is a retain and
    /// a release of its body.
    public func handleRequest(_ frame: consuming Frame, from connection: ConnectionID, clock: NodeClock,
                              into actions: inout [Action]) {
        guard phase == .running || (phase == .draining && openConnections.contains(connection)) else { return }
        if case .transaction(let command) = frame {
            if refuseOnSlave(frame, from: connection, &actions) { return }
            // A transaction's staged puts are recorded before its outcome is decided (a pipelined
            // COMMIT finds them); BEGIN, END, RECOVER and FORGET need none of them.
            switch command.type {
            case .prepare, .commitOnePhase, .commitTwoPhase, .rollback: recordStagedPuts(clock)
            case .begin, .end, .recover, .forget: break
            }
            // The machine times BEGIN's timeout on the node's monotonic clock (§4.6).
            for action in machine.transactionCommand(command, from: connection, now: clock.now) {
                perform(action, clock, &actions)
            }
            return armTransactionTimer(clock, &actions)
        }
        switch frame {
        case .get(let get):
            if slaveFetch(get, from: connection, clock, &actions) { return }
        case .offset(let command):
            slaveReport(command, from: connection, clock, &actions)
        case .put:
            if replica != nil || fencedReason != nil, refuseOnSlave(frame, from: connection, &actions) { return }
        case .stats(let command) where command.item == "replication":
            return actions.append(.reply(connection, ResultResponse(code: StatusCode.success, body: replicationStats(clock),
                                                                    opaque: command.responseOpaque)))
        case .stats(let command) where command.item == "promote" || command.item == "promote-force":
            return actions.append(.reply(connection, promoteRequested(force: command.item == "promote-force",
                                                                      opaque: command.responseOpaque, &actions)))
        case .stats(let command) where AdminCommand.isAdminItem(command.item):
            return adminRequested(command.item!, from: connection, opaque: command.responseOpaque, clock, &actions)
        case .stats(let command) where command.item?.hasPrefix(Self.slaveHelloPrefix) == true:
            if slaveHello(command.item!, opaque: command.responseOpaque, from: connection, clock, &actions) { return }
        default: break
        }
        feed(.request(connection, frame), clock, &actions)
    }

    /// The `stats` snapshot: the stores' view plus the process's facts.
    func snapshot(_ facts: ProcessFacts, _ clock: NodeClock) -> StatsSnapshot { statsSnapshot(facts, clock: clock) }

    /// The `stats` snapshot as the dashboard and metrics read it (the same the `stats` answers use).
    public func statsSnapshot(_ facts: ProcessFacts, clock: NodeClock) -> StatsSnapshot {
        var snapshot = stores.statsSnapshot(pid: facts.pid, uptimeSeconds: clock.now.milliseconds(since: startedAt) / 1000,
                                            threads: facts.threads, currentConnections: openConnections.count,
                                            configChecksum: configChecksum)
        snapshot.isSlave = replica != nil
        return snapshot
    }

    /// Records an invariant violation (the first 16).
    func violated(_ message: @autoclosure () -> String) {
        if violations.count < 16 { violations.append(message()) }
    }
}
