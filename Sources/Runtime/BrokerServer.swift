import Dispatch
import Glibc
import Logging
import NIOCore
import NIOPosix
import ProtocolCore
import StoreCore

/// The local-mode broker: SwiftNIO sockets driving `BrokerMachine` and `PartitionStores`.
///
/// Concurrency (DESIGN.md §5): one event loop owns the machine, the stores and every connection;
/// all mutable state below is touched only there. One sync thread per data directory (a serial
/// queue each, `syncQueue(for:)`) runs `SyncBatch.perform` — fdatasync — and hands the result
/// back to the loop, so a slow disk does not hold up partitions on another. No locks.
/// Hot properties are `@exclusivity(unchecked)`: only the loop thread touches them and no access
/// overlaps another (the machine never calls back into the server), so the dynamic exclusivity
/// check — ~7% of the loop's time per put in a profile — buys nothing here.
public final class BrokerServer: @unchecked Sendable {
    public let loop: any EventLoop
    let group: MultiThreadedEventLoopGroup
    let stores: PartitionStores
    let storage = FileStorage()
    let configPath: String
    /// CRC32 of the server.ini this broker started with (`config_checksum`, §9); the file is
    /// read once at start, as there is no reload.
    let configChecksum: Int64
    let logger: Logger
    @exclusivity(unchecked) var machine: BrokerMachine
    @exclusivity(unchecked) var connections: [ConnectionID: Connection] = [:]
    var nextConnection: UInt64 = 1
    /// Group-commit appends staged and waiting for their sync: token → offset.
    @exclusivity(unchecked) var awaitingSync: [UInt64: Int64] = [:]
    /// Appends acknowledged once their staged bytes are written (`unflushThreshold > 0`).
    @exclusivity(unchecked) var awaitingWrite: [(token: UInt64, offset: Int64, log: PartitionLog)] = []
    /// Logs with staged records or a sync to consider at the end of this loop tick.
    @exclusivity(unchecked) var dirtyLogs: [(partition: TopicPartition, log: PartitionLog)] = []
    /// Connections with replies buffered in `Connection.out` or written but not flushed.
    @exclusivity(unchecked) var dirtyConnections: [Connection] = []
    var endOfTickScheduled = false
    /// Reused action arrays (a stack, since handling an event can handle another).
    @exclusivity(unchecked) var actionPool: [[BrokerMachine.Action]] = []
    /// The log the last append went to (most puts in a batch go to the same partition).
    var lastLog: (partition: TopicPartition, log: PartitionLog)?
    /// Slices read for `get`s, with their segment open, waiting to be sent: token → slice.
    @exclusivity(unchecked) var slices: [UInt64: OpenedSlice] = [:]
    var syncing: Set<TopicPartition> = []
    var timerArmed: Set<TopicPartition> = []
    /// When each partition's oldest bytes not covered by a begun sync were written.
    var unsyncedSince: [TopicPartition: Instant] = [:]
    /// Where sync cycles spend their time; logged at stop.
    var syncStats = SyncCycleStats()
    /// Sync threads by data directory, created on first use; touched on the loop only.
    var syncQueues: [String: DispatchQueue] = [:]
    let startedAt = Clocks.monotonic()
    var serverChannel: (any Channel)?
    /// Called on the loop when a put creates the first partition of a topic (cluster mode
    /// registers it, §3.2).
    var onTopicCreated: ((String) -> Void)?
    /// Memory and time bounds of partly received frames (DESIGN.md §8).
    var partialFrames: PartialFrameGuard
    /// The task that closes connections silent mid-frame; armed while one holds part of a frame.
    var partialFrameTimer: Scheduled<Void>?
    /// Connections waiting unread for the partial-frame budget.
    var budgetEpisode = RefusalEpisode()
    /// New connections closed because `maxConnections` were open.
    var connectionLimitEpisode = RefusalEpisode()
    /// Set by `stop()`: no sync starts any more (the final ones run on the loop).
    var isStopping = false
    /// Syncs postponed because a file or directory could not be opened (out of descriptors).
    var syncPostponedEpisode = RefusalEpisode()

