/// A broker's registration in ZooKeeper (reference §3.1, §3.2) as a pure machine: the znodes that
/// make producers and consumers find it, created in the original's order, re-created after a
/// session expiry, removed on a clean stop.
///
/// Registration order (§3.2): `ids/<id>/master` (ephemeral; its persistent parent `ids/<id>` is
/// created on the way), the data of `ids/<id>`, `master_config_checksum`, then for each topic the
/// deprecated `topics/<topic>/<id>-m`, `topics-pub/…` (when the topic accepts publishing) and
/// `topics-sub/…` (when it accepts subscriptions).
///
/// An ephemeral node that already exists with our data is a leftover of an earlier session of this
/// broker (a restart within the session timeout): it is deleted and created again, so that it
/// belongs to this session and does not vanish when the old session expires. One with other data is
/// another broker using our id: reported as `.conflict` and tried again after `retryDelayMs`.
///
/// With failover (`masterNodeByElection`) several brokers share the id, and every one that leads
/// registers the same master-role nodes (`master_config_checksum`, the topics' `<id>-m`) with the
/// same data, so the data no longer tells whose a node is. The rule then is that **a broker removes
/// only ephemeral nodes its current session created** (`owned`): a role change or a stop deletes
/// only those, and a master-role node found in place that this session did not create is left
/// alone — it is a deposed leader's that its registration still holds, or an earlier session's of
/// our own — and created again once it is gone (its owner steps down and deletes it, or its
/// session ends). So a successor's nodes are never deleted or replaced by a broker that led
/// before it, and a leader ends up owning all of its nodes. After a session expiry a master waits
/// for the election to lead again (`.roleChanged(.master)`) before it registers: the new session
/// may belong to a broker that has been deposed meanwhile.
public struct BrokerRegistration: Sendable {
    public struct Topic: Equatable, Hashable, Sendable {
        public var name: String
        public var numPartitions: Int
        public var acceptPublish: Bool
        public var acceptSubscribe: Bool

        public init(name: String, numPartitions: Int, acceptPublish: Bool = true, acceptSubscribe: Bool = true) {
            self.name = name
            self.numPartitions = numPartitions
            self.acceptPublish = acceptPublish
            self.acceptSubscribe = acceptSubscribe
        }
    }

    public struct Settings: Equatable, Sendable {
        public var brokerId: Int
        /// `meta://host:port` (§1.7).
        public var uri: String
        /// CRC32 of the broker's server.ini (§3.1 `master_config_checksum`).
        public var configChecksum: Int64
        public var topics: [Topic]
        public var layout: MetaZooKeeperLayout
        /// Wait before trying a failed step again (connection loss, conflict).
        public var retryDelayMs: Int64
        /// A master, or a slave of the master with the same broker id (§6.1).
        public var role: Role
        /// The master node `ids/<id>/master` is left to `BrokerElection` (automatic failover):
        /// registration must not delete and re-create it, or followers would read that as the
        /// master leaving.
        public var masterNodeByElection: Bool

        public init(brokerId: Int, uri: String, configChecksum: Int64, topics: [Topic],
                    layout: MetaZooKeeperLayout = MetaZooKeeperLayout(), retryDelayMs: Int64 = 1000,
                    role: Role = .master, masterNodeByElection: Bool = false) {
            self.brokerId = brokerId
            self.uri = uri
            self.configChecksum = configChecksum
            self.topics = topics
            self.layout = layout
            self.retryDelayMs = retryDelayMs
            self.role = role
            self.masterNodeByElection = masterNodeByElection
        }
    }

    /// How a broker registers (§3.1, §6.1).
    public enum Role: Equatable, Sendable {
        /// `ids/<id>/master`, the data of `ids/<id>`, `master_config_checksum`, topics as `<id>-m`.
        case master
        /// `ids/<id>/slave<slaveId>` and topics as `<id>-s<slaveId>` (pub, sub and the deprecated
        /// node, as the original's slave): producers ignore it, consumers read it when the master
        /// of the id is absent.
        case slave(slaveId: Int)
    }

