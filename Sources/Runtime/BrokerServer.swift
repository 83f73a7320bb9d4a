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
/// all mutable state below is touched only there. The sync thread (`syncQueue`, a serial queue)
/// runs `SyncBatch.perform` — fdatasync — and hands the result back to the loop. No locks.
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
    var machine: BrokerMachine
    var channels: [ConnectionID: any Channel] = [:]
    var nextConnection: UInt64 = 1
    /// Group-commit appends written and waiting for their sync: token → offset.
    var awaitingSync: [UInt64: Int64] = [:]
    /// Slices read for `get`s, waiting to be sent: token → slice.
    var slices: [UInt64: LogSlice] = [:]
    var syncing: Set<TopicPartition> = []
    var timerArmed: Set<TopicPartition> = []
    let syncQueue = DispatchQueue(label: "metaq.sync")
    let startedAt = Clocks.monotonic()
    var serverChannel: (any Channel)?

    public init(machine: BrokerMachine, stores: PartitionStores, configPath: String, logger: Logger) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
        self.machine = machine
        self.stores = stores
        self.configPath = configPath
        self.logger = logger
        let file = try? FileStorage().open(configPath, create: false)
        let bytes = file.flatMap { f in (try? f.size()).flatMap { try? f.read(at: 0, count: Int($0)) } }
        try? file?.close()
        configChecksum = bytes.map { Int64(CRC32.checksum($0)) } ?? 0
    }

    /// Binds `host:port` and starts accepting; returns the bound port.
    public func start(host: String, port: Int) throws -> Int {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let id = self.register(channel)
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(server: self, id: id))
                }
            }
        let channel = try bootstrap.bind(host: host, port: port).wait()
        serverChannel = channel
        return channel.localAddress?.port ?? port
    }

    /// Stops accepting, closes connections, syncs every log and closes it (graceful stop).
    public func stop() throws {
        try serverChannel?.close().wait()
        try loop.submit {
            for channel in self.channels.values { channel.close(promise: nil) }
            for partition in self.stores.partitions {
                guard let log = self.stores.log(partition) else { continue }
                do { try log.syncNow(now: Clocks.monotonic()) } catch {
                    self.logger.critical("final sync failed", metadata: ["partition": "\(partition)", "error": "\(error)"])
                }
            }
            self.stores.closeAll()
        }.wait()
        try group.syncShutdownGracefully()
    }

    func register(_ channel: any Channel) -> ConnectionID {
        let id = ConnectionID(nextConnection)
        nextConnection += 1
        channels[id] = channel
        return id
    }

    func closed(_ id: ConnectionID) {
        channels[id] = nil
        handle(.connectionClosed(id))
    }

    /// Feeds one event to the machine and carries out what it asks for.
    func handle(_ event: BrokerMachine.Event) {
        for action in machine.handle(event, nowMs: Clocks.wallMs()) { perform(action) }
    }
}

/// Clocks of the runtime; the machines only ever see their readings.
enum Clocks {
    static func monotonic() -> Instant {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Instant(nanoseconds: Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec))
    }

    static func wallMs() -> Int64 {
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
    var decoder = FrameDecoder()

    init(server: BrokerServer, id: ConnectionID) {
        self.server = server
        self.id = id
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { decoder.feed($0) }
        do {
            while let frame = try decoder.next() { server.handle(.request(id, frame)) }
        } catch {
            server.logger.info("closing connection after a framing error", metadata: ["connection": "\(id)", "error": "\(error)"])
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        server.closed(id)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
