import BrokerCore
import ProtocolCore
import StoreCore

/// One broker process in the simulator: the production `BrokerNode` over the broker's `SimDisk`.
/// This class is the node's simulated driver and holds no rule of its own — it decodes bytes into
/// requests, feeds the node its events (each delivery is one tick), runs the syncs the node starts
/// with the disk's current latency, fires its timers on the virtual clock and carries answers to
/// the simulated network. A crash loses all of this memory; the disk keeps what it keeps.
///
/// A slave (issue 17) is a process of its own with its own disk, running the same node as a slave
/// of its master's URI: its master link is a connection of the simulated network on which it is
/// the client (SimBroker+MasterLink).
final class SimBroker {
    enum Role: Equatable {
        /// A broker of the world (the master, when the world gives it slaves).
        case broker
        /// Slave `slaveId` of the broker with index `master`; it registers nothing in ZooKeeper yet.
        case slave(master: Int, slaveId: Int)
    }

    /// The process's index in the world: the brokers first, then the slaves.
    let id: Int
    let role: Role
    /// A destroyed disk is replaced by an empty one (and the process never starts again).
    private(set) var disk = SimDisk()
    let config: ServerConfig
    let iniText: String
    unowned let sim: Simulation
    /// The client id of a slave's master link on the network (-1 for a broker; a failover
    /// world's master gets one too: it follows when deposed).
    var client: Int
    /// The disk was destroyed: the broker is stopped for good.
    private(set) var destroyed = false
    /// Bumped at every start; events of an older incarnation are ignored.
    private(set) var incarnation = 0
    private(set) var process: Process?
    /// Extra sync latency while a slow-disk fault lasts.
    var slowUntilNs: Int64 = 0
    /// The process's registration in ZooKeeper (§3.2) and its session; nil while down.
    var registration: BrokerRegistration?
    var zkSession: SimZKSession?
    /// Failover worlds: the election (behind the runtime's mapping), the registration's and the
    /// election's requests on the one session by the session's tag, and the last term the
    /// process was told to lead.
    var election: ElectionDriver?
    var zkRoutes: [UInt64: (election: Bool, tag: UInt64)] = [:]
    var nextZkTag: UInt64 = 1
    var lastLedTerm: Int64?
    /// Partitions whose log failed in the running incarnation (from the node's notices).
    private(set) var failedPartitions: Set<TopicPartition> = []
    /// The transaction journal failed in the running incarnation (a restart cures it).
    private(set) var journalFailed = false
    /// partition → the first offset retention kept (everything below was removed on purpose).
    private(set) var retentionFloor: [TopicPartition: Int64] = [:]

    /// The memory of one running broker process.
    final class Process {
        let node: BrokerNode
        var decoders: [Int: FrameDecoder] = [:]
        var out: [Int: [UInt8]] = [:]
        /// Syncs started and not finished, by partition.
        var syncing: [TopicPartition: SyncJob] = [:]
        var journalSyncing: JournalSyncJob?
        /// A slave's connection to its master.
        var masterLink: MasterLink?

        init(node: BrokerNode) { self.node = node }
    }

