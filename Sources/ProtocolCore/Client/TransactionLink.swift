import DequeModule

/// A producer's transactional connection to one broker (reference §4.2, §1.4.1) as a pure machine:
/// transaction commands and puts with a transaction key go in, frames come out, answers are matched
/// by opaque, and every request ends in exactly one `.completed`.
///
/// It is kept apart from `ProducerMachine` because a local transaction lives and dies with one
/// connection (the broker rolls back the open local transactions of a connection that closes,
/// docs/TRANSACTIONS.md): this machine remembers on which connection each local transaction's BEGIN
/// went out and refuses to carry a later request of that transaction over another connection
/// (`.notSent(.scopeLost)`), instead of letting it reach a broker that no longer knows the key.
/// Unlike the plain producer it never waits through a reconnect back-off: a failed connection
/// attempt fails the queued requests at once, and the next request connects again.
///
/// END has no answer (§4.2): it completes with `.written` once it is on the wire. A request whose
/// answer does not come in time completes `.lost(.timedOut)` and closes the connection, so the
/// broker rolls back the local transactions it carried and their state is certain again.
public struct TransactionLink: Sendable {
    public let settings: Settings
    private var connection: Connection = .idle
    private var queue: Deque<Queued> = []
    private var opaques: OpaqueSequence
    /// Connections opened so far; the number of the current one while connected.
    private var connectionNumber: UInt64 = 0
    /// Local transaction key → the connection its BEGIN went out on.
    private var scopes: [String: UInt64] = [:]
    private var wakeUp = WakeUp()

    private enum Connection {
        case idle
        case connecting(deadline: Instant)
        case connected(inFlight: Deque<InFlight>)
    }

    private struct Queued {
        var id: UInt64
        var request: Request
        var expires: Instant
    }

    private struct InFlight {
        var id: UInt64
        var opaque: Int32
        var deadline: Instant
        var isPut: Bool
    }

    public init(settings: Settings = Settings()) {
        self.settings = settings
        opaques = OpaqueSequence(range: settings.opaqueRange)
    }

    public var isConnected: Bool {
        if case .connected = connection { return true } else { return false }
    }

    /// Local transactions whose BEGIN went out and whose COMMIT or ROLLBACK did not yet.
    public var openLocalTransactions: Int { scopes.count }

