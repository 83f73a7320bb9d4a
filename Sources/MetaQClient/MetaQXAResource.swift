import Glibc
import ProtocolCore
import Synchronization

/// An XA transaction branch id, as a transaction manager gives it (`javax.transaction.xa.Xid`).
public struct Xid: Hashable, Sendable, CustomStringConvertible {
    public var formatId: Int32
    public var globalTransactionId: [UInt8]
    public var branchQualifier: [UInt8]

    public init(formatId: Int32, globalTransactionId: [UInt8], branchQualifier: [UInt8]) {
        self.formatId = formatId
        self.globalTransactionId = globalTransactionId
        self.branchQualifier = branchQualifier
    }

    /// The wire key of this branch for the resource `uniqueQualifier` (§4.1).
    public func key(uniqueQualifier: String) -> String {
        TransactionId.xa(formatId: formatId, globalId: globalTransactionId, branchQualifier: branchQualifier,
                         uniqueQualifier: uniqueQualifier).key
    }

    public var description: String { String(key(uniqueQualifier: "").dropLast()) }
}

/// An XA error as the Java client raises it: the broker's `XAException:code=<n>,msg=<text>`
/// (§4.2), or a client-side code. Codes are `javax.transaction.xa.XAException`'s.
public struct XAError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: Int32
    public var message: String

    public static let resourceManagerError: Int32 = -3   // XAER_RMERR
    public static let noSuchTransaction: Int32 = -4      // XAER_NOTA
    public static let invalidArguments: Int32 = -5       // XAER_INVAL
    public static let protocolError: Int32 = -6          // XAER_PROTO
    public static let resourceManagerFailed: Int32 = -7  // XAER_RMFAIL
    public static let duplicateId: Int32 = -8            // XAER_DUPID

    public init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "XA error \(code): \(message)" }
}

/// What `prepare` voted (§4.2: the answer's body, XA_OK 0 or XA_RDONLY 3).
public enum XAVote: Equatable, Sendable {
    /// The branch did work and is prepared: commit or roll it back.
    case ok
    /// The branch did nothing; the broker already finished it. Do not commit it.
    case readOnly
}

/// A producer's XA resource (§4): what a transaction manager drives to take MetaQ messages into a
/// distributed transaction. Like the Java client's, a resource is bound to one broker; its branches
/// live on that broker (not on a connection), so any client may prepare, commit, roll back or
/// recover them, also after a restart. One branch at a time is associated with the resource
/// (`start` … `end`); `send` puts messages into it.
public final class MetaQXAResource: Sendable {
    let producer: MetaQProducer
    /// The broker every branch of this resource goes to.
    public let broker: BrokerAddress
    let brokerId: Int
    /// Names this resource in every XID (§4.1); RECOVER lists only its branches.
    public let uniqueQualifier: String
    /// The associated branch; held for a read or a swap.
    let associated = Mutex<Xid?>(nil)

    init(producer: MetaQProducer, broker: BrokerAddress, brokerId: Int, uniqueQualifier: String) {
        self.producer = producer
        self.broker = broker
        self.brokerId = brokerId
        self.uniqueQualifier = uniqueQualifier
    }

    /// `XAMessageProducer-<hostname>`, the Java client's default unique qualifier (§4.1).
    public static var defaultUniqueQualifier: String {
        var name = [CChar](repeating: 0, count: 256)
        let host = gethostname(&name, name.count) == 0
            ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "localhost"
        return "XAMessageProducer-\(host)"
    }

    /// Begins branch `xid` on the broker (BEGIN with the timeout, if any, §4.2) and associates it.
    public func start(_ xid: Xid, timeout: Duration? = nil) async throws(XAError) {
        let taken = associated.withLock { current -> Bool in
            guard current == nil else { return false }
            current = xid
            return true
        }
        guard taken else { throw XAError(code: XAError.duplicateId, message: "a branch is already associated; end it first") }
        let seconds = timeout.flatMap { d -> Int32? in
            let total = d.components.seconds + (d.components.attoseconds > 0 ? 1 : 0)
            return total > 0 ? Int32(clamping: total) : nil
        }
        do {
            _ = try await command(.begin, xid, timeoutSeconds: seconds)
        } catch {
            associated.withLock { $0 = nil }
            throw error
        }
    }