    public enum Event: Equatable, Sendable {
        case start
        case coordination(CoordinationEvent)
        /// A topic created by its first put (a wildcard topic, §3.2): register it too.
        case topicAdded(Topic)
        case tick
        /// Remove the registration (clean stop); `.stopped` follows.
        case stop
        /// The broker changed role (failover: a slave took over, a deposed master follows): the
        /// old role's ephemeral nodes are deleted, the new role's registered.
        case roleChanged(Role)
    }

    public enum Action: Equatable, Sendable {
        case coordinate(CoordinationRequest, tag: UInt64)
        /// Every node is in place (after start, after a re-registration, after a topic was added).
        case registered
        /// `path` holds `existing`, not ours: another broker runs with this broker id.
        case conflict(path: String, existing: String)
        case scheduleTick(at: Instant)
        case stopped
    }

    /// One znode the broker keeps.
    public struct Node: Equatable, Sendable {
        public var path: String
        public var data: [UInt8]
        /// Ephemeral nodes are created; the one persistent node (`ids/<id>`) gets its data set.
        public var isEphemeral: Bool
    }

    private enum Step: Equatable {
        case create
        case createAncestor([String])
        case readExisting
        case deleteStale
        case setData
    }

    private enum Phase: Equatable {
        case idle
        /// Working through `pending`; `tag` is the request in flight for `step` of `pending[0]`.
        case working(step: Step, tag: UInt64)
        /// Waiting to try `pending[0]` again.
        case retrying(until: Instant)
        case registered
        /// The session expired; everything is registered again on the next `.connected`.
        case sessionLost
        /// Failover, master role: the session came back after an expiry; the master's nodes are
        /// registered again only once the election leads again (`.roleChanged(.master)`), or the
        /// slave's once it follows.
        case awaitingElection
        /// Deletes in flight; `.stopped` when the last reply comes.
        case stopping(remaining: Set<UInt64>)
        case stopped
    }

    public private(set) var settings: Settings
    private var phase: Phase = .idle
    private var topics: [Topic]
    /// The nodes still to register, in order.
    private var pending: [Node] = []
    private var nextTag: UInt64 = 1
    private var wakeUp = Instant(nanoseconds: Int64.max)
    /// Registrations completed (first one and after each expiry), for logs and tests.
    public private(set) var registrations = 0
    /// The ephemeral nodes this session created (or may have: a create whose outcome is unknown),
    /// the only ones it may delete. Emptied when the session expires.
    public private(set) var owned: Set<String> = []
    /// Deletes of a role change in flight, by tag: a node is no longer ours once its delete is
    /// answered.
    private var roleChangeDeletes: [UInt64: String] = [:]
    /// Creates of the old role still in flight at a role change, by tag: one that succeeds made a
    /// node of ours that the new role may not register (then it is deleted).
    private var orphanedCreates: [UInt64: String] = [:]
    /// Nodes of ours a role change deleted without a known outcome (connection loss): deleted
    /// again at the next `.connected` (the client fails what was in flight when its connection
    /// drops, before it connects again), not at once (a disconnected client would answer a resend
    /// at once, again and again).
    private var strays: Set<String> = []

    public init(settings: Settings) {
        self.settings = settings
        self.topics = settings.topics
    }

    /// Every node of a full registration, in §3.2's order.
    public var nodes: [Node] {
        let layout = settings.layout
        let id = settings.brokerId
        let uri = Array(settings.uri.utf8)
        var nodes: [Node]
        switch settings.role {
        case .master:
            nodes = [
                Node(path: layout.masterPath(id), data: uri, isEphemeral: true),
                Node(path: layout.brokerPath(id), data: uri, isEphemeral: false),
                Node(path: layout.masterConfigChecksumPath(id), data: Array("\(settings.configChecksum)".utf8), isEphemeral: true),
            ]
            if settings.masterNodeByElection { nodes.removeFirst() }
        case .slave(let slaveId):
            // The persistent `ids/<id>` is the master's to write; a slave only makes sure it exists
            // (created on the way to its own node).
            nodes = [Node(path: layout.slavePath(id, slaveId: slaveId), data: uri, isEphemeral: true)]
        }
        for topic in topics { nodes += topicNodes(topic) }
        return nodes
    }

