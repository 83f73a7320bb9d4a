// The values `TransactionMachine` takes and returns (reference §4).

/// `javax.transaction.xa.XAException` error codes and `XAResource` results used on the wire
/// (§4.2): answers are `XAException:code=<n>,msg=<text>`, which the Java client parses back.
public enum XACode {
    public static let ok: Int32 = 0
    public static let readOnly: Int32 = 3
    public static let heuristicRollback: Int32 = 6
    public static let heuristicCommit: Int32 = 7
    public static let heuristicHazard: Int32 = 8
    public static let rollbackOther: Int32 = 104
    public static let resourceManagerError: Int32 = -3
    public static let noSuchTransaction: Int32 = -4
    public static let protocolError: Int32 = -6
    /// XAER_RMFAIL: the resource manager is unavailable (the transaction manager retries later).
    public static let resourceManagerFailure: Int32 = -7

    /// The body of a 500 answer for an XA error.
    public static func text(_ code: Int32, _ message: String) -> String {
        "XAException:code=\(code),msg=\(message)"
    }
}

/// Where a transaction lives: local transactions belong to the connection that began them (and
/// the session id inside their key), XA transactions to the broker (`connection` nil). Replayed
/// transactions have no connection.
public struct TxSlot: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var connection: ConnectionID?
    public var id: TransactionId

    public init(connection: ConnectionID?, id: TransactionId) {
        self.connection = connection
        self.id = id
    }

    public static func < (a: TxSlot, b: TxSlot) -> Bool {
        let ac = a.connection.map { Int64(bitPattern: $0.raw) } ?? -1
        let bc = b.connection.map { Int64(bitPattern: $0.raw) } ?? -1
        if ac != bc { return ac < bc }
        return a.id < b.id
    }

    public var description: String { "\(connection.map { "\($0)" } ?? "broker"):\(id.key)" }
}

/// The state of a transaction the machine holds (MetaQ's START/IN_USE/PREPARED, §4.2, plus the
/// time between a commit plan and its outcome). Finished transactions are not held.
public enum TxState: Equatable, Sendable {
    /// Begun, no message yet.
    case started
    /// At least one put admitted.
    case inUse
    /// XA only: the prepare entry is (being) journaled; only COMMIT and ROLLBACK move it on.
    case prepared
    /// A commit plan is out; the node reports `commitFinished` or `commitFailed`.
    case committing
}

/// One message held by an open transaction, in put order.
public struct TxMessage: Equatable, Sendable {
    public var messageId: Int64
    public var flag: Int32
    public var body: [UInt8]
    /// `CRC32.metaqChecksum(body)` when the put carried a checksum the broker verified (a
    /// commit then need not compute it again); not part of the message's identity.
    public var checksum: Int32?

    public init(messageId: Int64, flag: Int32, body: [UInt8], checksum: Int32? = nil) {
        self.messageId = messageId
        self.flag = flag
        self.body = body
        self.checksum = checksum
    }

    public static func == (a: TxMessage, b: TxMessage) -> Bool {
        a.messageId == b.messageId && a.flag == b.flag && a.body == b.body
    }

    /// Appends the message as a MetaQ record (§1.5): how it is stored at commit, and how recovery
    /// recognises and re-appends it.
    public func appendRecord(to bytes: inout [UInt8]) {
        Record.append(to: &bytes, msgId: messageId, flag: flag, payload: body, checksum: checksum ?? CRC32.metaqChecksum(body))
    }
}

extension Collection<TxMessage> {
    /// The messages as consecutive records: one partition's batch.
    public func records() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(reduce(0) { $0 + Record.size(payloadCount: $1.body.count) })
        for message in self { message.appendRecord(to: &bytes) }
        return bytes
    }
}

/// The messages of a committing transaction for one partition, in put order: appended as one
/// contiguous write (§2.4), described by one `TxPartitionLocation` of the commit entry.
public struct TxBatch: Equatable, Sendable {
    public var partition: TopicPartition
    public var messages: [TxMessage]

    public init(partition: TopicPartition, messages: [TxMessage]) {
        self.partition = partition
        self.messages = messages
    }
}

/// What a commit asks the node to do: append every batch (partitions in `TopicPartition` order),
/// write `entry(locations:)` to the redo log, wait until it is durable, then call
/// `TransactionMachine.commitFinished(slot)` (which returns the answer) or `commitFailed`.
public struct TxCommitPlan: Equatable, Sendable {
    public var slot: TxSlot
    public var operation: TxOperationType
    public var wasPrepared: Bool
    public var batches: [TxBatch]
    /// An operator's heuristic commit (no client waits; recorded for RECOVER until FORGET).
    public var heuristic: Bool

    public var transactionId: TransactionId { slot.id }

    /// The commit entry with the locations the batches were appended at (one per batch).
    public func entry(locations: [TxPartitionLocation]) -> TxJournalEntry {
        .operation(type: operation, wasPrepared: wasPrepared, transactionId: slot.id.key, locations: locations)
    }

