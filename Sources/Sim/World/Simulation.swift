import BrokerCore
import ProtocolCore
import StoreCore

/// What one seed's run found.
public struct SimResult: Sendable {
    public var seed: UInt64
    public var options: String
    /// Checker verdicts that failed (empty when the run passed).
    public var failures: [String]
    public var fingerprint: UInt64
    public var counters: SimCounters
    public var trace: [String]?
    public var virtualMs: Int64
    public var passed: Bool { failures.isEmpty }
}

/// One simulated world (DESIGN.md §6): brokers, producers and consumers running the production
/// machines on a virtual clock, with faults during a safety phase and none during a liveness
/// phase, and checkers on everything acknowledged and delivered. One seed decides it all.
public final class Simulation {
    enum Event {
        case produce(Int)
        case producerTick(Int)
        case consumerTick(Int)
        case connectArrives(Int)
        case connectAnswered(Int, ok: Bool)
        case bytesToBroker(Int, [UInt8])
        case bytesToClient(Int, [UInt8])
        case closeReachesBroker(Int)
        case closeReachesClient(Int)
        case syncDone(broker: Int, incarnation: Int, TopicPartition)
        /// The transaction journal's sync of a broker finishes.
        case journalSyncDone(broker: Int, incarnation: Int)
        /// A timer a broker node armed (sync deadline, retention schedule).
        case brokerTimer(broker: Int, incarnation: Int, NodeTimer)
        /// The next broker disk fault, graceful stop or retention run (Simulation+BrokerFaults).
        case brokerFault
        /// The operator restarts a broker whose disk failed one of its logs (gracefully).
        case operatorRestart(broker: Int, incarnation: Int)
        case restartBroker(Int)
        case fault
        case liveness
        case convergenceCheck
        /// ZooKeeper, broker registration and consumer groups (Simulation+ZooKeeper, +Groups).
        case cluster(ClusterEvent)
        /// Ordered producers (Simulation+Ordered).
        case ordered(OrderedEvent)
        /// Routed producers (Simulation+Routed).
        case routed(RoutedEvent)
        /// Transactional producers and managers (Simulation+Transactions).
        case transactions(TxEvent)
        /// Slaves' own faults and the master's disk destroyed (Simulation+Replication).
        case replication(ReplicationEvent)
        /// The failover set's faults (Simulation+Failover).
        case failover
    }

    /// Codes folded into the fingerprint next to the event's numbers.
    enum TraceCode: UInt64 {
        case produce = 1, producerTick, consumerTick, connectArrives, connectAnswered, bytesToBroker, bytesToClient
        case closeReachesBroker, closeReachesClient, syncDone, syncTimer, restartBroker, fault, liveness, convergence
        case brokerRecovered = 20, brokerFramingError, brokerWriteFailed, acknowledged, outcome, delivered, faultFired
        case zooKeeper = 40, zkAdvance, zkReconnect, registrationTick, brokerJoins, memberTick, memberRestart
        case fetcherTick, processed, registration, memberAction, groupDelivered, groupFault
        case handOff = 60, handOffAnswer, recoverRound, recoverRemoved, recoverStore, crashAfterHandOff, handlerFailed
        case brokerFault = 80, brokerNotice, brokerStopped, retention, operatorRestart
        case ordered = 90, orderedFault
        case routed = 100, routedFault, publishWait, routerShutDown
        case manualAck = 110, manualRollback, manualCrash
        case transaction = 120, transactionManager
        case replication = 130, replicationFault, masterLink
        case failover = 140, electionTick, election, leadership, failoverFault
    }

    /// One message a producer was asked to send, and what became of it.
    struct Sent {
        enum Outcome { case pending, acknowledged(partition: Int32, offset: Int64, msgId: Int64), failed, unknown, rejected }
        var producer: Int
        var broker: Int
        var topic: String
        var payload: [UInt8]
        var outcome: Outcome = .pending
    }