    /// The broker's child name under the topic nodes: `<id>-m`, or `<id>-s<slaveId>`.
    var topicChildName: String {
        switch settings.role {
        case .master: return MetaZooKeeperLayout.masterNodeName(settings.brokerId)
        case .slave(let slaveId): return MetaZooKeeperLayout.slaveNodeName(settings.brokerId, slaveId: slaveId)
        }
    }

    private func topicNodes(_ topic: Topic) -> [Node] {
        let layout = settings.layout
        let child = "/" + topicChildName
        let json = Array(TopicRegistration(numParts: topic.numPartitions, broker: topicChildName).json.utf8)
        var nodes = [Node(path: layout.topicPath(topic.name) + child, data: Array("\(topic.numPartitions)".utf8), isEphemeral: true)]
        if topic.acceptPublish { nodes.append(Node(path: layout.topicPubPath(topic.name) + child, data: json, isEphemeral: true)) }
        if topic.acceptSubscribe { nodes.append(Node(path: layout.topicSubPath(topic.name) + child, data: json, isEphemeral: true)) }
        return nodes
    }

    public var isRegistered: Bool { phase == .registered }

    /// Whether every leader of the id registers `node` with the same data (failover, master role),
    /// so that its data does not tell which broker's session made it.
    private func isShared(_ node: Node) -> Bool {
        settings.masterNodeByElection && settings.role == .master && node.isEphemeral
    }
}

