/// MetaQ's transactions (reference §4) as a pure machine: it holds the open, prepared and
/// heuristically completed transactions and decides every answer of the `transaction` command
/// and of puts inside a transaction; the broker node carries out what it returns (redo-log
/// writes, commit appends, answers) and reports back. No I/O, no clock (time arrives as an
/// `Instant`), no decision that depends on `Dictionary` order, every collection bounded.
///
/// The node's side, per command:
/// - `handle(_:from:now:)` returns `[TxAction]`: answers, redo-log entries to write before an
///   answer, commit plans (`TxCommitPlan`: append the batches, journal the commit entry with
///   their locations, wait for durability, then `commitFinished`/`commitFailed`).
/// - A put with a transaction key: `admitPut` (tx checks and bounds, bytes reserved), then the
///   node assigns the message id and journals APPEND_MSG, then `recordPut` (or `putAbandoned`).
/// - `connectionClosed`: the connection's unfinished local transactions are rolled back — unlike
///   MetaQ, which leaves them open (§4.6, §11.5).
/// - `nextDeadline` / `timerFired(now:)`: BEGIN timeouts (§4.6).
/// - At start: `importHeuristicRecords`, `replay` of every redo-log entry in order, then
///   `finishReplay` (§4.5).
///
/// Divergences from MetaQ, each on purpose: a malformed key is answered with a 500 instead of
/// closing the connection; a put into a prepared or committing transaction is refused (MetaQ adds
/// it to the prepared transaction); BEGIN with a timer when `maxTxTimeoutTimerCapacity` timers are
/// armed does not create the transaction (MetaQ answers the same 500 but leaves it open with no
/// timer); PREPARE/COMMIT while a put of the transaction is still being journaled is refused;
/// a commit whose store work failed is answered once its rollback entry is written.
public struct TransactionMachine {
    public struct Settings: Equatable, Sendable {
        /// BEGIN's timeout is capped at this (`maxTxTimeoutInSeconds`, §4.6, default 60).
        public var maxTxTimeoutInSeconds: Int32
        /// At most this many armed timeouts (`maxTxTimeoutTimerCapacity`, default 30000).
        public var maxTxTimeoutTimerCapacity: Int
        /// At most this many transactions held (open, prepared, committing). Ours.
        public var maxOpenTransactions: Int
        /// Per-transaction bounds on messages and body bytes. Ours.
        public var maxMessagesPerTransaction: Int
        public var maxBytesPerTransaction: Int
        /// Bound on the body bytes all held transactions keep in memory. Ours.
        public var maxHeldBytes: Int
        /// Longest transaction key accepted (UTF-8 bytes).
        public var maxKeyBytes: Int
        /// At most this many heuristic records (RECOVER lists them until FORGET).
        public var maxHeuristicRecords: Int

        public init(maxTxTimeoutInSeconds: Int32 = 60, maxTxTimeoutTimerCapacity: Int = 30_000,
                    maxOpenTransactions: Int = 30_000, maxMessagesPerTransaction: Int = 10_000,
                    maxBytesPerTransaction: Int = 64 << 20, maxHeldBytes: Int = 256 << 20,
                    maxKeyBytes: Int = TransactionId.defaultMaxKeyBytes, maxHeuristicRecords: Int = 10_000) {
            self.maxTxTimeoutInSeconds = maxTxTimeoutInSeconds
            self.maxTxTimeoutTimerCapacity = maxTxTimeoutTimerCapacity
            self.maxOpenTransactions = maxOpenTransactions
            self.maxMessagesPerTransaction = maxMessagesPerTransaction
            self.maxBytesPerTransaction = maxBytesPerTransaction
            self.maxHeldBytes = maxHeldBytes
            self.maxKeyBytes = maxKeyBytes
            self.maxHeuristicRecords = maxHeuristicRecords
        }
    }

    /// A held message and the partition it goes to.
    struct Held: Equatable {
        var partition: TopicPartition
        var message: TxMessage
    }

    /// One held transaction.
    struct Tx: Equatable {
        /// Creation order: RECOVER lists in it, and it tells incarnations of a key apart.
        var sequence: UInt64
        var state: TxState
        var messages: [Held] = []
        /// Body bytes of `messages`.
        var bytes = 0
        /// Puts admitted and not yet recorded or abandoned, and their reserved body bytes.
        var pendingPuts = 0
        var pendingBytes = 0
        var deadline: Instant?
        /// The position of the transaction's first redo-log entry (its first APPEND_MSG).
        var firstEntry: TxJournalPosition?
        /// While committing: who waits for the answer (nil: heuristic, or the connection closed).
        var replyTo: (connection: ConnectionID, opaque: Int32)?
        var heuristic = false
        /// While committing: the transaction was prepared before (a failed commit leaves it so).
        var committingPrepared = false
        /// Rebuilt by replay (not bound by the settings of this run).
        var recovered = false

