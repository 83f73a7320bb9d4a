import Dispatch
import Glibc
import Logging
import Synchronization
import NIOCore
import NIOPosix
import BrokerCore
import ProtocolCore
import StoreCore

/// The broker's Linux driver: SwiftNIO sockets, sync threads, timers and sendfile around one
/// `BrokerNode`, which holds every rule (commit pipeline, syncs, failures, registration,
/// retention, stats, graceful stop). This class decodes bytes into requests, feeds the node its
/// events and carries out its actions; it decides nothing about a put.
///
/// Concurrency (DESIGN.md §5): one event loop owns the node; all mutable state below is touched
/// only there. Client connections live on connection loops (`ioThreads`, `ConnectionLoops.swift`)
/// that read, decode and write, and hand frames to this loop in batches. A pool of sync threads per data directory
/// (`SyncThreads`) runs `SyncBatch.perform` — fdatasync — so a slow disk does not hold up
/// partitions on another and partitions on one disk sync at the same time; results come back
/// through `SyncInbox` (the one lock, around its list).
/// Hot properties are `@exclusivity(unchecked)`: only the loop thread touches them and no access
/// overlaps another (the node never calls back into the server), so the dynamic exclusivity
/// check buys nothing here.
public final class BrokerServer: @unchecked Sendable {
    public let loop: any EventLoop
    let group: MultiThreadedEventLoopGroup
    /// The connection loops' threads (`ioThreads`), or nil when connections share the node's loop.
    let connectionGroup: MultiThreadedEventLoopGroup?
    /// Every connection loop, each with its batch towards the node (fixed after init).
    private(set) var connectionLoops: [ConnectionLoop] = []
    /// Open client connections (counted where they open and close, on connection loops).
    let openConnections = Atomic<Int>(0)
    let nextConnectionID = Atomic<UInt64>(1)
    /// The node's writes per connection loop collected in one flush (indexed like `connectionLoops`).
    @exclusivity(unchecked) var outboxes: [[(channel: any Channel, items: [ConnectionLoop.Outbound])]] = []
    let node: BrokerNode
    let logger: Logger
    @exclusivity(unchecked) var connections: [ConnectionID: Connection] = [:]
    /// Connections with replies buffered in `Connection.out` or written but not flushed.
    @exclusivity(unchecked) var dirtyConnections: [Connection] = []
    /// An empty buffer the flush swaps in for `dirtyConnections`.
    @exclusivity(unchecked) var spareConnections: [Connection] = []
    var endOfTickScheduled = false
    /// Reused action arrays (a stack, since carrying out an action can feed another event).
    @exclusivity(unchecked) var actionPool: [[BrokerNode.Action]] = []
    /// Where sync cycles spend their time; logged at stop.
    var syncStats = SyncCycleStats()
    /// The syncs running on sync threads, with their timings.
    var syncWork: [TopicPartition: SyncWork] = [:]
    /// Sync threads by data directory, created on first use; touched on the loop only.
    var syncThreads: SyncThreads
    /// Sync results waiting for the loop (posted by sync threads, drained in one task).
    let syncInbox = SyncInbox()
    /// Set while a drain of `syncInbox` feeds the node its completions: an `.endTickNow` then
    /// ends the tick once, after the last of them (`endOfTickRequested`).
    var deferringEndOfTick = false
    var endOfTickRequested = false
    /// The local time zone's offset from UTC, refreshed when a retention timer fires.
    @exclusivity(unchecked) var utcOffsetSeconds = BrokerServer.currentUTCOffsetSeconds()
    var serverChannel: (any Channel)?
    /// The HTTP message API's listening socket (`[http]`, §7.1), when enabled.
    var httpServerChannel: (any Channel)?
    /// Called on the loop when the node asks for a topic's registration (cluster mode, §3.2).
    var onRegisterTopic: ((BrokerRegistration.Topic) -> Void)?
    /// The node asks the election something (failover): its in-sync slaves changed, an operator
    /// asked it to take over (`metaq admin promote`), its logs follow a new term.
    var onElectionEvent: ((BrokerElection.Event) -> Void)?
    /// Completed when the node reports its graceful stop.
    var stopped: EventLoopPromise<StopReport>?
    /// Memory and time bounds of partly received frames (DESIGN.md §8).
    var partialFrames: PartialFrameGuard
    /// The task that closes connections silent mid-frame; armed while one holds part of a frame.
    var partialFrameTimer: Scheduled<Void>?
    /// Connections waiting unread for the partial-frame budget.
    var budgetEpisode = RefusalEpisode()
    /// New connections closed because `maxConnections` were open.
    var connectionLimitEpisode = RefusalEpisode()
    /// Invariant violations of the node already logged.
    var violationsLogged = 0
    /// A slave's connections to its master by the node's link number (at most one open at a time
    /// as the node uses them); see `BrokerServer+MasterLink.swift`.
    var masterLinks: [UInt64: MasterLink] = [:]
    /// Master-link attempts that failed in a row, for logging them without a line per retry.
    var masterLinkFailures = 0
    /// Bytes of put bodies received and of get answers' bodies sent since start (`/metrics`).
    var trafficBytesIn: Int64 = 0
    var trafficBytesOut: Int64 = 0

