// The entries of the transaction redo log (reference §4.3) as values. The byte codec
// (`TxJournalCodec`, protobuf by hand) and the files (`StoreCore.TxJournal`) build on these;
// `TransactionMachine` replays them at start-up (§4.5).

/// The operation kinds of a `TransactionOperation` entry, with the original's protobuf numbers.
public enum TxOperationType: Int32, Sendable, Equatable, CaseIterable {
    case xaPrepare = 1
    case xaCommit = 2
    case xaRollback = 3
    case localCommit = 4
    case localRollback = 5

    public var isCommit: Bool { self == .xaCommit || self == .localCommit }
    public var isRollback: Bool { self == .xaRollback || self == .localRollback }
}

/// Where a committed transaction's batch for one partition was appended: one element of a commit
/// entry's attachment (`int64 offset | int32 length | int32 checksum | int32 descLen | desc`).
public struct TxPartitionLocation: Sendable, Equatable {
    /// Absolute byte offset of the batch's first record in the partition.
    public var offset: Int64
    /// Bytes of the whole appended batch (records with their headers).
    public var length: Int32
    /// `CRC32(batch bytes) & 0x7FFFFFFF`.
    public var checksum: Int32
    public var topic: String
    public var partition: Int32

    public init(offset: Int64, length: Int32, checksum: Int32, topic: String, partition: Int32) {
        self.offset = offset
        self.length = length
        self.checksum = checksum
        self.topic = topic
        self.partition = partition
    }

    /// `<topic>-<partition>`, the attachment's description field.
    public var description: String { "\(topic)-\(partition)" }
}

/// One entry of the redo log.
public enum TxJournalEntry: Sendable, Equatable {
    /// A put inside a transaction: its message id and the put's full wire encoding
    /// (`put topic p len flag checksum txKey opaque␍␊data`; old-format puts re-encoded with
    /// checksum -1).
    case appendMessage(messageId: Int64, putCommand: [UInt8])
    /// Prepare, commit or rollback of `transactionId` (`TX:…` or `XID:…`). Commit entries carry
    /// the locations their batches were appended at (the attachment; `data_length` is its size).
    case operation(type: TxOperationType, wasPrepared: Bool, transactionId: String,
                   locations: [TxPartitionLocation])

    /// The protobuf `force` flag: the entry asked for an fsync before its answer.
    /// (Stored for fidelity; durability is decided by `flushTxLogAtCommit`.)
}

/// Where an entry starts: the redo file's number (`redo.<n>`) and the byte offset in it.
public struct TxJournalPosition: Sendable, Hashable, Comparable {
    public var file: Int
    public var offset: Int64

    public init(file: Int, offset: Int64) {
        self.file = file
        self.offset = offset
    }

    public static func < (a: Self, b: Self) -> Bool {
        (a.file, a.offset) < (b.file, b.offset)
    }
}