    public let seed: UInt64
    /// The world the seed names.
    public let options: SimOptions
    var rng: SimRandom
    /// The stream of ZooKeeper latencies and group decisions: a world without groups draws nothing
    /// from it that changes its run.
    var clusterRng: SimRandom
    /// The stream of the failing application's decisions (SimHandlers): used only in worlds
    /// where it fails.
    var handlerRng: SimRandom
    /// The stream of broker disk faults, graceful stops and retention runs: a world whose rates
    /// are zero draws nothing from it.
    var brokerFaultRng: SimRandom
    /// The stream of the ordered producers (SimOrdered): used only in worlds that have them.
    var orderedRng: SimRandom
    /// The stream of the routed producers (SimRouted): used only in worlds that have them.
    var routedRng: SimRandom
    /// The stream of the manual-ack application's decisions (SimManualAck): used only in worlds
    /// with a manual group.
    var manualRng: SimRandom
    /// The stream of the routed producers' own faults, waits and shutdowns (SimRoutedFaults):
    /// used only in worlds that draw them.
    var routedFaultRng: SimRandom
    /// The stream of the transactional producers and managers (SimTransactions): used only in
    /// worlds that have them.
    var txRng: SimRandom
    /// The stream of the replicated set's faults (SimReplication): used only in worlds with slaves.
    var replicationRng: SimRandom
    /// The stream of the failover set's faults (SimFailover): used only in failover worlds.
    var failoverRng: SimRandom
    /// term → the process that acknowledged puts in it (failover worlds; checker (a)).
    var termAcknowledger: [Int64: Int] = [:]
    /// The simulated operator's last `promote --force` (Simulation+Failover), and whether one
    /// promoted a process other than the last leader (acknowledged messages may be lost then).
    var lastOperatorPromoteNs: Int64 = 0
    var forcedPromoteLostLeader = false
    /// Failover worlds: per partition, the lowest end a leader of a term after the first had when
    /// its term began — what a takeover can cut below nothing (checker (b) for asynchronous
    /// worlds: a lost acknowledged message lies at or beyond it).
    var lowestTermStart: [TopicPartition: Int64] = [:]
    /// Whether any term after the first began (a partition its leader lacked started at 0).
    var laterTermBegan = false
    /// Test-only bugs the recover checkers must catch.
    let bugs: SimBugs
    private var queue = EventQueue<Event>()
    private(set) var nowNs: Int64 = 0
    var counters = SimCounters()
    let traceLog: SimTrace
    private var failures: [String] = []
    var failuresCount: Int { failures.count }
    private var finished = false
    var inLiveness = false
    private(set) var livenessStartNs: Int64 = 0

    private(set) var brokers: [SimBroker] = []
    /// Slave processes of the replicated broker (Simulation+Replication); their process indices
    /// follow the brokers'.
    var slaves: [SimBroker] = []
    /// What the master's disk held, and its slaves', when it was destroyed.
    var destruction: SimDestruction?
    private(set) var network: SimNetwork!
    var producers: [SimProducer] = []
    var consumers: [SimConsumer] = []
    private(set) var zooKeeper: SimZooKeeper!
    var groups: [SimGroup] = []
    /// Fetchers of group members by client id (client ids from `firstFetcherClient` on).
    var groupFetchers: [Int: SimGroupFetcher] = [:]
    var firstFetcherClient = 0
    var nextClient = 0
    /// Sessions of processes that died: alive at the server until their timeout runs out.
    var abandonedSessions: [SimZKSession] = []
    /// The ZooKeeper deliveries asked for at the current instant (Simulation+ZooKeeper).
    var zkBatch: ZKBatch?
    var orderedProducers: [SimOrderedProducer] = []
    var orderedLedger = SimOrderedLedger()
    var routedProducers: [SimRoutedProducer] = []
    var txLocalProducers: [SimTxLocalProducer] = []
    var txManagers: [SimTxManager] = []
    /// Links of the transactional clients by client id.
    var txLinks: [Int: SimTxLink] = [:]
    /// Every transaction and XA branch, in the order begun; by key; the one each message key is part of.
    var txRecords: [SimTxRecord] = []
    var txByKey: [String: SimTxRecord] = [:]
    var txOfMessage: [UInt64: SimTxRecord] = [:]

    var ledger: [UInt64: Sent] = [:]
    var delivered: Set<UInt64> = []
    /// broker → msgId → the broker incarnation that stored it.
    var storedBy: [Int: [Int64: Int]] = [:]
    /// broker → power losses: the incarnation that died and its synced ends at that moment.
    var powerLossRecords: [Int: [(incarnation: Int, ends: [TopicPartition: Int64])]] = [:]
    /// broker → partition → offset ranges whose synced bytes the latent-error fault rotted.
    var rotRanges: [Int: [TopicPartition: [Range<Int64>]]] = [:]

    static let wallClockBaseMs: Int64 = 1_780_000_000_000
    static let eventBudget = 3_000_000
    static let livenessLimitNs: Int64 = 60_000_000_000