    /// The server.ini the broker was started with: what `reload` re-reads (§8.4); nil when it was
    /// built without a file (reload then answers so).
    public let configPath: String?

    public init(node: BrokerNode, logger: Logger, configPath: String? = nil) {
        self.configPath = configPath
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
        let ioThreads = node.config.ioThreads(cpus: System.coreCount)
        connectionGroup = ioThreads > 0 ? MultiThreadedEventLoopGroup(numberOfThreads: ioThreads) : nil
        self.node = node
        self.logger = logger
        syncThreads = SyncThreads(threadsPerDirectory: node.config.syncThreads)
        partialFrames = PartialFrameGuard(budgetBytes: node.config.maxPartialFrameBytes,
                                          timeoutMs: node.config.partialFrameTimeoutMs)
        let loops = connectionGroup.map { Array($0.makeIterator()) } ?? [loop]
        connectionLoops = loops.enumerated().map {
            ConnectionLoop(loop: $1, index: $0, server: self, maxQueuedBytes: node.config.maxQueuedRequestBytes)
        }
        outboxes = Array(repeating: [], count: connectionLoops.count)
    }

    /// The connection loop a channel was accepted on.
    func connectionLoop(of channel: any Channel) -> ConnectionLoop {
        connectionLoops.first { $0.loop === channel.eventLoop } ?? connectionLoops[0]
    }

    public var config: ServerConfig { node.config }

    /// Failover in cluster mode: the broker accepts no put until the election decides. Call
    /// before `start` (it runs on the loop and waits).
    public func awaitElection() {
        try? loop.submit { self.handle(.leadership(ElectionDriver.waitingForElection)) }.wait()
    }

    /// Binds `host:port` and starts accepting; returns the bound port. Arms the node's timers.
    ///
    /// The accept loop backs off when accepting fails for want of descriptors or memory (without
    /// that it retries the failing accept at full speed, `AcceptMonitor`); a connection beyond
    /// `maxConnections` is accepted and closed at once.
    ///
    /// - Throws: ``ListenError`` when the address cannot be bound.
    public func start(host: String, port: Int) throws -> Int {
        let channel = try listen(host: host, port: port) { _ in }
        serverChannel = channel
        loop.execute {
            self.handle(.start)
            self.feedConfiguredMaster()
        }
        return channel.localAddress?.port ?? port
    }