    init(id: Int, options: SimOptions, sim: Simulation, role: Role = .broker, client: Int = -1) {
        self.id = id
        self.sim = sim
        self.role = role
        self.client = client
        let brokerId: Int
        if case .slave(let master, _) = role { brokerId = master } else { brokerId = id }
        iniText = options.serverIni(brokerId: brokerId)
        // The options build a valid file; a parse failure is a bug in the simulator.
        var config: ServerConfig
        do {
            config = try ServerConfig(parsing: iniText, path: "sim/broker\(id).ini")
        } catch {
            preconditionFailure("simulated server.ini does not parse: \(error)")
        }
        // The `[replication]` settings, set directly (their parsing is tested with the configuration).
        if let replication = options.replication {
            switch role {
            case .slave(let master, let slaveId):
                // With failover the election names the master.
                config.replication.slave = .init(slaveId: slaveId, maxDelayMs: replication.slaveMaxDelayMs,
                                                 master: replication.failover == nil ? Self.uri(broker: master) : nil)
            case .broker where id == replication.master:
                config.replication.synchronous = replication.synchronous
                config.replication.minInSyncReplicas = replication.minInSyncReplicas
                config.replication.maxLagMs = replication.maxLagMs
                config.replication.fetchHoldMs = replication.fetchHoldMs
            case .broker:
                break
            }
            if replication.failover != nil, role != .broker || id == replication.master {
                // Every process of the id may lead: each has the master's settings.
                config.replication.failover = true
                config.replication.synchronous = replication.synchronous
                config.replication.minInSyncReplicas = replication.minInSyncReplicas
                config.replication.maxLagMs = replication.maxLagMs
                config.replication.fetchHoldMs = replication.fetchHoldMs
                if role == .broker { config.replication.rejoinSlaveId = replication.slaves + 1 }
            }
        }
        self.config = config
    }

    var isUp: Bool { process != nil }
    var isSlave: Bool { role != .broker }
    /// The broker id of its `server.ini` (a slave's is its master's).
    var brokerId: Int { config.brokerId }
    var dataPath: String { "/broker\(brokerId)" }
    /// `broker<N>`, or `broker<N>-slave<n>` for a slave.
    var name: String {
        if case .slave(let master, let slaveId) = role { return "broker\(master)-slave\(slaveId)" }
        return "broker\(id)"
    }
    var node: BrokerNode? { process?.node }
    var clock: NodeClock { NodeClock(now: sim.instant, wallMs: sim.wallMs) }

    /// Starts the process: the node opens and recovers every partition, then serves.
    func start() {
        guard !destroyed else { return }
        incarnation += 1
        disk.nowMs = sim.wallMs
        failedPartitions = []
        journalFailed = false
        var canary = sim.options.canaryAckBeforeSync ? .ackBeforeSync : sim.bugs.brokerCanary
        if canary == nil && !isSlave && config.replication.synchronous { canary = sim.bugs.replicationCanary }
        let settings = BrokerNode.Settings(brokerURI: uri, version: "metaq-sim", configFile: Array(iniText.utf8),
                                           seed: sim.rng.next(), canary: canary)
        let node: BrokerNode
        let report: StartReport
        do {
            (node, report) = try BrokerNode.open(storage: disk, config: config, defaultDataPath: dataPath, settings: settings,
                                                 clock: clock)
        } catch {
            sim.fail("\(name) cannot start after recovery: \(error)")
            return
        }
        let recovered = node.transactionRecovery
        if recovered.batchesAppended > 0 || recovered.rolledBack > 0 || !recovered.prepared.isEmpty {
            sim.counters.txBatchesReappended += recovered.batchesAppended
            sim.trace(.brokerRecovered, Int64(id), Int64(recovered.batchesAppended), "\(name) transactions: \(recovered)")
        }
        for (partition, recovery) in report.recoveries {
            sim.counters.recoveries += 1
            if recovery.truncatedBytes > 0 { sim.counters.recoveryTruncations += 1 }
            if !recovery.removedSegments.isEmpty { sim.counters.recoveryRemovedSegments += 1 }
            if recovery.lastSegmentScanSkipped { sim.counters.recoveryScansSkipped += 1 }
            if !recovery.newDamagedRanges.isEmpty { sim.counters.recoveryDamage += 1 }
            sim.trace(.brokerRecovered, Int64(id), Int64(recovery.truncatedBytes), "\(name) recovered \(partition): \(recovery)")
        }
        let incarnation = self.incarnation
        process = Process(node: node)
        if sim.isFailoverProcess(self) {
            if !isSlave {
                node.observeStaged = { [unowned self] msgId in self.sim.stored(broker: self.id, msgId: msgId, incarnation: incarnation) }
            }
            // As the runtime: no put before the election's first decision.
            feed(.leadership(ElectionDriver.waitingForElection))
            feed(.start)
            sim.startElection(self)
        } else if isSlave {
            feed(.start)
            // The driver tells a slave where its master is (from ZooKeeper, once slaves register).
            if let master = config.replication.slave?.master { feed(.masterAddress(master)) }
        } else {
            node.observeStaged = { [unowned self] msgId in self.sim.stored(broker: self.id, msgId: msgId, incarnation: incarnation) }
            sim.registerBroker(self)
            feed(.start)
        }
        sim.replicaStarted(self)
    }