    public mutating func handle(_ event: Event, now: Instant) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .submit(let id, let request):
            submit(Queued(id: id, request: request, expires: now.adding(milliseconds: settings.requestTimeoutMs)), &actions)
        case .connected:
            if case .connecting = connection {
                connectionNumber += 1
                connection = .connected(inFlight: [])
            }
        case .connectionLost:
            connectionGone(failQueued: true, &actions)
        case .frame(let frame):
            receive(frame, now, &actions)
        case .tick:
            break
        }
        expire(now, &actions)
        pump(now, &actions)
        if let at = wakeUp.request(nextDeadline, now: now) { actions.append(.scheduleTick(at: at)) }
        return actions
    }

    private mutating func submit(_ item: Queued, _ actions: inout [Action]) {
        if let problem = Self.validate(item.request) {
            actions.append(.completed(id: item.id, .notSent(.invalidRequest(problem))))
            return
        }
        guard queue.count < settings.maxQueued else {
            actions.append(.completed(id: item.id, .notSent(.queueFull)))
            return
        }
        queue.append(item)
    }

    private static func validate(_ request: Request) -> String? {
        switch request {
        case .put(let topic, let partition, _, let payload, let key):
            if let problem = MetaName.problem(with: topic) { return MetaName.refusal("topic", topic, problem) }
            // §1.4.1: the broker refuses partition -1 in a transaction; it must be chosen here.
            if partition < 0 { return "partition \(partition): a put in a transaction names its partition" }
            if payload.count > Int(Int32.max) { return "payload of \(payload.count) bytes exceeds Int32.max" }
            if !isWireToken(key) { return "transaction key \(key) is not one wire token" }
        case .command(_, let key, let sessionId, let timeout, let qualifier):
            if !isWireToken(key) { return "transaction key \(key) is not one wire token" }
            if !isWireToken(sessionId) { return "session id \(sessionId) is not one wire token" }
            if let timeout, timeout <= 0 { return "a timeout is sent only when positive (§4.2)" }
            if let qualifier, !isWireToken(qualifier) || qualifier.first.map({ $0.isNumber }) == true {
                return "unique qualifier \(qualifier) is not one wire token starting with a non-digit"
            }
        }
        return nil
    }

    /// Sends queued requests while the window has room; connects when idle with work.
    private mutating func pump(_ now: Instant, _ actions: inout [Action]) {
        switch connection {
        case .idle where !queue.isEmpty:
            connection = .connecting(deadline: now.adding(milliseconds: settings.requestTimeoutMs))
            actions.append(.connect)
        case .connected(var inFlight):
            guard inFlight.count < settings.maxInFlight, !queue.isEmpty else { return }
            connection = .idle  // keeps `inFlight` uniquely referenced while it grows
            while inFlight.count < settings.maxInFlight, let item = queue.popFirst() {
                guard let (frame, expectsAnswer, isPut) = frame(for: item, &actions) else { continue }
                actions.append(.sendFrame(frame))
                if expectsAnswer {
                    inFlight.append(InFlight(id: item.id, opaque: frame.opaque ?? 0,
                                             deadline: now.adding(milliseconds: settings.requestTimeoutMs), isPut: isPut))
                } else {
                    actions.append(.completed(id: item.id, .written))
                }
            }
            connection = .connected(inFlight: inFlight)
        case .idle, .connecting:
            break
        }
    }

    /// The frame of a request about to go out on the current connection, or nil when the local
    /// transaction it belongs to cannot be carried by this connection (completed here).
    private mutating func frame(for item: Queued, _ actions: inout [Action]) -> (Frame, Bool, Bool)? {
        let key: String
        let type: TransactionType?
        switch item.request {
        case .put(_, _, _, _, let k): key = k; type = nil
        case .command(let t, let k, _, _, _): key = k; type = t
        }
        if key.hasPrefix("TX:") {
            if type == .begin {
                if scopes[key] == nil, scopes.count >= settings.maxOpenLocalTransactions {
                    actions.append(.completed(id: item.id, .notSent(.tooManyOpen(settings.maxOpenLocalTransactions))))
                    return nil
                }
                if let began = scopes[key], began != connectionNumber {
                    actions.append(.completed(id: item.id, .notSent(.scopeLost)))
                    return nil
                }
                scopes[key] = connectionNumber
            } else {
                let began = scopes[key]
                if type == .commitOnePhase || type == .commitTwoPhase || type == .rollback { scopes[key] = nil }
                guard began == connectionNumber else {
                    actions.append(.completed(id: item.id, .notSent(began == nil ? .notBegun : .scopeLost)))
                    return nil
                }
            }
        }
        let opaque = opaques.take()
        switch item.request {
        case .put(let topic, let partition, let flag, let payload, let key):
            let put = PutCommand(topic: topic, partition: partition, flag: flag, checksum: CRC32.metaqChecksum(payload),
                                 transactionKey: key, body: payload, opaque: opaque)
            return (.put(put), true, true)
        case .command(let type, let key, let sessionId, let timeout, let qualifier):
            let command = TransactionCommand(transactionKey: key, sessionId: sessionId, type: type,
                                             timeoutSeconds: timeout, uniqueQualifier: qualifier, opaque: opaque)
            return (.transaction(command), type != .end, false)
        }
    }

    private mutating func receive(_ frame: Frame, _ now: Instant, _ actions: inout [Action]) {
        guard case .connected(var inFlight) = connection else { return }
        guard case .result(let answer) = frame else {
            actions.append(.disconnect)
            connectionGone(failQueued: false, &actions)
            return
        }
        guard let index = inFlight.firstIndex(where: { $0.opaque == answer.opaque }) else { return }
        connection = .idle
        let request = inFlight.remove(at: index)
        connection = .connected(inFlight: inFlight)
        actions.append(.completed(id: request.id, .answered(code: answer.code, text: answer.text)))
    }

    /// The connection (or the attempt) is over: requests on the wire are lost; queued ones fail
    /// when the attempt failed (`failQueued`), else they wait for the next connection, where the
    /// scope check refuses those of local transactions begun on the lost one.
    private mutating func connectionGone(failQueued: Bool, _ actions: inout [Action]) {
        switch connection {
        case .idle:
            return
        case .connecting:
            while let item = queue.popFirst() { actions.append(.completed(id: item.id, .notSent(.connectionFailed))) }
        case .connected(let inFlight):
            for request in inFlight { actions.append(.completed(id: request.id, .lost(.connectionLost))) }
            if failQueued {
                while let item = queue.popFirst() { actions.append(.completed(id: item.id, .notSent(.connectionFailed))) }
            }
        }
        connection = .idle
    }

    private mutating func expire(_ now: Instant, _ actions: inout [Action]) {
        while let first = queue.first, first.expires <= now {
            queue.removeFirst()
            actions.append(.completed(id: first.id, .notSent(.expired)))
        }
        switch connection {
        case .idle:
            break
        case .connecting(let deadline):
            if deadline <= now {
                actions.append(.disconnect)
                connectionGone(failQueued: true, &actions)
            }
        case .connected(var inFlight):
            guard let first = inFlight.first, first.deadline <= now else { return }
            connection = .idle
            while let request = inFlight.first, request.deadline <= now {
                inFlight.removeFirst()
                actions.append(.completed(id: request.id, .lost(.timedOut)))
            }
            connection = .connected(inFlight: inFlight)
            actions.append(.disconnect)
            connectionGone(failQueued: false, &actions)
        }
    }

    private var nextDeadline: Instant? {
        var deadlines: [Instant] = []
        if let first = queue.first { deadlines.append(first.expires) }
        switch connection {
        case .idle: break
        case .connecting(let deadline): deadlines.append(deadline)
        case .connected(let inFlight): if let first = inFlight.first { deadlines.append(first.deadline) }
        }
        return deadlines.min()
    }
}