    /// A run of `seed`; `canary` switches on acknowledge-before-sync, `spoolCanary` ordered
    /// spool writes reported written but dropped (the checkers must fail either way); `bugs`
    /// (tests only) are more bugs they must catch. `synchronousDestroyed` makes the world a
    /// synchronous replicated one whose master's disk is destroyed (as the replication canary's
    /// worlds are; a seed that draws such a world by itself runs exactly as without it).
    /// `failover` makes every world a failover world (SimFailover; replicated, as drawn).
    public init(seed: UInt64, canary: Bool = false, spoolCanary: Bool = false, trace: Bool = false, bugs: SimBugs = [],
                synchronousDestroyed: Bool = false, failover: Bool = false) {
        self.seed = seed
        var rng = SimRandom(seed: seed)
        var clusterRng = SimRandom(seed: seed ^ 0x5A6B_7C8D_9EAF_0123)
        var options = SimOptions(drawingFrom: &rng, cluster: &clusterRng, canary: canary)
        var handlerRng = SimHandlers.stream(seed: seed)
        options.handlers = SimHandlers.draw(&handlerRng, hasGroups: !options.cluster.groups.isEmpty)
        var brokerFaultRng = SimRandom(seed: seed ^ 0x0D15_CFA1_7B0C_3E21)
        options.brokerFaults = SimOptions.BrokerFaults(drawingFrom: &brokerFaultRng)
        self.brokerFaultRng = brokerFaultRng
        var orderedRng = SimOrdered.stream(seed: seed)
        options.ordered = SimOrdered.draw(&orderedRng)
        options.canaryDropSpooled = spoolCanary
        self.orderedRng = orderedRng
        var routedRng = SimRouted.stream(seed: seed)
        options.routed = SimRouted.draw(&routedRng)
        self.routedRng = routedRng
        var manualRng = SimManualAck.stream(seed: seed)
        options.manualAck = SimManualAck.draw(&manualRng, groups: options.cluster.groups.count)
        self.manualRng = manualRng
        var routedFaultRng = SimRoutedFaults.stream(seed: seed)
        options.routedFaults = SimRoutedFaults.draw(&routedFaultRng, routed: options.routed != nil)
        self.routedFaultRng = routedFaultRng
        var txRng = SimTransactions.stream(seed: seed)
        options.transactions = SimTransactions.draw(&txRng)
        self.txRng = txRng
        var replicationRng = SimReplication.stream(seed: seed)
        let failoverOnly = failover || bugs.contains(.failoverTakeOverWithoutNewTerm) || bugs.contains(.failoverIgnoresLostLogs)
        options.replication = SimReplication.draw(&replicationRng, brokers: options.brokers, safetyPhaseMs: options.safetyPhaseMs,
                                                  force: synchronousDestroyed || bugs.replicationCanary != nil,
                                                  forceReplicated: failoverOnly)
        if options.replication?.destroyMasterAtMs != nil { options.keepOnlyPlainClients() }
        self.replicationRng = replicationRng
        // Failover worlds: a share of the replicated ones, from a stream of their own.
        var failoverRng = SimFailover.stream(seed: seed)
        if options.replication != nil {
            options.replication!.failover = SimFailover.draw(&failoverRng, force: failoverOnly)
        }
        if options.replication?.failover != nil { options.keepOnlyPlainClients() }
        self.failoverRng = failoverRng
        self.options = options
        self.rng = rng
        self.clusterRng = clusterRng
        self.handlerRng = handlerRng
        self.bugs = bugs
        traceLog = SimTrace(keepLines: trace)
    }

    var nowMs: Int64 { nowNs / 1_000_000 }
    var wallMs: Int64 { Self.wallClockBaseMs + nowMs }
    var instant: Instant { Instant(nanoseconds: nowNs) }

    /// The broker or slave process with this index (brokers first).
    func process(_ index: Int) -> SimBroker { index < brokers.count ? brokers[index] : slaves[index - brokers.count] }

    func schedule(_ event: Event, afterNs delay: Int64) { queue.schedule(event, at: nowNs + max(0, delay)) }
    func schedule(_ event: Event, atNs time: Int64) { queue.schedule(event, at: max(nowNs, time)) }

    func trace(_ code: TraceCode, _ a: Int64 = 0, _ b: Int64 = 0, _ text: @autoclosure () -> String = "") {
        traceLog.record(nowNs, code.rawValue, a, b, text())
    }

    /// A failure found by the final checks (the run is over: no time stamp, nothing to stop).
    func finalFailure(_ message: String) { failures.append(message) }

    func fail(_ message: String) {
        failures.append("at \(nowMs)ms: \(message)")
        trace(.fault, 0, 0, "FAIL \(message)")
        finished = true
    }

    // MARK: Running