    /// `meta://broker<N>:8123`: what the broker registers and what members fetch from (§3.4 step 7).
    static func uri(broker: Int) -> String { "meta://broker\(broker):8123" }

    var uri: String { isSlave ? "meta://\(name):8123" : Self.uri(broker: id) }

    /// The process dies: memory gone, open handles dead, page cache kept (a plain crash) or
    /// resolved at random (`powerLoss`).
    func stop(powerLoss: Bool) {
        guard let process else { return }
        sim.counters.canaryEarlyAcks += process.node.canaryEarlyAcks
        process.node.stores.closeAll()
        // A crashed slave's kernel resets its master link; one without power says nothing.
        if let link = process.masterLink, !powerLoss { sim.network.closedByClient(link.connection) }
        self.process = nil
        disarmDiskFaults()
        sim.abandonRegistration(of: self)
        if powerLoss { disk.powerLoss(using: &sim.rng) } else { disk.crash() }
    }

    /// The disk is destroyed — every file gone — after the process died: it never starts again.
    func destroyDisk() {
        precondition(process == nil, "a disk is destroyed under a stopped process")
        destroyed = true
        disk = SimDisk()
    }

    /// Graceful stop (SIGTERM): the node drains its syncs, syncs one last time and answers, then
    /// closes its connections; the process exits once it reports `.stopped`.
    func requestStop() {
        feed(.stopRequested)
    }

    /// A retention run, judging file ages as of `asOfWallMs`.
    func runRetention(asOfWallMs: Int64) {
        feed(.retentionRequested(asOfWallMs: asOfWallMs))
    }

    /// The readable end of each partition, as the running store believes it (synced bytes).
    func syncedEnds() -> [TopicPartition: Int64] {
        guard let process else { return [:] }
        var ends: [TopicPartition: Int64] = [:]
        for partition in process.node.stores.partitions {
            if let log = process.node.stores.log(partition) { ends[partition] = log.maxOffset }
        }
        return ends
    }

    func log(_ partition: TopicPartition) -> PartitionLog? { process?.node.stores.log(partition) }

    // MARK: Connections

    func accept(_ connection: Int) {
        guard let process else { return }
        process.decoders[connection] = FrameDecoder()
        feed(.connectionOpened(ConnectionID(UInt64(connection))))
    }

    func closed(_ connection: Int) {
        guard let process, process.decoders.removeValue(forKey: connection) != nil else { return }
        process.out[connection] = nil
        feed(.connectionClosed(ConnectionID(UInt64(connection))))
    }

    /// One delivery of bytes on `connection`: every whole request decoded and handled, then the tick ends.
    func receive(_ bytes: [UInt8], on connection: Int) {
        guard let process, process.decoders[connection] != nil else { return }
        process.decoders[connection]!.feed(bytes)
        do {
            while let frame = try process.decoders[connection]?.next() {
                feed(.request(ConnectionID(UInt64(connection)), frame), endTick: false)
            }
        } catch {
            // A framing error closes the connection without a reply, as MetaQ does (§1.1).
            sim.trace(.brokerFramingError, Int64(id), Int64(connection), "\(name) closes conn\(connection): \(error)")
            close(connection)
        }
        feed(.tickEnded, endTick: false)
    }