        static func == (a: Tx, b: Tx) -> Bool {
            a.sequence == b.sequence && a.state == b.state && a.messages == b.messages && a.bytes == b.bytes
                && a.pendingPuts == b.pendingPuts && a.pendingBytes == b.pendingBytes && a.deadline == b.deadline
                && a.firstEntry == b.firstEntry && a.replyTo?.connection == b.replyTo?.connection
                && a.replyTo?.opaque == b.replyTo?.opaque && a.heuristic == b.heuristic && a.recovered == b.recovered
        }
    }

    /// An armed timeout, ordered by deadline then creation.
    struct Timer: Comparable {
        var deadline: Instant
        var sequence: UInt64
        var slot: TxSlot
        static func < (a: Timer, b: Timer) -> Bool { (a.deadline, a.sequence) < (b.deadline, b.sequence) }
        static func == (a: Timer, b: Timer) -> Bool { a.deadline == b.deadline && a.sequence == b.sequence }
    }

    public let settings: Settings
    var transactions: [TxSlot: Tx] = [:]
    /// Armed timeouts, sorted (a bounded deadline queue; no hashed wheel needed).
    var timers: [Timer] = []
    public internal(set) var heuristicRecords: [TxHeuristicRecord] = []
    public internal(set) var counters = TxCounters()
    /// Body bytes held or reserved by all transactions.
    public internal(set) var heldBytes = 0
    var nextSequence: UInt64 = 1
    /// The key, connection and slot of the last admitted put (a cache: the slot may be gone).
    var lastPutSlot: (key: String, connection: ConnectionID, slot: TxSlot)?
    /// The last key a command named, parsed (a cache).
    var lastParsedKey: (key: String, id: TransactionId?)?

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    // MARK: - Queries

    public var openTransactionCount: Int { transactions.count }
    public var armedTimerCount: Int { timers.count }

    /// The state of the transaction in `slot`, nil when none is held.
    public func state(of slot: TxSlot) -> TxState? { transactions[slot]?.state }

    /// Every held transaction's slot, in creation order.
    public var slots: [TxSlot] {
        transactions.sorted { $0.value.sequence < $1.value.sequence }.map(\.key)
    }

    /// The earliest armed timeout: the driver calls `timerFired(now:)` at or after it.
    public var nextDeadline: Instant? { timers.first?.deadline }

    /// The position of the oldest first entry of any held transaction (in flight, prepared or
    /// committing): a checkpoint may not be newer (§4.4). nil when none has an entry.
    public var oldestOpenPosition: TxJournalPosition? {
        transactions.values.compactMap(\.firstEntry).min()
    }

    /// The position of the first redo-log entry of the transaction in `slot`, while it is held.
    public func firstEntry(of slot: TxSlot) -> TxJournalPosition? { transactions[slot]?.firstEntry }

    /// Prepared XA transactions (creation order) and then heuristic records (their order) whose
    /// unique qualifier equals `uniqueQualifier`, or all when it is nil: RECOVER's list (§4.2).
    public func recoverList(uniqueQualifier: String?) -> [TransactionId] {
        func matches(_ id: TransactionId) -> Bool { uniqueQualifier == nil || id.uniqueQualifier == uniqueQualifier }
        let prepared = transactions.filter { $0.value.state == .prepared && $0.key.id.isXA && matches($0.key.id) }
            .sorted { $0.value.sequence < $1.value.sequence }.map(\.key.id)
        return prepared + heuristicRecords.map(\.id).filter(matches)
    }

    // MARK: - The transaction command (§4.2)

