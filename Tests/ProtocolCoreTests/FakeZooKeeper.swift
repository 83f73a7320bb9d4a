@testable import ProtocolCore

/// A tiny in-memory ZooKeeper for machine tests: nodes with data and ephemeral owners, one-shot
/// data and child watches, session expiry. Children are listed in reverse order so callers that
/// forget to sort are caught.
struct FakeZooKeeper {
    struct Node: Equatable {
        /// Nil: created without data (ZooKeeper's null).
        var data: [UInt8]?
        /// The session that owns an ephemeral node; nil for persistent nodes.
        var ephemeralOwner: Int?
        /// The data version: 0 at creation, one more at each set.
        var version: Int32 = 0
    }

    private(set) var nodes: [String: Node] = [:]
    private var dataWatches: [String: Set<Int>] = [:]
    private var childWatches: [String: Set<Int>] = [:]
    /// One-shot injected failures: the first request matching fails with the error instead.
    var failures: [(matches: (CoordinationRequest) -> Bool, error: CoordinationError)] = []
    /// One-shot lost replies: the first request matching takes effect, but its caller hears
    /// `.connectionLoss` (what a client sees when the connection drops after the server acted).
    var lostReplies: [(CoordinationRequest) -> Bool] = []

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    func children(of path: String) -> [String] {
        nodes.keys.filter { Self.parent(of: $0) == path }.map { String($0.split(separator: "/").last!) }.sorted()
    }

    /// The node's data as text ("" for a node without data), nil when it does not exist.
    func text(_ path: String) -> String? { nodes[path].map { String(decoding: $0.data ?? [], as: UTF8.self) } }

    /// Puts a node (ancestors persistent) as a test fixture, firing watches like a real change.
    @discardableResult
    mutating func put(_ path: String, _ data: String, owner: Int? = nil) -> [(session: Int, WatchEvent)] {
        var fired: [(session: Int, WatchEvent)] = []
        for ancestor in MetaZooKeeperLayout.ancestors(of: path) where nodes[ancestor] == nil {
            fired += apply(.create(path: ancestor, data: nil, mode: .persistent), session: 0).watches
        }
        if nodes[path] != nil {
            fired += apply(.setData(path: path, data: Array(data.utf8)), session: 0).watches
        } else {
            fired += created(path, Node(data: Array(data.utf8), ephemeralOwner: owner))
        }
        return fired
    }

    @discardableResult
    mutating func remove(_ path: String) -> [(session: Int, WatchEvent)] {
        apply(.delete(path: path), session: 0).watches
    }

    /// Ends `session`: its ephemeral nodes go (firing watches), its watches are forgotten.
    mutating func expire(_ session: Int) -> [(session: Int, WatchEvent)] {
        for key in Array(dataWatches.keys) { dataWatches[key]?.remove(session) }
        for key in Array(childWatches.keys) { childWatches[key]?.remove(session) }
        var fired: [(session: Int, WatchEvent)] = []
        for (path, node) in nodes.sorted(by: { $0.key > $1.key }) where node.ephemeralOwner == session {
            fired += apply(.delete(path: path), session: 0).watches
        }
        return fired
    }

    mutating func apply(_ request: CoordinationRequest, session: Int)
        -> (reply: CoordinationReply, watches: [(session: Int, WatchEvent)]) {
        if let index = failures.firstIndex(where: { $0.matches(request) }) {
            return (.failed(failures.remove(at: index).error), [])
        }
        if let index = lostReplies.firstIndex(where: { $0(request) }) {
            lostReplies.remove(at: index)
            return (.failed(.connectionLoss), apply(request, session: session).watches)
        }
        switch request {
        case .create(let path, let data, let mode):
            guard nodes[path] == nil else { return (.failed(.nodeExists), []) }
            let parent = Self.parent(of: path)
            guard parent == "/" || nodes[parent] != nil else { return (.failed(.noNode), []) }
            return (.created(path: path), created(path, Node(data: data, ephemeralOwner: mode.isEphemeral ? session : nil)))
        case .delete(let path):
            guard nodes[path] != nil else { return (.failed(.noNode), []) }
            guard children(of: path).isEmpty else { return (.failed(.notEmpty), []) }
            nodes[path] = nil
            return (.deleted, fire(&dataWatches, path, .deleted(path: path)) + fire(&childWatches, path, .deleted(path: path))
                + fire(&childWatches, Self.parent(of: path), .childrenChanged(path: Self.parent(of: path))))
        case .setData(let path, let data):
            guard nodes[path] != nil else { return (.failed(.noNode), []) }
            nodes[path]!.data = data
            nodes[path]!.version += 1
            return (.dataSet, fire(&dataWatches, path, .dataChanged(path: path)))
        case .setDataAtVersion(let path, let data, let version):
            guard let node = nodes[path] else { return (.failed(.noNode), []) }
            guard node.version == version else { return (.failed(.badVersion), []) }
            nodes[path]!.data = data
            nodes[path]!.version += 1
            return (.dataSet, fire(&dataWatches, path, .dataChanged(path: path)))
        case .getData(let path, let watch):
            guard let node = nodes[path] else { return (.failed(.noNode), []) }
            if watch { dataWatches[path, default: []].insert(session) }
            return (.data(node.data), [])
        case .getVersionedData(let path, let watch):
            guard let node = nodes[path] else { return (.failed(.noNode), []) }
            if watch { dataWatches[path, default: []].insert(session) }
            return (.versionedData(node.data, version: node.version), [])
        case .getChildren(let path, let watch):
            guard nodes[path] != nil else { return (.failed(.noNode), []) }
            if watch { childWatches[path, default: []].insert(session) }
            return (.children(children(of: path).reversed()), [])
        case .exists(let path, let watch):
            if watch { dataWatches[path, default: []].insert(session) }
            return (.exists(nodes[path] != nil), [])
        }
    }