    private func close(_ connection: Int) {
        guard let process, process.decoders[connection] != nil else { return }
        flush(connection)
        process.decoders[connection] = nil
        process.out[connection] = nil
        sim.network.closedByBroker(connection)
        feed(.connectionClosed(ConnectionID(UInt64(connection))), endTick: false)
    }

    // MARK: Driving the node

    /// Feeds one event and carries out the actions; a driver event ends its tick.
    func feed(_ event: BrokerNode.Event, endTick: Bool = true) {
        guard let process else { return }
        var actions: [BrokerNode.Action] = []
        process.node.handle(event, clock: clock, into: &actions)
        if endTick { process.node.handle(.tickEnded, clock: clock, into: &actions) }
        for action in actions { perform(action) }
        // The node's invariants hold between ticks: a request (or a master's answer) decoded within
        // a delivery may leave work for the tick's end (a forced journal entry's sync), checked
        // after `.tickEnded`.
        if !endTick {
            switch event {
            case .request, .masterLinkFrame: return
            default: break
            }
        }
        for problem in process.node.checkInvariants() where self.process === process {
            sim.fail("\(name): \(problem)")
        }
    }

    private func perform(_ action: BrokerNode.Action) {
        guard let process else { return }
        switch action {
        case .reply(let connection, let response):
            var bytes: [UInt8] = []
            Frame.result(response).encode(into: &bytes)
            write(bytes, to: connection)
        case .putAnswer(let connection, let answer):
            if sim.isFailoverProcess(self) { sim.failoverPutAcknowledged(by: self) }
            write(Frame.result(answer.response).encoded(), to: connection)
        case .sendValue(let connection, let body, let opaque):
            write(Frame.value(ValueResponse(body: body, opaque: opaque)).encoded(), to: connection)
        case .sendFile(let connection, let slice, let opaque):
            do {
                let body = try slice.file.read(at: slice.position, count: slice.count)
                try slice.file.close()
                write(Frame.value(ValueResponse(body: body, opaque: opaque)).encoded(), to: connection)
            } catch {
                sim.fail("\(name): reading a slice the node handed out failed: \(error)")
            }
        case .flush:
            for connection in process.out.keys.sorted() { flush(connection) }
            flushMasterLink()
        case .close(let connection): close(Int(connection.raw))
        case .startSync(let job):
            process.syncing[job.partition] = job
            var latency = Int64(sim.rng.int(in: sim.options.syncLatencyMs)) * 1_000_000 + Int64(sim.rng.int(in: 0...300_000))
            if sim.nowNs < slowUntilNs { latency += Int64(sim.rng.int(in: 20...200)) * 1_000_000 }
            sim.schedule(.syncDone(broker: id, incarnation: incarnation, job.partition), afterNs: latency)
        case .startJournalSync(let job):
            process.journalSyncing = job
            let latency = Int64(sim.rng.int(in: sim.options.syncLatencyMs)) * 1_000_000 + Int64(sim.rng.int(in: 0...300_000))
            sim.schedule(.journalSyncDone(broker: id, incarnation: incarnation), afterNs: latency)
        case .armTimer(let timer, let at):
            sim.schedule(.brokerTimer(broker: id, incarnation: incarnation, timer), atNs: at.nanoseconds)
        case .collectProcessFacts(let token): feed(.processFacts(token: token, ProcessFacts(pid: 1, threads: 1)), endTick: false)
        case .registerTopic(let topic): if !isSlave || election != nil { sim.registerTopic(topic, of: self) }
        case .syncAnswered, .endTickNow: break  // every feed of this driver ends its tick
        case .notice(let notice): noticed(notice)
        case .stopped(let report): stopped(report)
        case .connectToMaster(let link, let uri): connectToMaster(link, uri: uri)
        case .sendToMaster(let link, let frame): sendToMaster(link, frame)
        case .closeMasterLink(let link): closeMasterLink(link)
        case .publishInSync, .promote, .logsConsistent:
            if election != nil, let event = ElectionDriver.electionEvent(for: action) { sim.electionHandle(self, event) }
        case .reloadConfig(let connection, let opaque):
            // The simulated broker's file never changes: a reload re-reads the text it started with.
            guard let node else { return }
            var reloaded: [BrokerNode.Action] = []
            node.reload(.loaded(config, file: Array(iniText.utf8), path: "sim.ini"), replyTo: (connection, opaque), clock: clock,
                        into: &reloaded)
            for action in reloaded { perform(action) }
        }
    }