    public mutating func handle(_ command: TransactionCommand, from connection: ConnectionID, now: Instant) -> [TxAction] {
        let opaque = command.opaque
        // END: nothing, not even an answer (the client sends it without waiting).
        if command.type == .end { return [] }
        let parsed: TransactionId?
        if let last = lastParsedKey, last.key == command.transactionKey {
            // A transaction's commands follow each other (BEGIN … COMMIT): parsed once.
            parsed = last.id
        } else {
            do {
                parsed = try TransactionId.parse(command.transactionKey, maxKeyBytes: settings.maxKeyBytes)
            } catch {
                return [.reply(connection, Self.failure(error.text, opaque))]
            }
            lastParsedKey = (command.transactionKey, parsed)
        }
        switch command.type {
        case .end: return []
        case .recover:
            let keys = recoverList(uniqueQualifier: command.uniqueQualifier).map(\.key)
            return [.reply(connection, ResultResponse(code: StatusCode.success, text: keys.joined(separator: "\r\n"), opaque: opaque))]
        case .forget:
            guard let id = parsed else {
                return [.reply(connection, Self.failure(XACode.text(XACode.noSuchTransaction, "null is not a valid xid"), opaque))]
            }
            guard id.isXA else {
                return [.reply(connection, Self.failure(XACode.text(XACode.noSuchTransaction, "\(id.key) is not a valid xid"), opaque))]
            }
            heuristicRecords.removeAll { $0.id == id }
            return [.reply(connection, Self.success(opaque))]
        case .begin:
            guard let id = parsed else {
                return [.reply(connection, Self.failure("Illegal transaction key:null (BEGIN needs a TX: or XID: key)", opaque))]
            }
            return begin(id, from: connection, timeoutSeconds: command.timeoutSeconds, opaque: opaque, now: now)
        case .prepare:
            return prepare(parsed, from: connection, opaque: opaque)
        case .commitOnePhase, .commitTwoPhase:
            counters.txCommit += 1
            return commit(parsed, from: connection, onePhase: command.type == .commitOnePhase, opaque: opaque)
        case .rollback:
            counters.txRollback += 1
            return rollback(parsed, from: connection, opaque: opaque)
        }
    }

    mutating func begin(_ id: TransactionId, from connection: ConnectionID, timeoutSeconds: Int32?, opaque: Int32,
                        now: Instant) -> [TxAction] {
        counters.txBegin += 1
        if id.isXA { counters.txXABegin += 1 }
        let slot = TxSlot(connection: id.isXA ? nil : connection, id: id)
        // Idempotent: a second BEGIN changes nothing (not even the timeout).
        if transactions[slot] != nil { return [.reply(connection, Self.success(opaque))] }
        guard transactions.count < settings.maxOpenTransactions else {
            return [.reply(connection, Self.failure(
                "Cannot begin transaction '\(id.key)': the broker already holds \(transactions.count) open transactions "
                    + "(maxOpenTransactions)", opaque))]
        }
        var deadline: Instant?
        if let seconds = timeoutSeconds, seconds > 0 {
            guard timers.count < settings.maxTxTimeoutTimerCapacity else {
                // The timer's refusal, as MetaQ answers it; the transaction is not created.
                return [.reply(connection, Self.failure(
                    "Timer size \(timers.count) is great than maxTimerCapacity \(settings.maxTxTimeoutTimerCapacity)", opaque))]
            }
            let capped = min(seconds, settings.maxTxTimeoutInSeconds)
            deadline = now.adding(milliseconds: Int64(capped) * 1000)
        }
        let sequence = nextSequence
        nextSequence += 1
        transactions[slot] = Tx(sequence: sequence, state: .started, deadline: deadline)
        if let deadline { insertTimer(Timer(deadline: deadline, sequence: sequence, slot: slot)) }
        return [.reply(connection, Self.success(opaque))]
    }

    mutating func prepare(_ parsed: TransactionId?, from connection: ConnectionID, opaque: Int32) -> [TxAction] {
        let slot: TxSlot
        switch lookup(parsed, from: connection) {
        case .failure(let error): return [.reply(connection, Self.failure(error.commandText, opaque))]
        case .success(let found): slot = found
        }
        let tx = transactions[slot]!
        guard slot.id.isXA else {
            return [.reply(connection, Self.failure(
                XACode.text(XACode.resourceManagerError, "Prepare not implemented on Local Transactions."), opaque))]
        }
        if let refusal = busyRefusal(tx, slot.id) { return [.reply(connection, Self.failure(refusal, opaque))] }
        switch tx.state {
        case .started, .inUse:
            if tx.messages.isEmpty {
                // No work: read-only, and the transaction is finished.
                var actions = [TxAction.reply(connection, ResultResponse(code: StatusCode.success, text: "\(XACode.readOnly)", opaque: opaque))]
                actions.append(contentsOf: remove(slot))
                return actions
            }
            cancelTimer(slot)
            transactions[slot]!.state = .prepared
            return [.journal(.operation(type: .xaPrepare, wasPrepared: false, transactionId: slot.id.key, locations: []),
                             force: true, reply: connection,
                             ResultResponse(code: StatusCode.success, text: "\(XACode.ok)", opaque: opaque))]
        case .prepared, .committing:
            return [.reply(connection, Self.failure(XACode.text(XACode.protocolError, "Cannot call prepare now."), opaque))]
        }
    }

