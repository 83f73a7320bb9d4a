/// A producer's transaction session (reference §4.1): its session id, `<localIP>-<startTimeMillis>-<seq>`
/// like the Java client's (one sequence number per producer of a client), and the numbers of its
/// local transactions, from 1.
public struct TransactionSession: Sendable {
    public let sessionId: String
    private var next: Int32 = 1

    public init(sessionId: String) {
        self.sessionId = sessionId
    }

    /// The session id of producer `sequence` of a client on `localIP` started at `startTimeMs`.
    public init(localIP: String, startTimeMs: Int64, sequence: Int) {
        self.init(sessionId: "\(localIP)-\(startTimeMs)-\(sequence)")
    }

    /// The next local transaction, `TX:<sessionId>:<n>`. The broker parses n as a Java int (§4.1),
    /// so after `Int32.max` numbering starts again at 1.
    public mutating func nextLocal() -> TransactionId {
        let number = next
        next = number == .max ? 1 : number + 1
        return .local(sessionId: sessionId, number: number)
    }
}

/// The client-side rules of one local transaction (§4.1, §4.2): it is bound to the broker its
/// first send chose, every later send goes to a partition of that broker, BEGIN goes out before
/// the first put, and only a begun transaction is committed or rolled back on the wire.
public struct LocalTransactionState: Sendable {
    public enum State: Equatable, Sendable {
        /// Nothing sent yet: no broker chosen, nothing to commit.
        case unbound
        /// BEGIN went (or goes) to this broker.
        case bound(brokerId: Int)
        /// A COMMIT or ROLLBACK went out (or was not needed); no more sends.
        case finished
    }

    public let id: TransactionId
    public private(set) var state: State = .unbound

    public init(id: TransactionId) {
        self.id = id
    }

    /// The partitions a send of `topic` may choose from: all of them before the first send, then
    /// only those of the bound broker (the Java client chooses among the bound broker's
    /// partitions and fails when it has none). An error text when none is allowed.
    public func candidates(topic: String, _ partitions: [BrokerPartition], brokerName: (Int) -> String)
        -> Result<[BrokerPartition], TransactionRefusal> {
        switch state {
        case .finished:
            return .failure(TransactionRefusal("transaction \(id.key) is already finished: send inside the transaction's body"))
        case .unbound:
            guard !partitions.isEmpty else {
                return .failure(TransactionRefusal("no partition of topic \(topic) is available for transaction \(id.key)"))
            }
            return .success(partitions)
        case .bound(let brokerId):
            let own = partitions.filter { $0.brokerId == brokerId }
            guard !own.isEmpty else {
                return .failure(TransactionRefusal(
                    "transaction \(id.key) is bound to broker \(brokerName(brokerId)), which has no partition of topic "
                    + "\(topic): a local transaction covers one broker; use an XA transaction to span brokers"))
            }
            return .success(own)
        }
    }

    /// Records the partition a send chose; true when BEGIN must go out first (the first send).
    public mutating func bind(_ chosen: BrokerPartition) -> Bool {
        switch state {
        case .unbound:
            state = .bound(brokerId: chosen.brokerId)
            return true
        case .bound(let brokerId):
            precondition(brokerId == chosen.brokerId, "a send chose a partition outside the transaction's broker")
            return false
        case .finished:
            preconditionFailure("a send after the transaction finished")
        }
    }

    /// Ends the transaction; the broker to send COMMIT or ROLLBACK to, nil when nothing was begun.
    public mutating func finish() -> Int? {
        defer { state = .finished }
        if case .bound(let brokerId) = state { return brokerId }
        return nil
    }
}

/// Why a transaction cannot do what was asked, in words for the user.
public struct TransactionRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// An `XAException:code=<n>,msg=<text>` answer (§4.2) read back the way the Java client does
/// (`code=(-?\d+),msg=(.*)`); nil for any other text.
public func parseXAExceptionText(_ text: String) -> (code: Int32, message: String)? {
    guard text.hasPrefix("XAException:"), let range = text.firstRange(of: "code=") else { return nil }
    var rest = text[range.upperBound...]
    var digits = ""
    if rest.first == "-" {
        digits.append("-")
        rest = rest.dropFirst()
    }
    while let c = rest.first, c.isASCII, c.isNumber {
        digits.append(c)
        rest = rest.dropFirst()
    }
    guard let code = Int32(digits), rest.hasPrefix(",msg=") else { return nil }
    return (code, String(rest.dropFirst(",msg=".count)))
}
