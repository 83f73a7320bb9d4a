import ProtocolCore

/// An in-memory ZooKeeper 3.8 server with its client sessions, for the simulator (DESIGN.md §6;
/// the znodes MetaQ uses are in reference §3.1). It holds the znode tree, ephemeral nodes and
/// one-shot watches, and models connection loss and session expiry. It has no clock and no
/// randomness: the simulator passes time in (`advance(to:)`, `disconnect(_:now:)`) and decides
/// every fault.
///
/// Timing model, chosen so that the simulator's event queue stays the only scheduler:
/// - A request takes effect at the server the moment it is submitted. Its reply reaches the
///   session's sink later, through the `schedule` closure given at init, after `latencyNs`.
/// - A session hears everything (replies, watch events, session changes) through one FIFO: each
///   scheduled delivery hands over the session's queue up to the item it was scheduled for. So a
///   session hears things in the order the server produced them whatever delays the simulator
///   applies (it may add jitter to `delayNs`; a later delivery never overtakes an earlier one).
/// - A watch fired by a request is heard before that request's reply: ZooKeeper sends the
///   notification before the response.
/// - `getChildren` answers names in creation order (oldest first), not sorted: real ZooKeeper
///   answers in hash order, and callers must sort before deciding anything.
/// - The tree starts with `/` alone (no `/zookeeper` system node: MetaQ never lists `/`).
///
/// Wiring into `Simulation`: give it a closure that schedules an event carrying `deliver` after
/// `delayNs`, and run `deliver()` when that event is popped; call `advance(to:)` as virtual time
/// passes (at least whenever a disconnected session's timeout may have run out).
public final class SimZooKeeper {
    /// The delay of every delivery to a session, in nanoseconds. It may change during a run: the
    /// per-session order holds regardless.
    public var latencyNs: Int64

    let schedule: (Int64, @escaping () -> Void) -> Void
    var nodes: [String: ZNode] = ["/": ZNode(data: [], ephemeralOwner: nil)]
    /// Armed watches: the live sessions (by id) waiting on each path and kind.
    var watches: [WatchKey: Set<Int64>] = [:]
    /// Every client handle ever opened, by slot; a handle keeps its slot when its session is renewed.
    var clients: [Client] = []
    /// The sessions alive at the server: session id → slot.
    var liveSessions: [Int64: Int] = [:]
    private var nextSessionId: Int64 = 1
    private var nextSeq: UInt64 = 0

    /// A server whose deliveries go through `schedule`: the simulator runs `deliver` once
    /// `delayNs` of virtual time have passed. `schedule` must not run `deliver` synchronously.
    public init(latencyNs: Int64 = 1_000_000,
                schedule: @escaping (_ delayNs: Int64, _ deliver: @escaping () -> Void) -> Void) {
        self.latencyNs = latencyNs
        self.schedule = schedule
    }

    /// Opens a session whose events go to `sink` (the simulator routes them to the owner
    /// machine). The first event is `.session(.connected)`; requests may be submitted at once.
    public func openSession(timeoutMs: Int64, sink: @escaping (CoordinationEvent) -> Void) -> SimZKSession {
        let slot = clients.count
        clients.append(Client(id: newSessionId(slot), timeoutMs: timeoutMs, sink: sink))
        enqueue(.session(.connected), to: slot)
        return SimZKSession(zooKeeper: self, slot: slot)
    }

    // MARK: Inspection for checkers and traces

    /// The child names of `path`, sorted (empty when the node does not exist).
    public func children(of path: String) -> [String] { nodes[path]?.children.sorted() ?? [] }

    /// The data of `path`; nil when the node does not exist or has no data (see `hasNullData(at:)`).
    public func data(at path: String) -> [UInt8]? { nodes[path]?.data }

    /// Whether `path` exists and was created without data (null, not empty).
    public func hasNullData(at path: String) -> Bool { nodes[path].map { $0.data == nil } ?? false }

    /// The id of the session owning the ephemeral node `path`; nil for a persistent or missing node.
    public func ephemeralOwner(of path: String) -> Int64? { nodes[path]?.ephemeralOwner }

    /// Every node's path, `/` included, sorted.
    public var paths: [String] { nodes.keys.sorted() }

    // MARK: Requests and deliveries