extension TransactionLink {
    public struct Settings: Equatable, Sendable {
        /// From a request going out to its answer; also the longest a request waits to go out and
        /// a connection attempt may take.
        public var requestTimeoutMs: Int64
        public var maxInFlight: Int
        /// Requests waiting for the connection or the window; one more is refused.
        public var maxQueued: Int
        /// Local transactions begun on this link and not yet committed or rolled back.
        public var maxOpenLocalTransactions: Int
        public var opaqueRange: ClosedRange<Int32>

        public init(requestTimeoutMs: Int64 = 5_000, maxInFlight: Int = 256, maxQueued: Int = 4096,
                    maxOpenLocalTransactions: Int = 1024, opaqueRange: ClosedRange<Int32> = OpaqueSequence.javaRange) {
            precondition(requestTimeoutMs > 0 && maxInFlight >= 1 && maxQueued >= 0 && maxOpenLocalTransactions >= 1,
                         "positive timeout, window and bounds")
            self.requestTimeoutMs = requestTimeoutMs
            self.maxInFlight = maxInFlight
            self.maxQueued = maxQueued
            self.maxOpenLocalTransactions = maxOpenLocalTransactions
            self.opaqueRange = opaqueRange
        }
    }

    public enum Request: Equatable, Sendable {
        /// A put inside the transaction `transactionKey` (§1.4.1); `payload` in §1.4.1's form.
        case put(topic: String, partition: Int32, flag: Int32, payload: [UInt8], transactionKey: String)
        /// `transaction <key> <sessionId> <TYPE> [<timeout>] [<uniqueQualifier>]` (§4.2).
        case command(TransactionType, key: String, sessionId: String, timeoutSeconds: Int32?, uniqueQualifier: String?)
    }

    public enum Reply: Equatable, Sendable {
        /// The broker's `result` (§1.2).
        case answered(code: Int32, text: String)
        /// END is on the wire; the broker does not answer it (§4.2).
        case written
        /// The request left but its answer did not come: its effect is unknown.
        case lost(SendOutcome.UnknownReason)
        /// The request never left.
        case notSent(NotSentReason)
    }

    public enum NotSentReason: Equatable, Sendable {
        case queueFull
        case expired
        case connectionFailed
        /// The connection the local transaction began on closed; the broker rolled it back.
        case scopeLost
        /// A request of a local transaction whose BEGIN never went out on this link.
        case notBegun
        case tooManyOpen(Int)
        case invalidRequest(String)
    }

    public enum Event: Equatable, Sendable {
        case submit(id: UInt64, Request)
        case connected
        case connectionLost
        case frame(Frame)
        case tick
    }

    public enum Action: Equatable, Sendable {
        case connect
        case sendFrame(Frame)
        case completed(id: UInt64, Reply)
        case scheduleTick(at: Instant)
        /// Close the connection; the machine has already written it off.
        case disconnect
    }
}

extension TransactionLink.NotSentReason: CustomStringConvertible {
    public var description: String {
        switch self {
        case .queueFull: "too many transaction requests wait for the broker connection"
        case .expired: "no connection to the broker within the request timeout"
        case .connectionFailed: "the connection to the broker could not be opened or closed"
        case .scopeLost: "the connection the transaction began on closed, so the broker rolled the transaction back"
        case .notBegun: "the transaction was never begun on this connection"
        case .tooManyOpen(let bound): "\(bound) local transactions are already open on this connection"
        case .invalidRequest(let why): why
        }
    }
}
