import ProtocolCore
import Synchronization

/// A message admitted into a transaction (reference §1.4.1: the broker answers `<msgId>
/// <partition> -1`). It has no offset: the broker stores the message only when the transaction
/// commits, so it is not visible to consumers before that.
public struct TransactionSendResult: Equatable, Hashable, Sendable {
    public var msgId: Int64
    /// The broker and partition the message will be stored in at commit.
    public var partition: BrokerPartition
    /// `meta://host:port` of the broker.
    public var broker: String
    /// The transaction's key (`TX:…` or `XID:…`, §4.1).
    public var transactionId: String
}

/// One local transaction of a producer (§4.1): handed to the body of `MetaQProducer.transaction`.
/// Every send goes to the broker the first send chose.
public final class MetaQTransaction: Sendable {
    let producer: MetaQProducer
    /// The rules, and the address of the bound broker; held while a send decides and submits, so
    /// concurrent sends of one transaction reach the connection in the order they bound.
    let state: Mutex<(rules: LocalTransactionState, address: BrokerAddress?, broken: String?)>
    let timeoutSeconds: Int32?

    /// The transaction's key, `TX:<sessionId>:<n>`.
    public var id: String { state.withLock { $0.rules.id.key } }

    init(producer: MetaQProducer, id: TransactionId, timeoutSeconds: Int32?) {
        self.producer = producer
        self.timeoutSeconds = timeoutSeconds
        state = Mutex((LocalTransactionState(id: id), nil, nil))
    }