    mutating func commit(_ parsed: TransactionId?, from connection: ConnectionID, onePhase: Bool, opaque: Int32) -> [TxAction] {
        let slot: TxSlot
        switch lookup(parsed, from: connection) {
        case .failure(let error): return [.reply(connection, Self.failure(error.commandText, opaque))]
        case .success(let found): slot = found
        }
        let tx = transactions[slot]!
        if let refusal = busyRefusal(tx, slot.id) { return [.reply(connection, Self.failure(refusal, opaque))] }
        var wasPrepared = false
        if slot.id.isXA {
            if tx.state == .prepared {
                // Two-phase, or one-phase of a prepared branch (accepted, logged as was_prepared).
                wasPrepared = true
            } else if !onePhase {
                return [.reply(connection, Self.failure(XACode.text(
                    XACode.protocolError, "Cannot do 2 phase commit if the transaction has not been prepared."), opaque))]
            }
        }
        // (A local transaction commits on either COMMIT type, as in MetaQ.)
        if tx.messages.isEmpty {
            // No work: finished, nothing to journal.
            var actions = [TxAction.reply(connection, Self.success(opaque))]
            actions.append(contentsOf: remove(slot))
            return actions
        }
        return [.commit(startCommit(slot, wasPrepared: wasPrepared, replyTo: (connection, opaque), heuristic: false))]
    }

    mutating func rollback(_ parsed: TransactionId?, from connection: ConnectionID, opaque: Int32) -> [TxAction] {
        let slot: TxSlot
        switch lookup(parsed, from: connection) {
        case .failure(let error): return [.reply(connection, Self.failure(error.commandText, opaque))]
        case .success(let found): slot = found
        }
        if transactions[slot]!.state == .committing {
            return [.reply(connection, Self.failure(committingText(slot.id), opaque))]
        }
        return rollBack(slot, reply: (connection, Self.success(opaque)))
    }

    // MARK: - Shared steps

    struct LookupError: Error {
        /// An XAException code, or nil for a plain message.
        var code: Int32?
        var message: String
        /// The text of a `transaction` answer.
        var commandText: String { code.map { XACode.text($0, message) } ?? message }
    }

    /// MetaQ's `getTransaction`: a local key in the connection's scope, an XA key broker-wide,
    /// then the heuristic records, then "not started".
    func lookup(_ parsed: TransactionId?, from connection: ConnectionID) -> Result<TxSlot, LookupError> {
        guard let id = parsed else { return .failure(LookupError(code: nil, message: "Local transaction 'null' has not been started.")) }
        guard id.isXA else {
            let slot = TxSlot(connection: connection, id: id)
            if transactions[slot] != nil { return .success(slot) }
            return .failure(LookupError(code: nil, message: "Local transaction '\(id.key)' has not been started."))
        }
        let slot = TxSlot(connection: nil, id: id)
        if transactions[slot] != nil { return .success(slot) }
        if let record = heuristicRecords.first(where: { $0.id == id }) {
            switch record.outcome {
            case .committed:
                return .failure(LookupError(code: XACode.heuristicCommit, message: "XA transaction '\(id.key)' has been heuristically committed."))
            case .rolledBack:
                return .failure(LookupError(code: XACode.heuristicRollback, message: "XA transaction '\(id.key)' has been heuristically rolled back."))
            case .completed:
                return .failure(LookupError(code: XACode.heuristicHazard, message: "XA transaction '\(id.key)' has been heuristically completed."))
            }
        }
        return .failure(LookupError(code: XACode.noSuchTransaction, message: "XA transaction '\(id.key)' has not been started."))
    }

    func committingText(_ id: TransactionId) -> String {
        id.isXA ? XACode.text(XACode.protocolError, "XA transaction '\(id.key)' is being committed.")
            : "Local transaction '\(id.key)' is being committed."
    }

    /// Why PREPARE/COMMIT must wait: a commit in progress, or puts not yet journaled.
    func busyRefusal(_ tx: Tx, _ id: TransactionId) -> String? {
        if tx.state == .committing { return committingText(id) }
        if tx.pendingPuts > 0 {
            let text = "Transaction '\(id.key)' has \(tx.pendingPuts) put(s) not yet stored; wait for their answers."
            return id.isXA ? XACode.text(XACode.protocolError, text) : text
        }
        return nil
    }

