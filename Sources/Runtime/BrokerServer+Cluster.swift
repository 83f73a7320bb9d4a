import Logging
import BrokerCore
import NIOCore
import ProtocolCore
import StoreCore

/// Cluster mode (reference §3.2): the broker's registration in ZooKeeper, driven on the server's
/// event loop. The `BrokerRegistration` machine decides every znode; this class only carries its
/// requests to the ZooKeeper session, hops the session's callbacks onto the loop, and runs timers.
///
/// Concurrency: the machine and `stopWaiters` are touched only on `server.loop`; the session's
/// sink runs on the C client's thread and only enqueues onto the loop.
public final class BrokerClusterMember: @unchecked Sendable {
    let server: BrokerServer
    let logger: Logger
    var machine: BrokerRegistration
    var session: ZooKeeperSession?
    var stopped: EventLoopPromise<Void>?

    /// The topics the node names are registered at start (configured without wildcards, and
    /// every topic with data on disk); the node asks for the others when a put creates them.
    public init(server: BrokerServer, uri: String, logger: Logger) {
        self.server = server
        self.logger = logger
        let config = server.config
        machine = BrokerRegistration(settings: .init(
            brokerId: config.brokerId, uri: uri, configChecksum: server.node.configChecksum, topics: server.topicsToRegister,
            layout: MetaZooKeeperLayout(root: config.zooKeeper.root)))
    }

    /// Opens the ZooKeeper session and registers; returns at once (the session connects in the
    /// background and the registration follows; see the log).
    public func start(connect: String, sessionTimeoutMs: Int) throws {
        let loop = server.loop
        session = try ZooKeeperSession(connect: connect, sessionTimeoutMs: sessionTimeoutMs, logger: logger) { [weak self] event in
            guard let member = self else { return }
            loop.execute { member.handle(.coordination(event)) }
        }
        server.onRegisterTopic = { [weak self] topic in self?.handle(.topicAdded(topic)) }
        loop.execute { self.handle(.start) }
    }

    /// Removes the registration (waiting at most `timeoutMs` for ZooKeeper), then closes the session.
    public func stop(timeoutMs: Int64 = 5000) {
        let promise = server.loop.makePromise(of: Void.self)
        server.loop.execute {
            self.stopped = promise
            self.handle(.stop)
        }
        let timeout = server.loop.scheduleTask(in: .milliseconds(timeoutMs)) {
            promise.fail(CancellationError())
        }
        if (try? promise.futureResult.wait()) == nil {
            logger.warning("ZooKeeper did not confirm the unregistration in time; closing the session removes the ephemeral nodes")
        }
        timeout.cancel()
        session?.close()
        session = nil
    }

    func handle(_ event: BrokerRegistration.Event) {
        let now = Clocks.monotonic()
        for action in machine.handle(event, now: now) {
            switch action {
            case .coordinate(let request, let tag):
                if let session { session.submit(request, tag: tag) } else {
                    handle(.coordination(.reply(tag: tag, .failed(.sessionExpired))))
                }
            case .registered:
                logger.info("registered in ZooKeeper", metadata: [
                    "brokerId": "\(machine.settings.brokerId)", "uri": "\(machine.settings.uri)",
                    "nodes": "\(machine.nodes.count)", "registrations": "\(machine.registrations)"])
            case .conflict(let path, let existing):
                logger.error("another broker holds this broker id; retrying", metadata: ["path": "\(path)", "holder": "\(existing)"])
            case .scheduleTick(let at):
                let delay = max(0, at.nanoseconds - now.nanoseconds)
                server.loop.scheduleTask(in: .nanoseconds(delay)) { self.handle(.tick) }
            case .stopped:
                logger.info("unregistered from ZooKeeper")
                stopped?.succeed(())
                stopped = nil
            }
        }
        if case .coordination(.session(let state)) = event {
            logger.info("ZooKeeper session \(state)")
        }
    }
}