    /// A listening socket whose connections are broker connections: admitted against
    /// `maxConnections`, numbered, read by a `ConnectionHandler` on their connection loop and
    /// announced to the node. `configure` adds what goes in front of the handler (the HTTP API's
    /// codec). The listening socket is on a connection loop too: a busy node's loop does not delay
    /// accepts; accepting backs off when it fails for want of descriptors (`AcceptMonitor`).
    func listen(host: String, port: Int,
                configure: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void) throws -> any Channel {
        let bootstrap = ServerBootstrap(group: connectionGroup ?? group, childGroup: connectionGroup ?? group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.backlog, value: Int32(clamping: config.listenBacklog))
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptMonitor(logger: self.logger))
                }
            }
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let home = self.connectionLoop(of: channel)
                    guard self.admit(channel) else {
                        home.post(.refused)
                        return
                    }
                    let id = ConnectionID(self.nextConnectionID.add(1, ordering: .relaxed).oldValue)
                    let handler = ConnectionHandler(home: home, id: id)
                    try configure(channel.pipeline.syncOperations)
                    try channel.pipeline.syncOperations.addHandler(handler)
                    home.post(.opened(id, channel, handler))
                }
            }
        do { return try bootstrap.bind(host: host, port: port).wait() } catch {
            throw ListenError(host: host, port: port, error)
        }
    }

    /// Graceful stop: stops accepting, then the node drains its syncs, syncs every log one last
    /// time, answers what that made durable, and closes connections and logs.
    ///
    /// - Returns: the partitions whose log is failed at the end — their final sync failed, or a
    ///   write or sync failed earlier — with the cause, in partition order. Empty when everything
    ///   written is durable; otherwise the caller must not report a clean stop.
    @discardableResult
    public func stop() throws -> [(partition: TopicPartition, failure: LogFailure)] {
        try serverChannel?.close().wait()
        try httpServerChannel?.close().wait()
        let promise = loop.makePromise(of: StopReport.self)
        loop.execute {
            self.stopped = promise
            self.handle(.stopRequested)
        }
        // Syncs in flight finish on their threads and post their completions to the loop, where
        // the node answers what they made durable before its final step.
        let report = try promise.futureResult.wait()
        logger.info("\(report.cleanStopMarks) partition(s) closed clean: their next start skips the last segment's scan")
        try loop.submit {
            if self.syncStats.fsync.count > 0 {
                self.logger.info("sync cycles since start (each stage: p50/p99/max µs)", metadata: self.syncStats.metadata())
            }
        }.wait()
        try loop.submit { self.syncThreads.shutdown() }.wait()
        // Connection loops first: their last words (closed connections) still reach the node's loop.
        try connectionGroup?.syncShutdownGracefully()
        try group.syncShutdownGracefully()
        return report.failedPartitions
    }

    /// The file descriptors this broker may need (compared with its limit at start).
    public var descriptorBudget: DescriptorBudget { node.stores.descriptorBudget() }

    /// The topics to register in ZooKeeper at start (the node decides).
    public var topicsToRegister: [BrokerRegistration.Topic] { node.topicsToRegister() }

    /// A connection loop's batch: connections opened and closed, frames, partial-frame reports,
    /// in the order they happened there. Frames of a connection the node no longer serves
    /// (closed meanwhile) are dropped.
    func receive(_ batch: ConnectionLoop.Batch, from home: ConnectionLoop) {
        defer { home.queuedBytes.subtract(batch.bytes, ordering: .relaxed) }
        trafficBytesIn &+= Int64(batch.putBodyBytes)
        let clock = self.clock()
        for item in batch.items {
            switch item {
            case .frame(let id, let frame):
                guard connections[id] != nil else { continue }
                handleRequest(frame, from: id, clock: clock)
            case .opened(let id, let channel, let handler):
                connections[id] = Connection(channel: channel, handler: handler)
                handle(.connectionOpened(id), clock: clock)
            case .partial(let id, let completed, let partial):
                partialFrameRead(id, completedFrames: completed, partial: partial)
            case .closed(let id):
                closed(id)
            case .refused:
                connectionRefused()
            }
        }
    }

    func closed(_ id: ConnectionID) {
        connections[id]?.isOpen = false
        connections[id] = nil
        partialFrameConnectionClosed(id)
        connectionLimitMayHaveEased()
        handle(.connectionClosed(id))
    }

    /// One decoded request (the hot path: the frame goes to the node without an event around it).
    func handleRequest(_ frame: consuming Frame, from id: ConnectionID, clock: NodeClock) {
        var actions = actionPool.popLast() ?? []
        node.handleRequest(frame, from: id, clock: clock, into: &actions)
        for index in actions.indices { perform(actions[index]) }
        actions.removeAll(keepingCapacity: true)
        actionPool.append(actions)
        scheduleEndOfTick()
    }

    /// The node's clock: read once per batch of requests by callers that have one.
    func clock() -> NodeClock {
        NodeClock(now: Clocks.monotonic(), wallMs: Clocks.wallMs(), utcOffsetSeconds: utcOffsetSeconds)
    }

    /// Feeds one event to the node and carries out what it asks for; the tick ends later in
    /// this loop iteration (`scheduleEndOfTick`).
    func handle(_ event: BrokerNode.Event, clock: NodeClock? = nil) {
        var actions = actionPool.popLast() ?? []
        node.handle(event, clock: clock ?? self.clock(), into: &actions)
        for index in actions.indices { perform(actions[index]) }
        actions.removeAll(keepingCapacity: true)
        actionPool.append(actions)
        if case .tickEnded = event { return }
        scheduleEndOfTick()
    }

    /// Batching (DESIGN.md §5): requests decoded in one loop tick stage their records and buffer
    /// their replies; at the end of the tick the node writes each touched log once and the
    /// connections are flushed once.
    func scheduleEndOfTick() {
        guard !endOfTickScheduled else { return }
        endOfTickScheduled = true
        loop.execute {
            self.endOfTickScheduled = false
            self.handle(.tickEnded)
        }
    }
}

/// A client connection as the node's loop sees it: its channel, its handler on its connection
/// loop, and the replies not yet handed to it.
final class Connection {
    let channel: any Channel
    /// Its handler on its connection loop (`handler.home`).
    let handler: ConnectionHandler
    /// Replies encoded since the last flush; handed to the channel in one write.
    @exclusivity(unchecked) var out: ByteBuffer
    /// What goes to the channel at the next flush, in order (`out` is moved here before a file).
    @exclusivity(unchecked) var pending: [ConnectionLoop.Outbound] = []
    /// Put answers since `out` was last written to; they follow `out` (`sealAnswers`).
    @exclusivity(unchecked) var answers: [BrokerMachine.PutAnswer] = []
    var isDirty = false
    var isOpen = true

    init(channel: any Channel, handler: ConnectionHandler) {
        self.channel = channel
        self.handler = handler
        out = channel.allocator.buffer(capacity: 4096)
    }
}

/// Clocks of the runtime; the machines only ever see their readings (tools use them too).
public enum Clocks {
    public static func monotonic() -> Instant {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Instant(nanoseconds: Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec))
    }

    public static func wallMs() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return Int64(t.tv_sec) * 1000 + Int64(t.tv_nsec) / 1_000_000
    }
}