    /// Sends one message inside the transaction and waits for the broker to admit it.
    ///
    /// - Throws: `SendError`: `.notSent` when the transaction's broker has no partition of `topic`
    ///   (a local transaction covers one broker) or the transaction is finished; `.refused` with
    ///   the broker's text (e.g. `Local transaction 'TX:…' has not been started.`).
    @discardableResult
    public func send(topic: String, data: [UInt8], attribute: String? = nil) async throws -> TransactionSendResult {
        if let refusal = MetaQProducer.topicRefusal(topic) { throw refusal }
        let targets = try await producer.engine.transactionTargets(topic: topic, timeoutMs: producer.settings.discoveryTimeoutMs)
        let (flag, payload) = MessagePayload.encode(attribute: attribute, data: data)
        let engine = producer.engine
        let (replies, target, key) = try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<([TransactionLink.Reply], TransactionTarget, String), any Error>) in
            state.withLock { state in
                let key = state.rules.id.key
                let partitions = targets.map(\.partition)
                let allowed: [BrokerPartition]
                switch state.rules.candidates(topic: topic, partitions, brokerName: { id in
                    targets.first { $0.partition.brokerId == id }?.address.uri ?? "\(id)"
                }) {
                case .success(let list): allowed = list
                case .failure(let refusal):
                    return continuation.resume(throwing: SendError(kind: .notSent(refusal.description), topic: topic))
                }
                guard let chosen = producer.settings.selector.select(topic: topic, partitions: allowed, data: data, attribute: attribute),
                      let target = targets.first(where: { $0.partition == chosen }) else {
                    return continuation.resume(throwing: SendError(kind: .noPartition, topic: topic))
                }
                var requests: [TransactionLink.Request] = []
                if state.rules.bind(chosen) {
                    state.address = target.address
                    requests.append(.command(.begin, key: key, sessionId: producer.sessionId, timeoutSeconds: timeoutSeconds,
                                             uniqueQualifier: nil))
                }
                requests.append(.put(topic: topic, partition: Int32(chosen.partition), flag: flag, payload: payload, transactionKey: key))
                engine.submitTransaction(producer: producer, address: target.address, requests) { replies in
                    continuation.resume(returning: (replies, target, key))
                }
            }
        }
        let broker = target.address.uri
        func failure(_ kind: SendError.Kind) -> SendError {
            SendError(kind: kind, topic: topic, partition: target.partition, broker: broker)
        }
        if replies.count == 2, case .answered(let code, let text) = replies[0], code != StatusCode.success {
            throw failure(.refused(code: code, text: "BEGIN of \(key) refused: \(text)"))
        }
        switch replies[replies.count - 1] {
        case .answered(let code, let text) where code == StatusCode.success:
            let fields = text.split(separator: " ")
            guard fields.count == 3, let msgId = Int64(fields[0]), let partition = Int(fields[1]) else {
                throw failure(.unknownOutcome("the broker answered \(text)"))
            }
            return TransactionSendResult(msgId: msgId, partition: BrokerPartition(brokerId: target.partition.brokerId, partition: partition),
                                         broker: broker, transactionId: key)
        case .answered(let code, let text):
            throw failure(.refused(code: code, text: text))
        case .written:
            throw failure(.unknownOutcome("no answer"))
        case .lost(let reason):
            markBroken("a put's answer was lost (\(reason))")
            throw failure(.unknownOutcome("\(reason); the transaction's connection was closed, so the broker rolls it back"))
        case .notSent(let reason):
            if reason == .scopeLost { markBroken(reason.description) }
            throw failure(.notSent(reason.description))
        }
    }

    private func markBroken(_ why: String) {
        state.withLock { if $0.broken == nil { $0.broken = why } }
    }

    /// COMMIT_ONE_PHASE (the Java client's local commit, §4.2); nothing when nothing was sent.
    func commit() async throws {
        let (brokerId, address, broken, key) = state.withLock { state in
            (state.rules.finish(), state.address, state.broken, state.rules.id.key)
        }
        guard brokerId != nil, let address else { return }
        if let broken {
            _ = await producer.engine.transact(producer: producer, address: address,
                                               [.command(.rollback, key: key, sessionId: producer.sessionId, timeoutSeconds: nil, uniqueQualifier: nil)])
            throw MetaQClientError("transaction \(key) on broker \(address.uri) was not committed: \(broken); it is rolled back")
        }
        let reply = await producer.engine.transact(producer: producer, address: address,
                                                   [.command(.commitOnePhase, key: key, sessionId: producer.sessionId,
                                                             timeoutSeconds: nil, uniqueQualifier: nil)])[0]
        switch reply {
        case .answered(let code, _) where code == StatusCode.success:
            return
        case .answered(let code, let text):
            throw MetaQClientError("broker \(address.uri) refused to commit transaction \(key): \(code) \(text)")
        case .lost(let reason):
            throw MetaQClientError("the outcome of committing transaction \(key) on broker \(address.uri) is unknown (\(reason)): "
                                   + "its messages may or may not be stored — check before sending them again")
        case .notSent(let reason):
            throw MetaQClientError("transaction \(key) on broker \(address.uri) was not committed: \(reason)")
        case .written:
            throw MetaQClientError("transaction \(key): COMMIT got no answer")
        }
    }

    /// ROLLBACK; nothing when nothing was sent. A transaction whose connection closed is already
    /// rolled back by the broker, so that is not an error.
    func rollback() async throws {
        let (brokerId, address, key) = state.withLock { state in (state.rules.finish(), state.address, state.rules.id.key) }
        guard brokerId != nil, let address else { return }
        let reply = await producer.engine.transact(producer: producer, address: address,
                                                   [.command(.rollback, key: key, sessionId: producer.sessionId,
                                                             timeoutSeconds: nil, uniqueQualifier: nil)])[0]
        switch reply {
        case .answered(let code, _) where code == StatusCode.success:
            return
        case .notSent(.scopeLost):
            return
        case .answered(let code, let text):
            throw MetaQClientError("broker \(address.uri) refused to roll back transaction \(key): \(code) \(text)")
        case .lost(let reason):
            throw MetaQClientError("the rollback of transaction \(key) on broker \(address.uri) got no answer (\(reason)); "
                                   + "its connection was closed, so the broker rolls it back")
        case .notSent(let reason):
            throw MetaQClientError("transaction \(key) on broker \(address.uri) could not be rolled back: \(reason)")
        case .written:
            return
        }
    }
}

extension MetaQProducer {
    /// Runs `body` in a local transaction (reference §4): the messages it sends with `tx.send`
    /// become visible together when `body` returns (COMMIT), and never when it throws (ROLLBACK,
    /// then the error is rethrown). All sends go to the broker the first send chose.
    ///
    /// - Parameter timeout: sent on BEGIN (whole seconds, rounded up; the broker caps it at its
    ///   `maxTxTimeoutInSeconds`, §4.6): the broker rolls the transaction back if it is not
    ///   committed in time. nil: no timeout.
    /// - Throws: what `body` throws (after the rollback), or `MetaQClientError` with the broker's
    ///   text when the commit is refused, lost or impossible.
    public func transaction<T>(timeout: Duration? = nil, _ body: (MetaQTransaction) async throws -> T) async throws -> T {
        let id = transactionSession.withLock { $0.nextLocal() }
        let seconds = timeout.flatMap { duration -> Int32? in
            let (whole, fraction) = duration.components
            let total = whole + (fraction > 0 ? 1 : 0)
            return total > 0 ? Int32(clamping: total) : nil
        }
        let transaction = MetaQTransaction(producer: self, id: id, timeoutSeconds: seconds)
        let value: T
        do {
            value = try await body(transaction)
        } catch {
            try? await transaction.rollback()
            throw error
        }
        try await transaction.commit()
        return value
    }
}
