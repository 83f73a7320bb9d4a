import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ProtocolCore
import StoreCore

/// Where and how the dashboard serves (reference §7.2; `dashboardHttpPort` of §8.1).
public struct DashboardSettings: Sendable {
    /// The address to bind (the broker's `--host`) and `dashboardHttpPort`; 0 binds any free
    /// port (tests), the broker's start-up skips the dashboard for `dashboardHttpPort=0`... see
    /// docs/DASHBOARD.md.
    public var host: String
    public var port: Int
    /// The host other brokers and browsers reach this one by (overview, links).
    public var advertisedHost: String
    /// The broker's TCP port on this machine: `/stats` asks it over the wire so the text is the
    /// broker's own answer.
    public var serverPort: Int
    /// The resolved data path (`dataPath`, or the default).
    public var dataPath: String
    /// Cluster mode: ZooKeeper's connect string, session timeout and root; nil in local mode.
    public var zooKeeper: ZooKeeper?
    /// At most this many dashboard connections at once; more are closed at once.
    public var maxConnections = 32
    /// A request's line and headers together, and its body, at most these bytes.
    public var maxHeadBytes = 16 << 10
    public var maxBodyBytes = 64 << 10
    /// An idle connection is closed after this.
    public var idleTimeoutMs: Int64 = 30_000
    /// The throughput sampler's period and how many samples it keeps.
    public var sampleIntervalMs: Int64 = 5_000
    public var sampleCapacity = 120
    /// How long another broker's dashboard port (learned with `stats config`) is remembered.
    public var clusterPortCacheMs: Int64 = 30_000

    public struct ZooKeeper: Sendable {
        public var connect: String
        public var sessionTimeoutMs: Int
        public var root: String

        public init(connect: String, sessionTimeoutMs: Int, root: String) {
            self.connect = connect
            self.sessionTimeoutMs = sessionTimeoutMs
            self.root = root
        }
    }

    public init(host: String, port: Int, advertisedHost: String, serverPort: Int, dataPath: String, zooKeeper: ZooKeeper?) {
        self.host = host
        self.port = port
        self.advertisedHost = advertisedHost
        self.serverPort = serverPort
        self.dataPath = dataPath
        self.zooKeeper = zooKeeper
    }
}

/// Why the dashboard could not start.
public struct DashboardStartError: Error, CustomStringConvertible {
    public var description: String
}

/// The dashboard (reference §7.2): server-rendered pages and their JSON on its own one-thread
/// event loop, so rendering never runs on the node's loop (it only takes an observation there,
/// `BrokerServer.observe`). Blocking work (the loopback `stats` request, asking other brokers
/// for their dashboard port) runs on a one-thread pool; ZooKeeper reads go through a read-only
/// session of the dashboard's own.
///
/// Hooks let the lead wire other parts without this file depending on them: `metrics` serves
/// `GET /metrics`, `reload` serves `POST /reload-config` (501 when nil), `logLines` feeds
/// `/logging`.
public final class DashboardServer: Sendable {
    public let settings: DashboardSettings
    let observe: @Sendable () -> EventLoopFuture<BrokerObservation>
    let metrics: (@Sendable () -> EventLoopFuture<String>)?
    let reload: (@Sendable () -> EventLoopFuture<String>)?
    let logLines: @Sendable () -> [String]
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let blocking: NIOThreadPool
    /// Mutable state, touched on `loop` only (so `NIOLoopBoundBox`-like use; a lock keeps the
    /// compiler's `Sendable` check simple and is never contended).
    let state = NIOLockedValueBox(State())

    struct State {
        var sampler = ThroughputSampler()
        var connections = 0
        var channel: Channel?
        var sampling: RepeatedTask?
        var zooKeeper: ZooKeeperSession?
        /// `host:port` → (dashboard port, when learned).
        var dashboardPorts: [String: (port: Int?, wallMs: Int64)] = [:]
        var stopped = false
    }

    var loop: any EventLoop { group.next() }