    /// Dissociates `xid` and sends END (which the broker does not answer, §4.2).
    public func end(_ xid: Xid) async throws(XAError) {
        let was = associated.withLock { current -> Bool in
            guard current == xid else { return false }
            current = nil
            return true
        }
        guard was else { throw XAError(code: XAError.protocolError, message: "\(xid) is not the associated branch") }
        _ = try await command(.end, xid)
    }

    /// Sends a message into the associated branch, to a partition of this resource's broker.
    @discardableResult
    public func send(topic: String, data: [UInt8], attribute: String? = nil) async throws -> TransactionSendResult {
        guard let xid = associated.withLock({ $0 }) else {
            throw XAError(code: XAError.protocolError, message: "no branch is started: call start(_:) first")
        }
        if let refusal = MetaQProducer.topicRefusal(topic) { throw refusal }
        let targets = try await producer.engine.transactionTargets(topic: topic, timeoutMs: producer.settings.discoveryTimeoutMs)
            .filter { $0.partition.brokerId == brokerId }
        guard let chosen = producer.settings.selector.select(topic: topic, partitions: targets.map(\.partition), data: data, attribute: attribute)
        else {
            throw SendError(kind: .notSent("broker \(broker.uri) of this XA resource has no partition of topic \(topic)"),
                            topic: topic, partition: nil, broker: broker.uri)
        }
        let key = xid.key(uniqueQualifier: uniqueQualifier)
        let (flag, payload) = MessagePayload.encode(attribute: attribute, data: data)
        let reply = await producer.engine.transact(producer: producer, address: broker,
                                                   [.put(topic: topic, partition: Int32(chosen.partition), flag: flag,
                                                         payload: payload, transactionKey: key)])[0]
        let failure = { (kind: SendError.Kind) in SendError(kind: kind, topic: topic, partition: chosen, broker: self.broker.uri) }
        switch reply {
        case .answered(let code, let text) where code == StatusCode.success:
            let fields = text.split(separator: " ")
            guard fields.count == 3, let msgId = Int64(fields[0]), let partition = Int(fields[1]) else {
                throw failure(.unknownOutcome("the broker answered \(text)"))
            }
            return TransactionSendResult(msgId: msgId, partition: BrokerPartition(brokerId: brokerId, partition: partition),
                                         broker: broker.uri, transactionId: key)
        case .answered(let code, let text): throw failure(.refused(code: code, text: text))
        case .lost(let reason): throw failure(.unknownOutcome("\(reason)"))
        case .notSent(let reason): throw failure(.notSent(reason.description))
        case .written: throw failure(.unknownOutcome("no answer"))
        }
    }

    /// PREPARE (§4.2). The branch must be ended first (as in the Java client).
    public func prepare(_ xid: Xid) async throws(XAError) -> XAVote {
        try refuseIfAssociated(xid)
        let text = try await command(.prepare, xid)
        switch text {
        case "0": return .ok
        case "3": return .readOnly
        default: throw XAError(code: XAError.resourceManagerError, message: "PREPARE answered \(text)")
        }
    }

    /// COMMIT_ONE_PHASE or COMMIT_TWO_PHASE (§4.2).
    public func commit(_ xid: Xid, onePhase: Bool) async throws(XAError) {
        try refuseIfAssociated(xid)
        _ = try await command(onePhase ? .commitOnePhase : .commitTwoPhase, xid)
    }

    /// ROLLBACK (§4.2); an associated branch is dissociated first.
    public func rollback(_ xid: Xid) async throws(XAError) {
        associated.withLock { if $0 == xid { $0 = nil } }
        _ = try await command(.rollback, xid)
    }