    private mutating func created(_ path: String, _ node: Node) -> [(session: Int, WatchEvent)] {
        nodes[path] = node
        let parent = Self.parent(of: path)
        return fire(&dataWatches, path, .created(path: path)) + fire(&childWatches, parent, .childrenChanged(path: parent))
    }

    private func fire(_ watches: inout [String: Set<Int>], _ path: String, _ event: WatchEvent) -> [(session: Int, WatchEvent)] {
        guard let sessions = watches.removeValue(forKey: path) else { return [] }
        return sessions.sorted().map { ($0, event) }
    }
}

/// Members of one group over one `FakeZooKeeper`, with a FIFO of events: a request is applied when
/// the member emits it, and its reply (and any watch it fires) is queued, as a real session orders them.
struct GroupHarness {
    var zk = FakeZooKeeper()
    var members: [GroupMember] = []
    /// The ZooKeeper session of each member (changes after an expiry).
    var sessions: [Int] = []
    /// Every action each member emitted, in order.
    var log: [[GroupMember.Action]] = []
    var now = Instant.zero
    private var queue: [(member: Int, event: GroupMember.Event)] = []
    private var nextSession = 1

    static let group = "g"
    var layout: MetaZooKeeperLayout { MetaZooKeeperLayout() }

    /// A cluster of `brokers` masters, each registering `partitions` partitions of `topic` for subscription.
    mutating func addBrokers(_ brokers: Int, partitions: Int, topic: String = "test") {
        for id in 0..<brokers {
            zk.put(layout.brokerPath(id), uri(id))
            deliver(zk.put(layout.masterPath(id), uri(id), owner: 1000 + id))
            deliver(zk.put(layout.topicSubPath(topic) + "/\(id)-m",
                           TopicRegistration(numParts: partitions, broker: "\(id)-m").json, owner: 1000 + id))
        }
    }

    func uri(_ broker: Int) -> String { "meta://host\(broker):8123" }

    @discardableResult
    mutating func addMember(_ id: String, topics: [String] = ["test"],
                            configure: (inout GroupMember.Settings) -> Void = { _ in }) -> Int {
        var settings = GroupMember.Settings(group: Self.group, consumerId: "\(Self.group)_\(id)", topics: topics)
        configure(&settings)
        members.append(GroupMember(settings: settings))
        sessions.append(nextSession)
        nextSession += 1
        log.append([])
        return members.count - 1
    }

    /// Queues `event` for member `i` (use `run` or `step` to deliver).
    mutating func enqueue(_ i: Int, _ event: GroupMember.Event) { queue.append((i, event)) }

    /// Delivers `event` to member `i` now and everything it causes.
    mutating func send(_ i: Int, _ event: GroupMember.Event) {
        enqueue(i, event)
        run()
    }

    /// Queues watch firings for the members whose session they belong to.
    mutating func deliver(_ watches: [(session: Int, WatchEvent)]) {
        for (session, watch) in watches {
            if let i = sessions.firstIndex(of: session) { queue.append((i, .coordination(.watch(watch)))) }
        }
    }

    var isQuiet: Bool { queue.isEmpty }

    /// Delivers one queued event; false when the queue is empty.
    @discardableResult
    mutating func step() -> Bool {
        guard !queue.isEmpty else { return false }
        let (i, event) = queue.removeFirst()
        let actions = members[i].handle(event, now: now)
        log[i] += actions
        for action in actions {
            guard case .coordinate(let request, let tag) = action else { continue }
            let (reply, watches) = zk.apply(request, session: sessions[i])
            queue.append((i, .coordination(.reply(tag: tag, reply))))
            deliver(watches)
        }
        return true
    }

    mutating func run() {
        var steps = 0
        while step() {
            steps += 1
            precondition(steps < 100_000, "the members do not settle")
        }
    }

    /// Moves time on by `ms`, ticks every member, and runs.
    mutating func advance(ms: Int64) {
        now = now.adding(milliseconds: ms)
        for i in members.indices { queue.append((i, .tick)) }
        run()
    }

    /// Runs, moving time on in `stepMs` steps until every member is settled.
    mutating func settle(stepMs: Int64 = 5000, maxSteps: Int = 50) {
        run()
        var steps = 0
        while !members.allSatisfy(\.isSettled) && steps < maxSteps {
            advance(ms: stepMs)
            steps += 1
        }
    }

    /// The requests member `i` emitted, in order.
    func requests(_ i: Int) -> [CoordinationRequest] {
        log[i].compactMap { if case .coordinate(let request, _) = $0 { return request } else { return nil } }
    }

    /// Ends member `i`'s session in the fake and tells the member; it gets a new session id.
    mutating func expire(_ i: Int) {
        deliver(zk.expire(sessions[i]))
        sessions[i] = nextSession
        nextSession += 1
        enqueue(i, .coordination(.session(.expired)))
    }
}
