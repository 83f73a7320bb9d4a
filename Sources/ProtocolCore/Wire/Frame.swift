/// Every frame of MetaQ's TCP protocol (reference §1.3), requests and responses alike: both
/// directions share one codec (§1.1), so one decoder reads either side of a connection.
public enum Frame: Equatable, Sendable {
    case put(PutCommand)
    case get(GetCommand)
    case offset(OffsetCommand)
    case stats(StatsCommand)
    case version(VersionCommand)
    /// `quit␍␊`: the server closes the connection without answering (§1.4.5).
    case quit
    case transaction(TransactionCommand)
    case sync(SyncCommand)
    case result(ResultResponse)
    case value(ValueResponse)

    /// The opaque the answer must carry; nil for `quit`, which is not answered.
    public var opaque: Int32? {
        switch self {
        case .put(let c): return c.opaque
        case .get(let c): return c.opaque
        case .offset(let c): return c.opaque
        case .stats(let c): return c.responseOpaque
        case .version(let c): return c.responseOpaque
        case .quit: return nil
        case .transaction(let c): return c.opaque
        case .sync(let c): return c.opaque
        case .result(let r): return r.opaque
        case .value(let v): return v.opaque
        }
    }
}

/// The opaque a response carries when its request had none (`stats`, `version`; §1.4.4, §1.4.6).
public let defaultResponseOpaque: Int32 = .max

/// `put <topic> <partition> <len> <flag> [<checksum>] [<txKey>] <opaque>␍␊<body>` (§1.4.1).
/// The four forms: checksum present or not (old clients), transaction key present or not.
public struct PutCommand: Equatable, Sendable {
    public var topic: String
    /// Partition inside the broker; -1 asks the broker to choose (§1.4.1).
    public var partition: Int32
    public var flag: Int32
    /// `CRC32(body) & 0x7FFFFFFF`; nil for the old 6/7-token forms (and -1 disables the check).
    public var checksum: Int32?
    public var transactionKey: String?
    /// Setting it forgets `bodyChecksum`.
    public var body: [UInt8] { didSet { bodyChecksum = nil } }
    public var opaque: Int32
    /// `CRC32(body) & 0x7FFFFFFF` as the decoder computed it while the bytes were at hand (on a
    /// connection's loop, not the node's); nil when nobody computed it. Not part of the wire form
    /// and not compared by `==`. The broker machine still decides what a mismatch means.
    public var bodyChecksum: Int32?

    public static func == (a: PutCommand, b: PutCommand) -> Bool {
        a.topic == b.topic && a.partition == b.partition && a.flag == b.flag && a.checksum == b.checksum
            && a.transactionKey == b.transactionKey && a.body == b.body && a.opaque == b.opaque
    }

    public init(topic: String, partition: Int32, flag: Int32, checksum: Int32?,
                transactionKey: String? = nil, body: [UInt8], opaque: Int32) {
        self.topic = topic
        self.partition = partition
        self.flag = flag
        self.checksum = checksum
        self.transactionKey = transactionKey
        self.body = body
        self.opaque = opaque
    }

    /// Whether the broker must verify the body against `checksum` (absent or -1 means no).
    public var requiresChecksumCheck: Bool { checksum.map { $0 != -1 } ?? false }
}

/// `get <topic> <group> <partition> <offset> <maxSize> <opaque>` (§1.4.2).
public struct GetCommand: Equatable, Sendable {
    public var topic: String
    public var group: String
    public var partition: Int32
    public var offset: Int64
    public var maxSize: Int32
    public var opaque: Int32

    public init(topic: String, group: String, partition: Int32, offset: Int64, maxSize: Int32, opaque: Int32) {
        self.topic = topic
        self.group = group
        self.partition = partition
        self.offset = offset
        self.maxSize = maxSize
        self.opaque = opaque
    }
}

/// `offset <topic> <group> <partition> <offset> <opaque>` (§1.4.3).
public struct OffsetCommand: Equatable, Sendable {
    public var topic: String
    public var group: String
    public var partition: Int32
    public var offset: Int64
    public var opaque: Int32

    public init(topic: String, group: String, partition: Int32, offset: Int64, opaque: Int32) {
        self.topic = topic
        self.group = group
        self.partition = partition
        self.offset = offset
        self.opaque = opaque
    }
}

