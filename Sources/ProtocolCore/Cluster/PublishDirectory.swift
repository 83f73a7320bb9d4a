/// Where a producer may send each topic (reference §3.3, §3.5) as a pure machine: it watches
/// `topics-pub/<topic>`, reads each master's `numParts` and its `ids/<id>/master` URI, and reports
/// the topic's partitions sorted by (broker, partition) whenever they change — so a broker that
/// joins or leaves is noticed without a restart. Slaves are never used for publishing (§3.3).
public struct PublishDirectory: Sendable {
    /// A partition a producer can send to, and the broker that serves it.
    public struct Target: Equatable, Hashable, Sendable, Comparable {
        public var partition: BrokerPartition
        /// `meta://host:port` of the broker's master.
        public var uri: String

        public init(partition: BrokerPartition, uri: String) {
            self.partition = partition
            self.uri = uri
        }

        public static func < (a: Target, b: Target) -> Bool { a.partition < b.partition }
    }

    public enum Event: Equatable, Sendable {
        /// Start following `topic` (§3.3 `publish(topic)`); a second call for it does nothing.
        case publish(String)
        case coordination(CoordinationEvent)
        case tick
    }

    public enum Action: Equatable, Sendable {
        case coordinate(CoordinationRequest, tag: UInt64)
        /// The topic's partitions now (possibly empty: no broker accepts it right now).
        case partitionsChanged(topic: String, [Target])
        case scheduleTick(at: Instant)
    }

    private enum Read: Equatable {
        case children
        case createPath([String])
        case registration(brokerId: Int)
        case master(brokerId: Int)
    }

    private struct Refresh: Equatable {
        var outstanding = 0
        var failed = false
        var registrations: [Int: TopicRegistration?] = [:]
        var masters: [Int: String?] = [:]
    }

    private struct TopicState: Equatable {
        var refresh: Refresh?
        /// A change was seen while a refresh ran: refresh again when it ends.
        var dirty = false
        var retryAt: Instant?
        var published: [Target]?
    }

    public let layout: MetaZooKeeperLayout
    public let retryDelayMs: Int64
    private var topics: [String: TopicState] = [:]
    private var inFlight: [UInt64: (topic: String, read: Read)] = [:]
    private var nextTag: UInt64 = 1
    private var sessionUp = true

    public init(layout: MetaZooKeeperLayout = MetaZooKeeperLayout(), retryDelayMs: Int64 = 1000) {
        self.layout = layout
        self.retryDelayMs = retryDelayMs
    }

    /// The last partitions reported for `topic`.
    public func targets(of topic: String) -> [Target]? { topics[topic]?.published }