    public init(settings: DashboardSettings, observe: @escaping @Sendable () -> EventLoopFuture<BrokerObservation>,
                metrics: (@Sendable () -> EventLoopFuture<String>)? = nil,
                reload: (@Sendable () -> EventLoopFuture<String>)? = nil,
                logLines: @escaping @Sendable () -> [String] = { [] }, logger: Logger) {
        self.settings = settings
        self.observe = observe
        self.metrics = metrics
        self.reload = reload
        self.logLines = logLines
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        blocking = NIOThreadPool(numberOfThreads: 1)
    }

    /// Binds and starts sampling; the bound port. Throws a `DashboardStartError` naming
    /// `dashboardHttpPort` when the port cannot be bound.
    public func start() throws -> Int {
        blocking.start()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let admitted = self.state.withLockedValue { state -> Bool in
                    guard state.connections < self.settings.maxConnections, !state.stopped else { return false }
                    state.connections += 1
                    return true
                }
                guard admitted else { return channel.close() }
                channel.closeFuture.whenComplete { _ in self.state.withLockedValue { $0.connections -= 1 } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandlers([
                        IdleStateHandler(allTimeout: .milliseconds(self.settings.idleTimeoutMs)),
                        DashboardHandler(server: self),
                    ])
                }
            }
        let channel: Channel
        do {
            channel = try bootstrap.bind(host: settings.host, port: settings.port).wait()
        } catch {
            try? shutdownThreads()
            throw DashboardStartError(description: "cannot serve the dashboard on \(settings.host):\(settings.port) (dashboardHttpPort of [system]): \(error); choose another dashboardHttpPort, or 0 to turn the dashboard off")
        }
        let interval = TimeAmount.milliseconds(max(200, settings.sampleIntervalMs))
        let task = channel.eventLoop.scheduleRepeatedAsyncTask(initialDelay: .zero, delay: interval) { _ in
            self.observe().hop(to: channel.eventLoop).map { observation in
                self.state.withLockedValue { $0.sampler.add(.init(observation)) }
            }.recover { _ in }
        }
        state.withLockedValue {
            $0.channel = channel
            $0.sampling = task
        }
        return channel.localAddress?.port ?? settings.port
    }

    /// Closes the listener and every connection, the ZooKeeper session and the threads.
    public func stop() {
        let (channel, task, session) = state.withLockedValue { state -> (Channel?, RepeatedTask?, ZooKeeperSession?) in
            state.stopped = true
            defer { state.channel = nil; state.sampling = nil; state.zooKeeper = nil }
            return (state.channel, state.sampling, state.zooKeeper)
        }
        task?.cancel()
        try? channel?.close().wait()
        session?.close()
        try? shutdownThreads()
    }

    private func shutdownThreads() throws {
        try? blocking.syncShutdownGracefully()
        try group.syncShutdownGracefully()
    }

    // MARK: shared services of the pages

    /// The read-only ZooKeeper session of the dashboard (cluster mode), opened on first use.
    func zooKeeper() -> ZooKeeperSession? {
        guard let zk = settings.zooKeeper else { return nil }
        return state.withLockedValue { state in
            if let session = state.zooKeeper { return session }
            guard !state.stopped else { return nil }
            let session = try? ZooKeeperSession(connect: zk.connect, sessionTimeoutMs: zk.sessionTimeoutMs, logger: logger) { _ in }
            state.zooKeeper = session
            return session
        }
    }

    /// The broker's own `stats <item>` answer text, asked over the wire on this machine.
    func statsText(item: String?) -> EventLoopFuture<String> {
        let host = ["0.0.0.0", "::", ""].contains(settings.host) ? "127.0.0.1" : settings.host
        let port = settings.serverPort
        return blocking.runIfActive(eventLoop: loop) {
            try Self.askStats(host: host, port: port, item: item)
        }
    }

    /// One `stats` request on a fresh connection (closed after).
    static func askStats(host: String, port: Int, item: String?, timeoutSeconds: Int = 5) throws -> String {
        let connection = try WireConnection(host: host, port: port, timeoutSeconds: timeoutSeconds)
        guard case .result(let answer) = try connection.request(.stats(StatsCommand(item: item, opaque: 1))) else {
            throw DashboardStartError(description: "unexpected answer to stats")
        }
        return answer.text
    }
}