    public init(machine: BrokerMachine, stores: PartitionStores, configPath: String, logger: Logger) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
        self.machine = machine
        self.stores = stores
        self.configPath = configPath
        self.logger = logger
        partialFrames = PartialFrameGuard(budgetBytes: stores.config.maxPartialFrameBytes,
                                          timeoutMs: stores.config.partialFrameTimeoutMs)
        configChecksum = (try? ConfigFile.read(configPath)).map { Int64(CRC32.checksum($0)) } ?? 0
    }

    /// Binds `host:port` and starts accepting; returns the bound port.
    ///
    /// The accept loop backs off when accepting fails for want of descriptors or memory (without
    /// that it retries the failing accept at full speed, `AcceptMonitor`); a connection beyond
    /// `maxConnections` is accepted and closed at once.
    ///
    /// - Throws: ``ListenError`` when the address cannot be bound.
    public func start(host: String, port: Int) throws -> Int {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.backlog, value: Int32(clamping: stores.config.listenBacklog))
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptMonitor(logger: self.logger))
                }
            }
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard self.admit(channel) else { return }
                    let id = self.register(channel)
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(server: self, id: id))
                }
            }
        let channel: any Channel
        do { channel = try bootstrap.bind(host: host, port: port).wait() } catch {
            throw ListenError(host: host, port: port, error)
        }
        serverChannel = channel
        return channel.localAddress?.port ?? port
    }

    /// Stops accepting, closes connections, syncs every log and closes it (graceful stop).
    ///
    /// - Returns: the partitions whose log is failed at the end — their final sync failed, or a
    ///   write or sync failed earlier — with the cause, in partition order. Empty when everything
    ///   written is durable; otherwise the caller must not report a clean stop.
    @discardableResult
    public func stop() throws -> [(partition: TopicPartition, failure: LogFailure)] {
        try serverChannel?.close().wait()
        // No sync starts from here on; what is staged is written now.
        let queues = try loop.submit { () -> [DispatchQueue] in
            self.isStopping = true
            self.endOfTick()
            return Array(self.syncQueues.values)
        }.wait()
        // The syncs in flight finish on their threads (closing their files under them would be a
        // sync of a closed, maybe reused, descriptor); each posts its completion to the loop,
        // where it runs — answering what it made durable — before the final step below.
        for queue in queues { queue.sync {} }
        let failures = try loop.submit {
            for partition in self.stores.partitions {
                // A log failed earlier refuses the sync anyway; it is reported below.
                guard let log = self.stores.log(partition), !log.isFailed else { continue }
                do {
                    for ticket in try log.syncNow(now: Clocks.monotonic()) {
                        if let offset = self.awaitingSync.removeValue(forKey: ticket) {
                            self.handle(.appended(token: ticket, .success(offset)))
                        }
                    }
                } catch {
                    self.logger.critical("final sync failed", metadata: ["partition": "\(partition)", "error": "\(error)"])
                }
            }
            // The puts the final syncs made durable are answered before the connections close.
            self.endOfTick()
            for connection in self.connections.values { connection.channel.close(promise: nil) }
            let failures = self.stores.partitions.compactMap { partition in
                self.stores.log(partition)?.failure.map { (partition: partition, failure: $0) }
            }
            self.stores.closeAll()
            if self.syncStats.fsync.count > 0 {
                self.logger.info("sync cycles since start (each stage: p50/p99/max µs)", metadata: self.syncStats.metadata())
            }
            return failures
        }.wait()
        try group.syncShutdownGracefully()
        return failures
    }

    /// The file descriptors this broker may need (compared with its limit at start).
    public var descriptorBudget: DescriptorBudget { stores.descriptorBudget() }

    /// The serial sync queue of the data directory that holds `partition`'s log.
    func syncQueue(for partition: TopicPartition) -> DispatchQueue {
        let path = stores.dataPath(of: partition.topic)
        if let queue = syncQueues[path] { return queue }
        let queue = DispatchQueue(label: "metaq.sync \(path)")
        syncQueues[path] = queue
        return queue
    }

    func register(_ channel: any Channel) -> ConnectionID {
        let id = ConnectionID(nextConnection)
        nextConnection += 1
        connections[id] = Connection(channel: channel)
        return id
    }

    func closed(_ id: ConnectionID) {
        connections[id]?.isOpen = false
        connections[id] = nil
        partialFrameConnectionClosed(id)
        connectionLimitMayHaveEased()
        handle(.connectionClosed(id))
    }

    /// Feeds one event to the machine and carries out what it asks for.
    /// `nowMs`: the wall clock, read once per batch of requests by callers that have one.
    func handle(_ event: BrokerMachine.Event, nowMs: Int64? = nil) {
        var actions = actionPool.popLast() ?? []
        machine.handle(event, nowMs: nowMs ?? Clocks.wallMs(), into: &actions)
        for action in actions { perform(action) }
        actions.removeAll(keepingCapacity: true)
        actionPool.append(actions)
        scheduleEndOfTick()
    }

    /// Batching (DESIGN.md §5): requests decoded in one loop tick stage their records and buffer
    /// their replies; at the end of the tick each touched log is written once and each touched
    /// connection is flushed once.
    func scheduleEndOfTick() {
        guard !endOfTickScheduled else { return }
        endOfTickScheduled = true
        loop.execute { self.endOfTick() }
    }
}