    public var messageCount: Int { batches.reduce(0) { $0 + $1.messages.count } }
}

/// What the machine asks of the node, in order.
public enum TxAction: Equatable, Sendable {
    /// Send this answer now.
    case reply(ConnectionID, ResultResponse)
    /// Write `entry` to the redo log (`force`: the entry asks for an fsync, subject to
    /// `flushTxLogAtCommit`, §4.3), then send `reply` if there is one. A prepare's `0` must not
    /// go before the entry is durable.
    case journal(TxJournalEntry, force: Bool, reply: ConnectionID?, ResultResponse?)
    /// Carry out a commit (see `TxCommitPlan`).
    case commit(TxCommitPlan)
    /// A transaction's first redo-log entry is at `firstEntry`: its redo file must be kept
    /// (reference counted) until the matching `.ended`.
    case started(TransactionId, firstEntry: TxJournalPosition)
    /// A transaction that had journaled entries is finished (after the entries asked for before
    /// this action): its first entry no longer pins its redo file.
    case ended(TransactionId, firstEntry: TxJournalPosition)
    /// Replay found a commit entry: verify each location against its partition (re-append the
    /// batch from `plan` when it is missing or its CRC differs, §4.5). `plan` is nil when the
    /// replayed log no longer holds the transaction's messages (they precede the checkpoint, so
    /// the commit was verified by an earlier start).
    case verifyCommit(TxReplayedCommit)
    /// Something worth a log line (a journal entry replay could not use, a refused timer…).
    case notice(String)
}

/// A commit entry met during replay.
public struct TxReplayedCommit: Equatable, Sendable {
    public var transactionId: String
    public var operation: TxOperationType
    public var wasPrepared: Bool
    public var locations: [TxPartitionLocation]
    public var position: TxJournalPosition
    public var plan: TxCommitPlan?

    public init(transactionId: String, operation: TxOperationType, wasPrepared: Bool, locations: [TxPartitionLocation],
                position: TxJournalPosition, plan: TxCommitPlan?) {
        self.transactionId = transactionId
        self.operation = operation
        self.wasPrepared = wasPrepared
        self.locations = locations
        self.position = position
        self.plan = plan
    }
}

/// A put admitted into a transaction: the node assigns the message id, journals the
/// APPEND_MSG entry, then hands this back to `recordPut` (or to `putAbandoned` when it refuses
/// the put after all or the journal write fails). Its bytes are reserved meanwhile.
public struct TxPutTicket: Equatable, Sendable {
    public var slot: TxSlot
    /// Which incarnation of the slot admitted the put (a key reused after a rollback is another
    /// transaction).
    public var sequence: UInt64
    public var partition: TopicPartition
    public var flag: Int32
    public var body: [UInt8]
    /// The body's checksum as the broker verified it (nil: not verified, computed at commit).
    public var checksum: Int32?
}

public enum TxPutAdmission: Equatable, Sendable {
    case admitted(TxPutTicket)
    /// Answer the put with `result <code> … <text>` (§1.4.1).
    case refused(code: Int32, text: String)
}

public enum TxPutRecorded: Equatable, Sendable {
    /// Held for the commit; `started` is the transaction's first journal entry when this put was
    /// its first (the node tells the journal, as for `TxAction.started`).
    case recorded(started: TxJournalPosition?)
    /// The transaction ended while the put was journaled (rollback, timeout, closed connection):
    /// answer the put with this 500 text; its APPEND_MSG entry is inert (replay rolls it back).
    case refused(text: String)
}

/// The `tx_*` counters of system `stats` (§9), counted like MetaQ: `tx_begin` for every BEGIN
/// (XA too), `tx_xa_begin` also for XA, `tx_commit`/`tx_rollback` for every COMMIT/ROLLBACK
/// command (before the transaction is looked up, so refused ones count) and heuristic ones.
/// Rollbacks by timeout, connection close and recovery are not counted.
public struct TxCounters: Equatable, Sendable {
    public var txBegin: Int64 = 0
    public var txXABegin: Int64 = 0
    public var txCommit: Int64 = 0
    public var txRollback: Int64 = 0
    public init() {}
}

/// An XA transaction an operator finished by hand (MetaQ's JMX operations, §4.5 step 4): RECOVER
/// lists it and COMMIT/ROLLBACK of it answer the heuristic XAException until FORGET. Stored by the
/// journal in `heuristic.log` (as these values; MetaQ's Java serialization is not portable).
public struct TxHeuristicRecord: Equatable, Sendable {
    public enum Outcome: Int8, Equatable, Sendable, CaseIterable {
        case committed = 4
        case rolledBack = 5
        case completed = 6
    }

    public var id: TransactionId
    public var outcome: Outcome

    public init(id: TransactionId, outcome: Outcome) {
        self.id = id
        self.outcome = outcome
    }
}