    public mutating func handle(_ event: Event, now: Instant) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .publish(let topic):
            if topics[topic] == nil {
                topics[topic] = TopicState()
                refresh(topic, &actions)
            }
        case .coordination(.reply(let tag, let reply)):
            if let (topic, read) = inFlight.removeValue(forKey: tag) { receive(topic, read, reply, now, &actions) }
        case .coordination(.watch(let watch)):
            for topic in affected(by: watch.path) { refresh(topic, &actions) }
        case .coordination(.session(.expired)):
            sessionUp = false
            inFlight.removeAll()
            for topic in topics.keys { topics[topic]?.refresh = nil }
        case .coordination(.session(.connected)):
            if !sessionUp {
                sessionUp = true
                for topic in topics.keys.sorted() { refresh(topic, &actions) }
            }
        case .coordination(.session(.connecting)):
            break
        case .tick:
            for topic in topics.keys.sorted() {
                if let at = topics[topic]?.retryAt, at <= now {
                    topics[topic]?.retryAt = nil
                    refresh(topic, &actions)
                }
            }
        }
        return actions
    }

    /// Topics a watch on `path` concerns: the topic of a `topics-pub` path, every topic for a
    /// broker's `master` node (its URI serves them all).
    private func affected(by path: String) -> [String] {
        let prefix = layout.topicsPubPath + "/"
        if path.hasPrefix(prefix) {
            let topic = String(path.dropFirst(prefix.count).prefix(while: { $0 != "/" }))
            return topics[topic] == nil ? [] : [topic]
        }
        return path.hasPrefix(layout.brokerIdsPath + "/") ? topics.keys.sorted() : []
    }

    private mutating func refresh(_ topic: String, _ actions: inout [Action]) {
        guard sessionUp, var state = topics[topic] else { return }
        if state.refresh != nil {
            state.dirty = true
            topics[topic] = state
            return
        }
        state.refresh = Refresh()
        state.dirty = false
        topics[topic] = state
        request(.getChildren(path: layout.topicPubPath(topic), watch: true), topic, .children, &actions)
    }

    private mutating func request(_ request: CoordinationRequest, _ topic: String, _ read: Read, _ actions: inout [Action]) {
        let tag = nextTag
        nextTag += 1
        inFlight[tag] = (topic, read)
        topics[topic]?.refresh?.outstanding += 1
        actions.append(.coordinate(request, tag: tag))
    }

    private mutating func receive(_ topic: String, _ read: Read, _ reply: CoordinationReply, _ now: Instant,
                                  _ actions: inout [Action]) {
        guard topics[topic]?.refresh != nil else { return }
        topics[topic]?.refresh?.outstanding -= 1
        switch (read, reply) {
        case (.children, .children(let names)):
            for name in names.sorted() {
                guard let node = BrokerNodeName(name), node.isMaster else { continue }
                topics[topic]?.refresh?.registrations[node.brokerId] = .some(nil)
                topics[topic]?.refresh?.masters[node.brokerId] = .some(nil)
                request(.getData(path: layout.topicPubPath(topic) + "/" + name, watch: false), topic,
                        .registration(brokerId: node.brokerId), &actions)
                request(.getData(path: layout.masterPath(node.brokerId), watch: true), topic,
                        .master(brokerId: node.brokerId), &actions)
            }
        case (.children, .failed(.noNode)):
            // §3.3: the producer makes sure the topic's node exists, so its child watch can be set.
            let path = layout.topicPubPath(topic)
            request(.create(path: MetaZooKeeperLayout.ancestors(of: path).first ?? path, data: nil, mode: .persistent),
                    topic, .createPath(Array((MetaZooKeeperLayout.ancestors(of: path) + [path]).dropFirst())), &actions)
        case (.createPath(let rest), .created), (.createPath(let rest), .failed(.nodeExists)):
            if let next = rest.first {
                request(.create(path: next, data: nil, mode: .persistent), topic, .createPath(Array(rest.dropFirst())), &actions)
            } else {
                request(.getChildren(path: layout.topicPubPath(topic), watch: true), topic, .children, &actions)
            }
        case (.registration(let broker), .data(let bytes)):
            topics[topic]?.refresh?.registrations[broker] = TopicRegistration(json: String(decoding: bytes ?? [], as: UTF8.self))
        case (.master(let broker), .data(let bytes)):
            topics[topic]?.refresh?.masters[broker] = String(decoding: bytes ?? [], as: UTF8.self)
        case (.registration, .failed(.noNode)), (.master, .failed(.noNode)):
            break  // gone meanwhile; its watch (or the child watch) brings a new refresh
        default:
            topics[topic]?.refresh?.failed = true
        }
        if topics[topic]?.refresh?.outstanding == 0 { finish(topic, now, &actions) }
    }

    private mutating func finish(_ topic: String, _ now: Instant, _ actions: inout [Action]) {
        guard var state = topics[topic], let done = state.refresh else { return }
        state.refresh = nil
        if done.failed {
            let at = now.adding(milliseconds: retryDelayMs)
            state.retryAt = at
            topics[topic] = state
            actions.append(.scheduleTick(at: at))
            return
        }
        var targets: [Target] = []
        for broker in done.registrations.keys.sorted() {
            guard let registration = done.registrations[broker] ?? nil,
                  let uri = done.masters[broker] ?? nil, !uri.isEmpty else { continue }
            for partition in 0..<registration.numParts {
                targets.append(Target(partition: BrokerPartition(brokerId: broker, partition: partition), uri: uri))
            }
        }
        if state.published != targets {
            state.published = targets
            actions.append(.partitionsChanged(topic: topic, targets))
        }
        let again = state.dirty
        topics[topic] = state
        if again { refresh(topic, &actions) }
    }
}