    public func run() -> SimResult {
        network = SimNetwork(sim: self)
        zooKeeper = makeZooKeeper()
        brokers = (0..<options.brokers).map { SimBroker(id: $0, options: options, sim: self) }
        for broker in brokers where broker.id != options.cluster.lateBroker?.id { broker.start() }
        if let late = options.cluster.lateBroker {
            schedule(.cluster(.brokerJoins(late.id)), afterNs: Int64(late.atMs) * 1_000_000)
        }
        var client = 0
        for p in 0..<options.producers {
            producers.append(SimProducer(client: client, broker: rng.int(in: 0..<options.brokers),
                                         total: options.messagesPerProducer, maxInFlight: options.maxInFlight))
            client += 1
            schedule(.produce(p), afterNs: Int64(rng.int(in: 0...50)) * 1_000_000)
        }
        // A topic a group subscribes to is read by the group's fetchers (the same machine, the
        // same checks) instead of one consumer per partition.
        let groupTopics = Set(options.cluster.groups.flatMap(\.topics))
        for broker in 0..<options.brokers where broker != options.replication?.failoverBrokerId {
            for topic in options.topics where !groupTopics.contains(topic.name) {
                for partition in 0..<topic.partitions {
                    consumers.append(SimConsumer(client: client, broker: broker,
                                                 partition: TopicPartition(topic.name, Int32(partition)),
                                                 fetchSize: options.fetchSize))
                    client += 1
                }
            }
        }
        for index in consumers.indices { consumerHandle(index, .start) }
        firstFetcherClient = client
        nextClient = client
        startOrdered()
        startRouted()
        startTransactions()
        startReplication()
        startGroups()
        scheduleNextFault()
        scheduleNextBrokerFault()
        schedule(.liveness, afterNs: Int64(options.safetyPhaseMs) * 1_000_000)

        var processed = 0
        while !finished, let (at, event) = queue.pop() {
            nowNs = at
            for broker in brokers { broker.disk.nowMs = wallMs }
            for slave in slaves { slave.disk.nowMs = wallMs }
            dispatch(event)
            processed += 1
            if processed >= Self.eventBudget {
                fail("event budget of \(Self.eventBudget) exhausted (a livelock?)")
            }
        }
        if failures.isEmpty && !finished { fail("the event queue ran dry before the liveness phase converged") }
        if failures.isEmpty { finalChecks() }
        if failures.isEmpty { checkOrderedAtTheEnd() }
        if failures.isEmpty { checkTransactionsAtTheEnd() }
        if failures.isEmpty { checkReplicationAtTheEnd() }
        counters.runs = 1
        counters.events = processed
        for broker in brokers {
            for partition in broker.node?.stores.partitions ?? [] {
                counters.segmentRolls += max(0, (broker.log(partition)?.segmentCount ?? 1) - 1)
            }
        }
        for broker in brokers { counters.canaryEarlyAcks += broker.node?.canaryEarlyAcks ?? 0 }
        for producer in producers { counters.producerTimeouts += producer.machine.counters.timeouts }
        for consumer in consumers {
            counters.consumerTimeouts += consumer.machine.counters.timeouts
            counters.staleAnswers += consumer.machine.counters.staleAnswers
        }
        collectGroupCounters()
        if options.ordered != nil { counters.orderedSeeds = 1 }
        for producer in orderedProducers { counters.orderedReplayed += producer.queue.counters.replayed }
        collectRoutedCounters()
        if options.transactions != nil { counters.txSeeds = 1 }
        collectReplicationCounters()
        traceLog.fold(UInt64(counters.delivered))
        return SimResult(seed: seed, options: options.description, failures: failures, fingerprint: traceLog.fingerprint,
                         counters: counters, trace: traceLog.lines, virtualMs: nowMs)
    }