/// `stats [<item>] [<opaque>]` (§1.4.6): one token after `stats` is the item, not an opaque.
public struct StatsCommand: Equatable, Sendable {
    /// nil or "" = system stats; otherwise `topics`, `offsets`, `realtime`, `help`, `reset`,
    /// `config` or a topic name.
    public var item: String?
    public var opaque: Int32?

    public init(item: String?, opaque: Int32?) {
        self.item = item
        self.opaque = opaque
    }

    public var responseOpaque: Int32 { opaque ?? defaultResponseOpaque }
}

/// `version [<opaque>]` — also the clients' heartbeat (§1.4.4).
public struct VersionCommand: Equatable, Sendable {
    public var opaque: Int32?

    public init(opaque: Int32?) { self.opaque = opaque }

    public var responseOpaque: Int32 { opaque ?? defaultResponseOpaque }
}

/// Transaction operation types of `transaction` (§4.2).
public enum TransactionType: String, CaseIterable, Equatable, Sendable {
    case begin = "BEGIN"
    case prepare = "PREPARE"
    case commitOnePhase = "COMMIT_ONE_PHASE"
    case commitTwoPhase = "COMMIT_TWO_PHASE"
    case rollback = "ROLLBACK"
    case recover = "RECOVER"
    case forget = "FORGET"
    case end = "END"
}

/// `transaction <txKey> <sessionId> <TYPE> [<timeout>] [<uniqueQualifier>] <opaque>` (§4.2).
public struct TransactionCommand: Equatable, Sendable {
    /// `TX:<sessionId>:<n>`, `XID:…`, or `null` (RECOVER).
    public var transactionKey: String
    public var sessionId: String
    public var type: TransactionType
    /// Seconds; sent by the Java client only on BEGIN and only when > 0.
    public var timeoutSeconds: Int32?
    public var uniqueQualifier: String?
    public var opaque: Int32

    public init(transactionKey: String, sessionId: String, type: TransactionType,
                timeoutSeconds: Int32? = nil, uniqueQualifier: String? = nil, opaque: Int32) {
        self.transactionKey = transactionKey
        self.sessionId = sessionId
        self.type = type
        self.timeoutSeconds = timeoutSeconds
        self.uniqueQualifier = uniqueQualifier
        self.opaque = opaque
    }
}

/// `sync <topic> <partition> <len> <flag> <msgId> [<checksum>] <opaque>␍␊<body>` — master to
/// slave replication (§1.3, §6.2).
public struct SyncCommand: Equatable, Sendable {
    public var topic: String
    public var partition: Int32
    public var flag: Int32
    public var msgId: Int64
    public var checksum: Int32?
    public var body: [UInt8]
    public var opaque: Int32

    public init(topic: String, partition: Int32, flag: Int32, msgId: Int64, checksum: Int32?,
                body: [UInt8], opaque: Int32) {
        self.topic = topic
        self.partition = partition
        self.flag = flag
        self.msgId = msgId
        self.checksum = checksum
        self.body = body
        self.opaque = opaque
    }
}

/// MetaQ's status codes (`HttpStatus.java`, §1.2). Only 200 means success to a client.
public enum StatusCode {
    public static let success: Int32 = 200
    public static let moved: Int32 = 301
    public static let badRequest: Int32 = 400
    public static let unauthorized: Int32 = 401
    public static let forbidden: Int32 = 403
    public static let notFound: Int32 = 404
    public static let internalServerError: Int32 = 500
    public static let serviceUnavailable: Int32 = 503
    public static let gatewayTimeout: Int32 = 504
}

/// `result <code> <bodyLength> <opaque>␍␊<body>` (§1.2).
public struct ResultResponse: Equatable, Sendable {
    public var code: Int32
    public var body: [UInt8]
    public var opaque: Int32

    public init(code: Int32, body: [UInt8], opaque: Int32) {
        self.code = code
        self.body = body
        self.opaque = opaque
    }

    public init(code: Int32, text: String, opaque: Int32) {
        self.init(code: code, body: Array(text.utf8), opaque: opaque)
    }

    /// The body as UTF-8 text (error texts, `msgId partition offset`, stats).
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// `value <totalLength> <opaque>␍␊<records>` — a raw slice of a partition (§1.2, §1.4.2).
public struct ValueResponse: Equatable, Sendable {
    public var body: [UInt8]
    public var opaque: Int32

    public init(body: [UInt8], opaque: Int32) {
        self.body = body
        self.opaque = opaque
    }
}
