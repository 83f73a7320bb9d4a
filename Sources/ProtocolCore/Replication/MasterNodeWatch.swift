/// Where a slave's master is, as ZooKeeper says it (issue 17, reference §6.1): the data of
/// `/meta/brokers/ids/<brokerId>/master`, read with a watch and read again on every change, as the
/// original's slave watches it. A pure machine: it returns `CoordinationRequest`s with tags and is
/// fed the replies, watches and session changes, like `BrokerRegistration`, so the runtime and the
/// simulator run the same code.
///
/// It reports `.masterAddress(uri)` whenever what it knows changes: the node's URI when it exists,
/// nil when it is absent (deleted, never created, or empty). A node that is absent is watched with
/// `exists`, since a read of a missing node sets no watch.
public struct MasterNodeWatch: Sendable {
    public struct Settings: Equatable, Sendable {
        public var brokerId: Int
        public var layout: MetaZooKeeperLayout
        /// Wait after a failed read (connection loss) before reading again.
        public var retryDelayMs: Int64

        public init(brokerId: Int, layout: MetaZooKeeperLayout = MetaZooKeeperLayout(), retryDelayMs: Int64 = 1000) {
            self.brokerId = brokerId
            self.layout = layout
            self.retryDelayMs = retryDelayMs
        }

        public var masterPath: String { layout.masterPath(brokerId) }
    }

    public enum Event: Equatable, Sendable {
        case start
        case coordination(CoordinationEvent)
        case tick
    }

    public enum Action: Equatable, Sendable {
        case coordinate(CoordinationRequest, tag: UInt64)
        /// The master's `meta://host:port`, or nil while ZooKeeper names none. Said only when it
        /// differs from what was said last (the first time always).
        case masterAddress(String?)
        case scheduleTick(at: Instant)
    }

    private enum Phase: Equatable, Sendable {
        case idle
        /// A `getData` (or, once the node was found missing, an `exists`) with a watch is in flight.
        case reading(tag: UInt64, exists: Bool)
        /// The watch is set; the next change fires it.
        case watching
        /// A read failed; read again at `until`.
        case retrying(until: Instant)
        /// The session ended: watches and replies of it are gone; read again once connected.
        case waitingForSession
    }

    public let settings: Settings
    private var phase: Phase = .idle
    private var nextTag: UInt64 = 1
    /// What was reported last: nil before the first report.
    public private(set) var reported: String??

    public init(settings: Settings) {
        self.settings = settings
    }

    /// Feeds one event; returns what the driver must do, in order.
    public mutating func handle(_ event: Event, now: Instant) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .start:
            if phase == .idle { read(exists: false, &actions) }
        case .coordination(.reply(let tag, let reply)):
            guard case .reading(let current, let exists) = phase, current == tag else { break }
            self.reply(reply, exists: exists, now, &actions)
        case .coordination(.watch(let watch)):
            guard watch.path == settings.masterPath, phase != .idle, phase != .waitingForSession else { break }
            // Said at once: the node is gone whatever a read returns later (the node may already be
            // back, and the read says so).
            if case .deleted = watch { report(nil, &actions) }
            // A read in flight is dropped (its reply ignored): the new one sees the change.
            read(exists: false, &actions)
        case .coordination(.session(let state)):
            session(state, &actions)
        case .tick:
            if case .retrying(let until) = phase, until <= now { read(exists: false, &actions) }
        }
        return actions
    }

    private mutating func session(_ state: SessionState, _ actions: inout [Action]) {
        guard phase != .idle else { return }
        switch state {
        case .connecting:
            // The session may live on with its watch; requests fail and are retried.
            break
        case .expired:
            phase = .waitingForSession
        case .connected:
            // After a reconnection the watch may have missed nothing or everything (a new
            // session): read again either way.
            read(exists: false, &actions)
        }
    }

    private mutating func reply(_ reply: CoordinationReply, exists: Bool, _ now: Instant, _ actions: inout [Action]) {
        switch reply {
        case .data(let data):
            phase = .watching
            report(Self.uri(data), &actions)
        case .failed(.noNode) where !exists:
            report(nil, &actions)
            read(exists: true, &actions)
        case .exists(true):
            // Created between the two reads.
            read(exists: false, &actions)
        case .exists(false):
            phase = .watching
            report(nil, &actions)
        case .failed(.sessionExpired):
            phase = .waitingForSession
        default:
            let until = now.adding(milliseconds: settings.retryDelayMs)
            phase = .retrying(until: until)
            actions.append(.scheduleTick(at: until))
        }
    }

    private mutating func read(exists: Bool, _ actions: inout [Action]) {
        let tag = nextTag
        nextTag += 1
        phase = .reading(tag: tag, exists: exists)
        let path = settings.masterPath
        actions.append(.coordinate(exists ? .exists(path: path, watch: true) : .getData(path: path, watch: true), tag: tag))
    }

    private mutating func report(_ uri: String?, _ actions: inout [Action]) {
        guard reported != .some(uri) else { return }
        reported = .some(uri)
        actions.append(.masterAddress(uri))
    }

    /// The node's data as a URI: trimmed, nil when empty (or the node has no data).
    static func uri(_ data: [UInt8]?) -> String? {
        let text = String(decoding: data ?? [], as: UTF8.self).trimmingWhitespace
        return text.isEmpty ? nil : text
    }
}