extension BrokerRegistration {
    /// Feeds one event; returns what the driver must do, in order.
    public mutating func handle(_ event: Event, now: Instant) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .start:
            if phase == .idle { beginRegistration(&actions) }
        case .topicAdded(let topic):
            // A topic registered already is registered again only when its values changed (a
            // `reload` changed its section, §8.4): its nodes are ours, replaced below.
            if let index = topics.firstIndex(where: { $0.name == topic.name }) {
                guard topics[index] != topic else { break }
                topics[index] = topic
            } else {
                topics.append(topic)
            }
            switch phase {
            case .registered:
                pending = topicNodes(topic)
                advance(&actions)
            case .working, .retrying:
                pending += topicNodes(topic)
            case .idle, .sessionLost, .awaitingElection, .stopping, .stopped:
                break
            }
        case .coordination(.session(let state)):
            session(state, &actions)
        case .coordination(.reply(let tag, let reply)):
            self.reply(tag, reply, now, &actions)
        case .coordination(.watch):
            break
        case .tick:
            if case .retrying(let until) = phase, until <= now { advance(&actions) }
        case .stop:
            stop(&actions)
        case .roleChanged(let role):
            changeRole(to: role, &actions)
        }
        if case .retrying(let until) = phase, until != wakeUp {
            wakeUp = until
            actions.append(.scheduleTick(at: until))
        }
        return actions
    }

    /// Deletes what the old role registered (ephemeral nodes only: `ids/<id>` keeps the last
    /// leader's URI, and the master node belongs to the election), then registers as `role`.
    /// Only nodes this session created are deleted: with failover a deposed master's old-role
    /// paths may hold its successor's nodes by now (a node already gone is fine).
    private mutating func changeRole(to role: Role, _ actions: inout [Action]) {
        if phase == .awaitingElection {
            // The new session holds nothing yet: register in the role the election decided.
            settings.role = role
            beginRegistration(&actions)
            return
        }
        guard role != settings.role else { return }
        let registered: Bool
        switch phase {
        case .registered, .working, .retrying: registered = true
        case .idle, .sessionLost, .awaitingElection: registered = false
        case .stopping, .stopped: return
        }
        let old = nodes.filter(\.isEphemeral)
        if case .working(.create, let tag) = phase, let node = pending.first, node.isEphemeral {
            orphanedCreates[tag] = node.path
        }
        settings.role = role
        guard registered else { return }
        let kept = Set(nodes.map(\.path))
        for node in old.reversed() where !kept.contains(node.path) && owned.contains(node.path) {
            sendRoleChangeDelete(node.path, &actions)
        }
        beginRegistration(&actions)
    }

    private mutating func sendRoleChangeDelete(_ path: String, _ actions: inout [Action]) {
        let tag = nextTag
        nextTag += 1
        roleChangeDeletes[tag] = path
        actions.append(.coordinate(.delete(path: path), tag: tag))
    }

    /// The answer to a role change's delete: the node is no longer ours once it is gone; one whose
    /// outcome is unknown is deleted again once connected (`strays`).
    private mutating func roleChangeDeleted(_ path: String, _ reply: CoordinationReply) {
        switch reply {
        case .deleted, .failed(.noNode):
            owned.remove(path)
        case .failed(.sessionExpired):
            break
        default:
            strays.insert(path)
        }
    }

    /// Deletes again the strays the current role does not register itself (if it does, the
    /// registration takes the node over as ours).
    private mutating func deleteStrays(_ actions: inout [Action]) {
        let registeredPaths = Set(nodes.map(\.path))
        for path in strays.sorted() where owned.contains(path) && !registeredPaths.contains(path) {
            sendRoleChangeDelete(path, &actions)
        }
        strays = []
    }

    private mutating func beginRegistration(_ actions: inout [Action]) {
        pending = nodes
        advance(&actions)
    }

    private mutating func session(_ state: SessionState, _ actions: inout [Action]) {
        switch (state, phase) {
        case (.expired, .idle), (.expired, .stopping), (.expired, .stopped):
            if case .stopping = phase { finishStop(&actions) }
        case (.expired, _):
            sessionLost()
        case (.connected, .sessionLost):
            if settings.masterNodeByElection && settings.role == .master {
                phase = .awaitingElection
            } else {
                beginRegistration(&actions)
            }
        case (.connected, _):
            deleteStrays(&actions)
        default:
            break
        }
    }

    /// Sends the first step of the next pending node, or reports the registration complete.
    private mutating func advance(_ actions: inout [Action]) {
        guard let node = pending.first else {
            phase = .registered
            registrations += 1
            actions.append(.registered)
            return
        }
        send(node.isEphemeral ? .create : .setData, node, &actions)
    }

    private mutating func send(_ step: Step, _ node: Node, _ actions: inout [Action]) {
        let tag = nextTag
        nextTag += 1
        phase = .working(step: step, tag: tag)
        let request: CoordinationRequest
        switch step {
        case .create: request = .create(path: node.path, data: node.data, mode: node.isEphemeral ? .ephemeral : .persistent)
        // Ancestors get no data, as the original's (§3.1); `ids/<id>` gets its data set next.
        case .createAncestor(let paths): request = .create(path: paths[0], data: nil, mode: .persistent)
        case .readExisting: request = .getData(path: node.path, watch: false)
        case .deleteStale: request = .delete(path: node.path)
        case .setData: request = .setData(path: node.path, data: node.data)
        }
        actions.append(.coordinate(request, tag: tag))
    }

    private mutating func reply(_ tag: UInt64, _ reply: CoordinationReply, _ now: Instant, _ actions: inout [Action]) {
        if let path = roleChangeDeletes.removeValue(forKey: tag) {
            roleChangeDeleted(path, reply)
            return
        }
        if let path = orphanedCreates.removeValue(forKey: tag) {
            // Only a create that succeeded is known to be ours (a `nodeExists` is someone else's).
            if case .created = reply {
                owned.insert(path)
                if !nodes.contains(where: { $0.path == path }) { sendRoleChangeDelete(path, &actions) }
            }
            return
        }
        if case .stopping(var remaining) = phase {
            remaining.remove(tag)
            phase = .stopping(remaining: remaining)
            if remaining.isEmpty { finishStop(&actions) }
            return
        }
        guard case .working(let step, let current) = phase, current == tag, let node = pending.first else { return }
        switch (step, reply) {
        case (.create, .created), (.setData, .dataSet):
            if step == .create && node.isEphemeral { owned.insert(node.path) }
            pending.removeFirst()
            advance(&actions)
        case (.create, .failed(.noNode)), (.setData, .failed(.noNode)):
            send(.createAncestor(MetaZooKeeperLayout.ancestors(of: node.path)
                    + (node.isEphemeral ? [] : [node.path])), node, &actions)
        case (.createAncestor(let paths), .created), (.createAncestor(let paths), .failed(.nodeExists)):
            if paths.count > 1 {
                send(.createAncestor(Array(paths.dropFirst())), node, &actions)
            } else {
                send(node.isEphemeral ? .create : .setData, node, &actions)
            }
        case (.create, .failed(.nodeExists)):
            send(.readExisting, node, &actions)
        case (.readExisting, .data(let existing)):
            if isShared(node) && !owned.contains(node.path) {
                // Failover: another broker's session may hold it (a deposed leader not yet
                // stepped down), whatever its data; wait for it to go rather than delete it.
                retry(now)
            } else if existing == node.data || owned.contains(node.path) {
                // A node of an earlier session with our data, or one this session created whose
                // data changed (a reloaded topic's values): replaced.
                send(.deleteStale, node, &actions)
            } else {
                actions.append(.conflict(path: node.path, existing: String(decoding: existing ?? [], as: UTF8.self)))
                retry(now)
            }
        case (.readExisting, .failed(.noNode)), (.deleteStale, .deleted), (.deleteStale, .failed(.noNode)):
            owned.remove(node.path)
            send(.create, node, &actions)
        case (_, .failed(.sessionExpired)):
            sessionLost()
        case (.create, _):
            // Unknown outcome (connection loss, timeout): the node may be ours.
            if node.isEphemeral { owned.insert(node.path) }
            retry(now)
        default:
            retry(now)
        }
    }

    /// The session's ephemeral nodes are gone with it.
    private mutating func sessionLost() {
        phase = .sessionLost
        pending = []
        owned = []
        roleChangeDeletes = [:]
        orphanedCreates = [:]
        strays = []
    }

    private mutating func retry(_ now: Instant) {
        phase = .retrying(until: now.adding(milliseconds: settings.retryDelayMs))
    }

    /// Deletes the ephemeral nodes in reverse order of registration, then the broker's persistent node.
    private mutating func stop(_ actions: inout [Action]) {
        switch phase {
        case .stopping, .stopped: return
        case .idle, .sessionLost, .awaitingElection:
            finishStop(&actions)
            return
        case .working, .retrying, .registered:
            break
        }
        var remaining = Set<UInt64>()
        // The persistent `ids/<id>` goes last, once its ephemeral children are gone (it stays if
        // a slave still registers under it: the delete then fails with .notEmpty, ignored). Only
        // the ephemeral nodes this session created: the others may be another broker's.
        let order = nodes.filter { $0.isEphemeral && owned.contains($0.path) }.reversed() + nodes.filter { !$0.isEphemeral }
        for node in order {
            let tag = nextTag
            nextTag += 1
            remaining.insert(tag)
            actions.append(.coordinate(.delete(path: node.path), tag: tag))
        }
        phase = .stopping(remaining: remaining)
    }

    private mutating func finishStop(_ actions: inout [Action]) {
        phase = .stopped
        pending = []
        actions.append(.stopped)
    }
}