    /// FORGET a heuristically completed branch (§4.2).
    public func forget(_ xid: Xid) async throws(XAError) {
        _ = try await command(.forget, xid)
    }

    /// RECOVER (§4.2): the prepared (and heuristically completed) branches of this resource on its broker.
    public func recover() async throws(XAError) -> [Xid] {
        let text = try await send(.command(.recover, key: "null", sessionId: producer.sessionId, timeoutSeconds: nil,
                                           uniqueQualifier: uniqueQualifier), what: "RECOVER")
        return text.split(separator: "\r\n").compactMap { line in
            guard case .xa(let formatId, let gtrid, let bqual, _)? = try? TransactionId.parse(String(line)) else { return nil }
            return Xid(formatId: formatId, globalTransactionId: gtrid, branchQualifier: bqual)
        }
    }

    private func refuseIfAssociated(_ xid: Xid) throws(XAError) {
        if associated.withLock({ $0 == xid }) {
            throw XAError(code: XAError.protocolError, message: "\(xid) is still associated: call end(_:) first")
        }
    }

    private func command(_ type: TransactionType, _ xid: Xid, timeoutSeconds: Int32? = nil) async throws(XAError) -> String {
        try await send(.command(type, key: xid.key(uniqueQualifier: uniqueQualifier), sessionId: producer.sessionId,
                                timeoutSeconds: timeoutSeconds, uniqueQualifier: uniqueQualifier), what: type.rawValue)
    }

    /// The answer's body; an `XAError` for anything but 200 (the broker's code when it sent an
    /// `XAException:` text, XAER_RMERR for another refusal, XAER_RMFAIL when the answer was lost).
    private func send(_ request: TransactionLink.Request, what: String) async throws(XAError) -> String {
        let reply = await producer.engine.transact(producer: producer, address: broker, [request])[0]
        switch reply {
        case .answered(let code, let text) where code == StatusCode.success:
            return text
        case .answered(_, let text):
            if let (code, message) = parseXAExceptionText(text) { throw XAError(code: code, message: message) }
            throw XAError(code: XAError.resourceManagerError, message: text)
        case .written:
            return ""
        case .lost(let reason):
            throw XAError(code: XAError.resourceManagerFailed, message: "\(what) on \(broker.uri) got no answer (\(reason))")
        case .notSent(let reason):
            throw XAError(code: XAError.resourceManagerFailed, message: "\(what) was not sent to \(broker.uri): \(reason)")
        }
    }
}

extension MetaQProducer {
    /// An XA resource of this producer (§4). Its branches go to one broker: in direct mode the
    /// first server; in ZooKeeper mode a broker chosen at random among those holding every topic
    /// of `topics` (as the Java XA producer does with its published topics).
    ///
    /// - Parameter uniqueQualifier: names the resource in its XIDs; default `XAMessageProducer-<hostname>`.
    ///   No blank, `:`, CR, LF or tab (they would break the key, §4.1).
    public func xaResource(uniqueQualifier: String = MetaQXAResource.defaultUniqueQualifier,
                           topics: [String] = []) async throws -> MetaQXAResource {
        if uniqueQualifier.isEmpty || uniqueQualifier.contains(where: { " :\r\n\t".contains($0) }) {
            throw MetaQClientError("unique qualifier '\(uniqueQualifier)' must be non-empty without blanks, ':', CR, LF or tab")
        }
        let brokers = try await engine.brokers(of: topics, timeoutMs: settings.discoveryTimeoutMs)
        let choice: (key: Int, value: BrokerAddress)?
        if engine.isDirect { choice = brokers.min { $0.key < $1.key } } else { choice = brokers.randomElement() }
        guard let choice else {
            throw MetaQClientError("no broker holds every topic of \(topics): an XA resource needs one broker for its branches")
        }
        return MetaQXAResource(producer: self, broker: choice.value, brokerId: choice.key, uniqueQualifier: uniqueQualifier)
    }
}