/// A slice of a segment and the segment opened for sending it.
struct OpenedSlice {
    let slice: LogSlice
    let file: NIOFileHandle
}

/// A client connection as the server sees it: its channel and the replies not yet handed to it.
final class Connection {
    let channel: any Channel
    /// Replies encoded since the last flush; handed to the channel in one write.
    @exclusivity(unchecked) var out: ByteBuffer
    var isDirty = false
    var isOpen = true
    /// Not read until the partial-frame budget has room for the frame it is receiving.
    var isWaitingForBudget = false

    init(channel: any Channel) {
        self.channel = channel
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

/// One connection: bytes in through a `FrameDecoder`, frames to the server; a framing error
/// closes the connection without a reply, as MetaQ does (§1.1).
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let server: BrokerServer
    let id: ConnectionID
    @exclusivity(unchecked) var decoder = FrameDecoder(limits: .init(retainedBufferBytes: ConnectionHandler.retainedBufferBytes))
    /// Whether the decoder held part of a frame after the last read (the partial-frame guard
    /// tracks the connection exactly then).
    var holdsPartialFrame = false
    /// The decoder's buffer keeps this much storage between frames: enough for the usual batch
    /// of puts, while a connection that once sent a large frame does not keep its size for good
    /// (memory `maxPartialFrameBytes` would not account for).
    static let retainedBufferBytes = 64 << 10

    init(server: BrokerServer, id: ConnectionID) {
        self.server = server
        self.id = id
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { decoder.feed($0) }
        let now = Clocks.wallMs()
        var completed = 0
        do {
            while let frame = try decoder.next() {
                completed += 1
                server.handle(.request(id, frame), nowMs: now)
            }
        } catch {
            server.logger.info("closing connection after a framing error", metadata: ["connection": "\(id)", "error": "\(error)"])
            context.close(promise: nil)
            return
        }
        // Most reads end between frames, with nothing partial before either: nothing to track.
        let partial = decoder.partialFrame
        guard holdsPartialFrame || partial != .none else { return }
        holdsPartialFrame = partial != .none
        server.partialFrameRead(id, completedFrames: completed, partial: partial)
    }

    /// Back-pressure: a client that does not read its answers stops being read (bounded memory).
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        server.updateAutoRead(id)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        server.closed(id)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