    mutating func startCommit(_ slot: TxSlot, wasPrepared: Bool, replyTo: (ConnectionID, Int32)?, heuristic: Bool) -> TxCommitPlan {
        cancelTimer(slot)
        transactions[slot]!.state = .committing
        transactions[slot]!.committingPrepared = wasPrepared
        transactions[slot]!.replyTo = replyTo.map { (connection: $0.0, opaque: $0.1) }
        transactions[slot]!.heuristic = heuristic
        return plan(for: slot, operation: slot.id.isXA ? .xaCommit : .localCommit, wasPrepared: wasPrepared, heuristic: heuristic)
    }

    /// The messages grouped by partition (partitions in order, messages in put order).
    func plan(for slot: TxSlot, operation: TxOperationType, wasPrepared: Bool, heuristic: Bool) -> TxCommitPlan {
        // Most transactions write to one partition or a few: a run of messages to the same one
        // joins its batch without hashing the partition.
        var batches: [TxBatch] = []
        var last = -1
        for held in transactions[slot]!.messages {
            if last >= 0, batches[last].partition == held.partition {
                batches[last].messages.append(held.message)
                continue
            }
            if let found = batches.firstIndex(where: { $0.partition == held.partition }) {
                last = found
                batches[found].messages.append(held.message)
            } else {
                last = batches.count
                batches.append(TxBatch(partition: held.partition, messages: [held.message]))
            }
        }
        batches.sort { $0.partition < $1.partition }
        return TxCommitPlan(slot: slot, operation: operation, wasPrepared: wasPrepared, batches: batches, heuristic: heuristic)
    }

    /// Finishes `slot` by rollback: a rollback entry when it has journaled entries (MetaQ writes
    /// none for a transaction without messages), the answer after it, then `.ended`.
    mutating func rollBack(_ slot: TxSlot, reply: (ConnectionID, ResultResponse)?, journalEvenIfEmpty: Bool = false) -> [TxAction] {
        let tx = transactions[slot]!
        var actions: [TxAction] = []
        if tx.firstEntry != nil || !tx.messages.isEmpty || journalEvenIfEmpty {
            let entry = TxJournalEntry.operation(type: slot.id.isXA ? .xaRollback : .localRollback, wasPrepared: false,
                                                 transactionId: slot.id.key, locations: [])
            actions.append(.journal(entry, force: true, reply: reply?.0, reply?.1))
        } else if let reply {
            actions.append(.reply(reply.0, reply.1))
        }
        actions.append(contentsOf: remove(slot))
        return actions
    }

    /// Forgets `slot` (timer, bytes) and says `.ended` when it had a journal entry.
    mutating func remove(_ slot: TxSlot) -> [TxAction] {
        guard let tx = transactions[slot] else { return [] }
        cancelTimer(slot)
        transactions[slot] = nil
        heldBytes -= tx.bytes + tx.pendingBytes
        if let first = tx.firstEntry { return [.ended(slot.id, firstEntry: first)] }
        return []
    }

    mutating func insertTimer(_ timer: Timer) {
        timers.insert(timer, at: timerIndex(timer))
    }

    mutating func cancelTimer(_ slot: TxSlot) {
        guard let tx = transactions[slot], let deadline = tx.deadline else { return }
        let probe = Timer(deadline: deadline, sequence: tx.sequence, slot: slot)
        let index = timerIndex(probe)
        if index < timers.count, timers[index] == probe { timers.remove(at: index) }
        transactions[slot]!.deadline = nil
    }

    /// The first index whose timer is not before `timer` (binary search).
    func timerIndex(_ timer: Timer) -> Int {
        var low = 0, high = timers.count
        while low < high {
            let mid = (low + high) / 2
            if timers[mid] < timer { low = mid + 1 } else { high = mid }
        }
        return low
    }

    static func success(_ opaque: Int32) -> ResultResponse {
        ResultResponse(code: StatusCode.success, body: [], opaque: opaque)
    }

    static func failure(_ text: String, _ opaque: Int32) -> ResultResponse {
        ResultResponse(code: StatusCode.internalServerError, text: text, opaque: opaque)
    }
}

/// Why an operator's heuristic operation was refused (MetaQ ignores these silently).
public struct TxOperatorError: Error, Equatable, Sendable {
    public var text: String
}
