import Logging
import BrokerCore
import NIOCore
import ProtocolCore
import StoreCore

/// Cluster mode (reference §3.2): the broker's registration in ZooKeeper, driven on the server's
/// event loop. The `BrokerRegistration` machine decides every znode; this class only carries its
/// requests to the ZooKeeper session, hops the session's callbacks onto the loop, and runs timers.
/// A slave (issue 17) registers as one (`ids/<id>/slave<n>`, topics `<id>-s<n>`, §6.1) and, unless
/// its master is configured, learns the master's address from `ids/<id>/master` through a
/// `MasterNodeWatch` on the same session, which it feeds to the node as `.masterAddress`.
///
/// Concurrency: the machines, `routes` and `stopped` are touched only on `server.loop`; the
/// session's sink runs on the C client's thread and only enqueues onto the loop.
public final class BrokerClusterMember: @unchecked Sendable {
    let server: BrokerServer
    let logger: Logger
    var machine: BrokerRegistration
    /// Set for a slave without a configured `master` (and without failover: the election names
    /// the master then).
    var masterWatch: MasterNodeWatch?
    /// Set with `failover=true`: who of the brokers of this id accepts puts (docs/REPLICATION.md).
    /// The election behind the shared mapping of its decisions (`ElectionDriver`, also the
    /// simulator's), which also starts the registration at the first decision.
    var election: ElectionDriver?
    var session: ZooKeeperSession?
    var stopped: EventLoopPromise<Void>?
    /// The machine and its own tag of each request on the session (both machines number their
    /// requests from 1).
    var routes: [UInt64: (owner: Owner, tag: UInt64)] = [:]
    var nextTag: UInt64 = 1

    enum Owner {
        case registration
        case masterWatch
        case election
    }

    /// The topics the node names are registered at start (configured without wildcards, and
    /// every topic with data on disk); the node asks for the others when a put creates them.
    public init(server: BrokerServer, uri: String, logger: Logger) {
        self.server = server
        self.logger = logger
        let config = server.config
        let layout = MetaZooKeeperLayout(root: config.zooKeeper.root)
        let slave = config.replication.slave
        let failover = config.replication.failover
        machine = BrokerRegistration(settings: .init(
            brokerId: config.brokerId, uri: uri, configChecksum: server.node.configChecksum, topics: server.topicsToRegister,
            layout: layout, role: slave.map { .slave(slaveId: $0.slaveId) } ?? .master, masterNodeByElection: failover))
        if failover {
            election = ElectionDriver(settings: .electionSettings(config: config, uri: uri, layout: layout),
                                      logsTerm: server.node.electionLogsTerm)
        } else if let slave, slave.master == nil {
            masterWatch = MasterNodeWatch(settings: .init(brokerId: config.brokerId, layout: layout))
        }
    }

    /// The slave id this broker registers under while following.
    var followerId: Int { election?.settings.followerId ?? 1023 }

    /// Opens the ZooKeeper session and registers; returns at once (the session connects in the
    /// background and the registration follows; see the log).
    public func start(connect: String, sessionTimeoutMs: Int) throws {
        let loop = server.loop
        session = try ZooKeeperSession(connect: connect, sessionTimeoutMs: sessionTimeoutMs, logger: logger) { [weak self] event in
            guard let member = self else { return }
            loop.execute { member.coordinationEvent(event) }
        }
        server.onRegisterTopic = { [weak self] topic in self?.handle(.topicAdded(topic)) }
        server.onElectionEvent = { [weak self] event in self?.elect(event) }
        loop.execute {
            if self.election == nil { self.handle(.start) }
            self.watchMaster(.start)
            self.elect(.start)
        }
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

    /// A reply goes to the machine that asked; session changes and watches go to both.
    func coordinationEvent(_ event: CoordinationEvent) {
        switch event {
        case .reply(let global, let reply):
            guard let route = routes.removeValue(forKey: global) else { return }
            deliver(.reply(tag: route.tag, reply), to: route.owner)
        case .session, .watch:
            deliver(event, to: .registration)
            deliver(event, to: .masterWatch)
            deliver(event, to: .election)
        }
    }

    func deliver(_ event: CoordinationEvent, to owner: Owner) {
        switch owner {
        case .registration: handle(.coordination(event))
        case .masterWatch: watchMaster(.coordination(event))
        case .election: elect(.coordination(event))
        }
    }

    func submit(_ request: CoordinationRequest, tag: UInt64, for owner: Owner) {
        guard let session else {
            deliver(.reply(tag: tag, .failed(.sessionExpired)), to: owner)
            return
        }
        let global = nextTag
        nextTag += 1
        routes[global] = (owner, tag)
        session.submit(request, tag: global)
    }

    func handle(_ event: BrokerRegistration.Event) {
        let now = Clocks.monotonic()
        for action in machine.handle(event, now: now) {
            switch action {
            case .coordinate(let request, let tag): submit(request, tag: tag, for: .registration)
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

extension BrokerClusterMember {
    /// Drives the master watch of a slave; each address it reports goes to the node.
    func watchMaster(_ event: MasterNodeWatch.Event) {
        guard masterWatch != nil else { return }
        let now = Clocks.monotonic()
        for action in masterWatch!.handle(event, now: now) {
            switch action {
            case .coordinate(let request, let tag): submit(request, tag: tag, for: .masterWatch)
            case .masterAddress(let uri):
                if let uri {
                    logger.info("ZooKeeper names the master", metadata: ["master": "\(uri)"])
                } else {
                    logger.info("ZooKeeper names no master for this broker id; waiting for one",
                                metadata: ["path": "\(masterWatch!.settings.masterPath)"])
                }
                server.handle(.masterAddress(uri))
            case .scheduleTick(let at):
                let delay = max(0, at.nanoseconds - now.nanoseconds)
                server.loop.scheduleTask(in: .nanoseconds(delay)) { self.watchMaster(.tick) }
            }
        }
    }
}

extension BrokerClusterMember {
    /// Drives the election (failover): `ElectionDriver` maps its decisions onto the node's
    /// leadership and the registration's role.
    func elect(_ event: BrokerElection.Event) {
        guard election != nil else { return }
        let now = Clocks.monotonic()
        for step in election!.handle(event, now: now) {
            switch step {
            case .coordinate(let request, let tag): submit(request, tag: tag, for: .election)
            case .node(let leadership):
                switch leadership {
                case .leading(let term): logger.notice("leading: accepting puts", metadata: ["term": "\(term)"])
                case .fenced(let reason): logger.warning("not accepting puts", metadata: ["reason": "\(reason)"])
                case .following(let uri): logger.notice("following", metadata: ["master": "\(uri)"])
                }
                server.handle(.leadership(leadership))
            case .register(let role, let startRegistration):
                handle(.roleChanged(role))
                if startRegistration { handle(.start) }
            case .scheduleTick(let at):
                let delay = max(0, at.nanoseconds - now.nanoseconds)
                server.loop.scheduleTask(in: .nanoseconds(delay)) { self.elect(.tick) }
            case .inSyncPublished(let ids): server.handle(.inSyncPublished(ids))
            case .notice(let text):
                logger.info("\(text)")
            }
        }
    }
}
