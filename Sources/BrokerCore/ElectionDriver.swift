import ProtocolCore
import StoreCore

/// The one mapping of a `BrokerElection`'s decisions onto a broker (failover, docs/REPLICATION.md),
/// shared by the runtime (`BrokerClusterMember`) and the simulator (`SimBroker`), so both drive the
/// node and the registration by the same rules:
/// - `.acceptPuts(term)` → node `.leadership(.leading(term:))`, registration `.roleChanged(.master)`;
/// - `.stopAcceptingPuts(reason)` → node `.leadership(.fenced(reason:))`;
/// - `.follow(uri)` → node `.leadership(.following(masterURI:))`, registration
///   `.roleChanged(.slave(slaveId: followerId))`;
/// - the registration starts at the election's first decision (a broker must not register as
///   master before it leads); until then the node is fed `waitingForElection`.
/// The node's `.publishInSync(ids)`, `.promote(force:)` and `.logsConsistent(term:)` go back in as
/// the election's events.
/// Pure: the driver carries `.coordinate` to its session and runs `.scheduleTick`.
public struct ElectionDriver: Sendable {
    public enum Step: Equatable, Sendable {
        case coordinate(CoordinationRequest, tag: UInt64)
        /// Feed the node this event.
        case node(Leadership)
        /// Tell the registration `.roleChanged(role)`, then `.start` when `startRegistration`.
        case register(BrokerRegistration.Role, startRegistration: Bool)
        case scheduleTick(at: Instant)
        /// Feed the node `.inSyncPublished(ids)`.
        case inSyncPublished([Int])
        /// For the log: what the election decided or noticed.
        case notice(String)
    }

    public typealias Leadership = BrokerNode.Leadership

    public private(set) var election: BrokerElection
    /// Whether the registration has been started (at the first decision).
    public private(set) var registrationStarted = false

    /// What the node is told before the election's first decision.
    public static let waitingForElection = Leadership.fenced(reason: "waiting for the election in ZooKeeper")

    /// `logsTerm`: the node's `electionLogsTerm` when the election starts.
    public init(settings: BrokerElection.Settings, logsTerm: Int64?) {
        election = BrokerElection(settings: settings, logsTerm: logsTerm)
    }

    public var settings: BrokerElection.Settings { election.settings }
    /// The slave id this broker registers under while following.
    public var followerId: Int { election.settings.followerId ?? 1023 }

    public mutating func handle(_ event: BrokerElection.Event, now: Instant) -> [Step] {
        var steps: [Step] = []
        for action in election.handle(event, now: now) {
            switch action {
            case .coordinate(let request, let tag): steps.append(.coordinate(request, tag: tag))
            case .acceptPuts(let term):
                steps.append(.notice("leading: accepting puts in term \(term)"))
                steps.append(.node(.leading(term: term)))
                steps.append(register(as: .master))
            case .stopAcceptingPuts(let reason):
                steps.append(.notice("not accepting puts: \(reason)"))
                steps.append(.node(.fenced(reason: "\(reason)")))
            case .follow(let masterURI):
                steps.append(.notice("following \(masterURI)"))
                steps.append(.node(.following(masterURI: masterURI)))
                steps.append(register(as: .slave(slaveId: followerId)))
            case .scheduleTick(let at): steps.append(.scheduleTick(at: at))
            case .inSyncPublished(let ids): steps.append(.inSyncPublished(ids))
            case .notice(let text): steps.append(.notice("election: \(text)"))
            }
        }
        return steps
    }

    mutating func register(as role: BrokerRegistration.Role) -> Step {
        defer { registrationStarted = true }
        return .register(role, startRegistration: !registrationStarted)
    }

    /// The node's request for the election, if it is one (`.publishInSync`, `.promote`,
    /// `.logsConsistent`).
    public static func electionEvent(for action: BrokerNode.Action) -> BrokerElection.Event? {
        switch action {
        case .publishInSync(let ids): return .publishInSync(ids)
        case .promote(let force): return .promote(force: force)
        case .logsConsistent(let term): return .logsConsistent(term: term)
        default: return nil
        }
    }
}

extension BrokerElection.Settings {
    /// The election settings of a broker's configuration (`[replication]`), the same for the
    /// runtime and the simulator: a configured slave takes part under its slave id, a master
    /// under `rejoinSlaveId` once deposed; synchronous replication with `minInSyncReplicas` ≥ 2
    /// lets only a broker holding every acknowledged put take over (rule 10).
    public static func electionSettings(config: ServerConfig, uri: String, layout: MetaZooKeeperLayout) -> Self {
        let replication = config.replication
        var settings = Self(brokerId: config.brokerId, uri: uri,
                            role: replication.slave.map { .slave(slaveId: $0.slaveId) } ?? .master,
                            rejoinSlaveId: replication.rejoinSlaveId, layout: layout)
        settings.cleanTakeoverOnly = replication.synchronous && replication.minInSyncReplicas >= 2
        settings.minInSyncSlaves = max(0, replication.minInSyncReplicas - 1)
        return settings
    }
}