    private func dispatch(_ event: Event) {
        switch event {
        case .produce(let p):
            trace(.produce, Int64(p))
            produce(p)
        case .producerTick(let p):
            trace(.producerTick, Int64(p))
            producerHandle(p, .tick)
        case .consumerTick(let c):
            trace(.consumerTick, Int64(c))
            consumerHandle(c, .tick)
        case .connectArrives(let id):
            trace(.connectArrives, Int64(id))
            network.connectArrives(id)
        case .connectAnswered(let id, let ok):
            trace(.connectAnswered, Int64(id), ok ? 1 : 0)
            network.connectAnswered(id, ok: ok)
        case .bytesToBroker(let id, let bytes):
            trace(.bytesToBroker, Int64(id), Int64(bytes.count))
            network.bytesToBroker(id, bytes)
        case .bytesToClient(let id, let bytes):
            trace(.bytesToClient, Int64(id), Int64(bytes.count))
            network.bytesToClient(id, bytes)
        case .closeReachesBroker(let id):
            trace(.closeReachesBroker, Int64(id))
            network.closeReachesBroker(id)
        case .closeReachesClient(let id):
            trace(.closeReachesClient, Int64(id))
            network.closeReachesClient(id)
        case .syncDone(let b, let incarnation, let partition):
            trace(.syncDone, Int64(b), Int64(partition.partition))
            process(b).syncDone(partition, incarnation: incarnation)
        case .journalSyncDone(let b, let incarnation):
            trace(.syncDone, Int64(b), -1)
            process(b).journalSyncDone(incarnation: incarnation)
        case .brokerTimer(let b, let incarnation, let timer):
            trace(.syncTimer, Int64(b), 0)
            process(b).timerFired(timer, incarnation: incarnation)
        case .brokerFault:
            guard !inLiveness else { return }
            injectBrokerFault()
            scheduleNextBrokerFault()
        case .operatorRestart(let b, let incarnation):
            trace(.operatorRestart, Int64(b), 0, "operator stops broker\(b) to clear its failed log")
            if process(b).isUp && process(b).incarnation == incarnation { process(b).requestStop() }
        case .restartBroker(let b):
            trace(.restartBroker, Int64(b), 0, "\(process(b).name) restarts")
            if !process(b).isUp { process(b).start() }
        case .fault:
            guard !inLiveness else { return }
            injectFault()
            scheduleNextFault()
        case .liveness:
            trace(.liveness, 0, 0, "liveness phase: faults off, network healed, every broker up")
            startLiveness()
        case .convergenceCheck:
            trace(.convergence)
            checkConvergence()
        case .cluster(let event):
            dispatch(event)
        case .ordered(let event):
            trace(.ordered)
            dispatch(event)
        case .routed(let event):
            trace(.routed)
            dispatch(event)
        case .transactions(let event):
            trace(.transaction)
            dispatch(event)
        case .failover:
            trace(.failover)
            failoverFault()
        case .replication(let event):
            trace(.replication)
            dispatch(event)
        }
    }

    // MARK: Liveness and the final checks

    private func startLiveness() {
        inLiveness = true
        livenessStartNs = nowNs
        network.healAll()
        for broker in brokers {
            broker.slowUntilNs = 0
            broker.disk.failNextWrite = nil
            broker.disk.failNextSync = false
            if broker.isUp && (!broker.failedPartitions.isEmpty || broker.journalFailed) {
                // A failed log refuses writes until a restart: the healthy core gets one.
                counters.restartsAfterDiskFailure += 1
                network.brokerDied(broker.id, silently: false)
                broker.stop(powerLoss: false)
            }
            if !broker.isUp { broker.start() }
        }
        replicationLiveness()
        clusterLiveness()
        schedule(.convergenceCheck, afterNs: 10_000_000)
    }

    private func checkConvergence() {
        var waiting: [String] = []
        for (p, producer) in producers.enumerated() where !producer.isDone {
            waiting.append("producer \(p): \(producer.completed)/\(producer.total) completed")
        }
        for consumer in consumers {
            let stuckOnRot = consumer.damagedAt != nil && rotRanges[consumer.broker]?[consumer.partition] != nil
            if let behind = readBehind(consumer.machine.offset, broker: consumer.broker, consumer.partition), !stuckOnRot {
                waiting.append("consumer broker\(consumer.broker) \(consumer.partition) \(behind)")
            }
        }
        waiting += clusterWaiting()
        waiting += orderedWaiting()
        waiting += routedWaiting()
        waiting += transactionsWaiting()
        waiting += replicationWaiting()
        if waiting.isEmpty {
            checkClusterAfterConvergence()
            finished = true
            return
        }
        if nowNs - livenessStartNs > Self.livenessLimitNs {
            fail("liveness: no convergence \(Self.livenessLimitNs / 1_000_000_000) s after the faults stopped: "
                 + waiting.prefix(5).joined(separator: "; "))
            return
        }
        schedule(.convergenceCheck, afterNs: 50_000_000)
    }

    /// Nil when a reader at `offset` has read `partition` of `broker` to its end, with nothing
    /// left unsynced; otherwise how far behind it is.
    func readBehind(_ offset: Int64, broker: Int, _ partition: TopicPartition) -> String? {
        let log = brokers[broker].log(partition)
        let end = log?.maxOffset ?? 0
        let settled = !(log?.hasUnsyncedData ?? false)
        return offset >= end && settled ? nil : "at \(offset) of \(end)\(settled ? "" : " (unsynced data)")"
    }
}