    func submit(_ request: CoordinationRequest, tag: UInt64, slot: Int) {
        let client = clients[slot]
        switch client.status {
        case .closed:
            return
        case .disconnected, .expiredWhileDisconnected:
            enqueue(.reply(tag: tag, .failed(.connectionLoss)), to: slot)
        case .expired:
            enqueue(.reply(tag: tag, .failed(.sessionExpired)), to: slot)
        case .connected:
            let (reply, armed) = apply(request, owner: client.id)
            enqueue(.reply(tag: tag, reply), to: slot, arming: armed)
        }
    }

    /// Queues `event` for the client in `slot`; `arming` is the watch a reply's request armed.
    func enqueue(_ event: CoordinationEvent, to slot: Int, arming watch: WatchKey? = nil) {
        let seq = nextSeq
        nextSeq += 1
        clients[slot].outbox.append(Outgoing(seq: seq, event: event, arming: watch))
        schedule(latencyNs) { [self] in deliver(slot, through: seq) }
    }

    private func deliver(_ slot: Int, through seq: UInt64) {
        let client = clients[slot]
        // The sink may call back in (submit, close, faults): take each item off before handing it over.
        while let next = client.outbox.first, next.seq <= seq {
            client.outbox.removeFirst()
            switch next.event {
            case .reply:
                if let key = next.arming { client.confirmed.insert(key) }
            case .watch(let event):
                client.confirmed.subtract(event.watchKeys)
            case .session(.expired):
                // The owner may act on `.expired` at once: its requests go to the new session.
                renew(slot)
            case .session:
                break
            }
            client.sink(next.event)
        }
    }

    /// The handle opens a new session after hearing `.expired`, as the runtime's does.
    private func renew(_ slot: Int) {
        let client = clients[slot]
        guard client.status == .expired else { return }
        client.id = newSessionId(slot)
        client.status = .connected
        enqueue(.session(.connected), to: slot)
    }

    private func newSessionId(_ slot: Int) -> Int64 {
        let id = nextSessionId
        nextSessionId += 1
        liveSessions[id] = slot
        return id
    }
}

extension SimZooKeeper {
    /// One znode.
    struct ZNode {
        /// Nil: created without data (ZooKeeper's null), which a read tells apart from empty data.
        var data: [UInt8]?
        /// The owning session of an ephemeral node.
        var ephemeralOwner: Int64?
        /// The data version (`Stat.version`): 0 at creation, one more at each set.
        var version: Int32 = 0
        /// Child names in creation order (what `getChildren` answers).
        var children: [String] = []
        /// Children ever created here: ZooKeeper's cversion, which numbers sequential children and
        /// never goes back when children are deleted.
        var childrenCreated = 0
    }

    /// A watch as the server keys it: one per session, path and kind.
    struct WatchKey: Hashable {
        enum Kind: Hashable { case data, children }
        var path: String
        var kind: Kind
    }

    /// Something on its way to a client.
    struct Outgoing {
        var seq: UInt64
        var event: CoordinationEvent
        /// For a reply: the watch its request armed, which the client knows of once it hears the reply.
        var arming: WatchKey?
    }

    /// The client side of a handle.
    final class Client {
        var id: Int64
        let timeoutMs: Int64
        let sink: (CoordinationEvent) -> Void
        var status: SimZKSession.Status = .connected
        var outbox: [Outgoing] = []
        /// Watch events fired while disconnected, told after the reconnection.
        var held: [WatchEvent] = []
        /// The watches the client knows are armed (it heard the reply that armed them and not yet
        /// their event): what a real client re-arms when it reconnects.
        var confirmed: Set<WatchKey> = []

        init(id: Int64, timeoutMs: Int64, sink: @escaping (CoordinationEvent) -> Void) {
            self.id = id
            self.timeoutMs = timeoutMs
            self.sink = sink
        }
    }
}

extension WatchEvent {
    /// The watches this event fires: a deletion fires the node's data and child watches at once,
    /// and a session watching both ways hears one `.deleted` (one notification per connection).
    var watchKeys: [SimZooKeeper.WatchKey] {
        switch self {
        case .created(let path), .dataChanged(let path): return [.init(path: path, kind: .data)]
        case .childrenChanged(let path): return [.init(path: path, kind: .children)]
        case .deleted(let path): return [.init(path: path, kind: .data), .init(path: path, kind: .children)]
        }
    }
}