    private func noticed(_ notice: BrokerNotice) {
        switch notice {
        case .partitionFailed(let partition, let failure):
            failedPartitions.insert(partition)
            sim.counters.brokerLogsFailed += 1
            sim.brokerLogFailed(self)
            sim.trace(.brokerWriteFailed, Int64(id), 0, "\(name) \(partition) refuses writes: \(failure)")
        case .retentionRemoved(let partition, _, let segments, let minOffset):
            retentionFloor[partition] = max(retentionFloor[partition] ?? 0, minOffset)
            sim.counters.retentionRemovedSegments += segments.count
            sim.trace(.retention, Int64(id), minOffset, "\(name) \(notice)")
        case .transactionJournalFailed:
            journalFailed = true
            sim.trace(.brokerNotice, Int64(id), 0, "\(name) \(notice)")
        case .idReservationNotPersisted, .segmentUnreadable, .retentionFailed, .finalSyncFailed, .syncPostponed, .syncsResumed,
             .transaction, .replication, .replicationProblem, .admin:
            sim.trace(.brokerNotice, Int64(id), 0, "\(name) \(notice)")
        }
    }

    /// The graceful stop finished: the process exits (its page cache stays, as after any exit).
    private func stopped(_ report: StopReport) {
        sim.counters.gracefulStops += 1
        sim.trace(.brokerStopped, Int64(id), Int64(report.answeredByFinalSync),
                  "\(name) stopped gracefully: \(report.answeredByFinalSync) put(s) answered by the final sync, \(report.failedPartitions.count) failed log(s)")
        guard let process else { return }
        sim.counters.canaryEarlyAcks += process.node.canaryEarlyAcks
        if let link = process.masterLink { sim.network.closedByClient(link.connection) }
        self.process = nil
        disarmDiskFaults()
        sim.abandonRegistration(of: self)
        disk.crash()
        sim.brokerExited(self)
    }

    /// A disk fault armed for the process that died with it unused does not outlive it (a start
    /// that cannot recover is not a fault the sweep studies).
    private func disarmDiskFaults() {
        disk.failNextWrite = nil
        disk.failNextSync = false
    }

    private func write(_ bytes: [UInt8], to connection: ConnectionID) {
        let connection = Int(connection.raw)
        guard let process, process.decoders[connection] != nil else { return }
        process.out[connection, default: []].append(contentsOf: bytes)
    }

    private func flush(_ connection: Int) {
        guard let process, let bytes = process.out.removeValue(forKey: connection), !bytes.isEmpty else { return }
        sim.network.sendToClient(connection, bytes)
    }

    func timerFired(_ timer: NodeTimer, incarnation: Int) {
        guard incarnation == self.incarnation, isUp else { return }
        feed(.timerFired(timer))
    }

    /// The sync started for `partition` finishes now: its bytes become durable at this instant
    /// (or the disk's armed fault fails it).
    /// The transaction journal's sync finishes now.
    func journalSyncDone(incarnation: Int) {
        guard incarnation == self.incarnation, let process, let job = process.journalSyncing else { return }
        process.journalSyncing = nil
        sim.counters.syncs += 1
        feed(.journalSyncFinished(id: job.id, job.batch.performed()))
    }

    func syncDone(_ partition: TopicPartition, incarnation: Int) {
        guard incarnation == self.incarnation, let process, let job = process.syncing.removeValue(forKey: partition) else { return }
        sim.counters.syncs += 1
        feed(.syncFinished(partition, id: job.id, job.batch.performed()))
    }
}
