/// MetaQ's znode paths and the data written in them (reference §3.1), under a configurable root
/// (`zk.zkRoot`, default `/meta`, §8.2). Every path the broker, producers and consumers touch is
/// built here, so the layout is written once.
public struct MetaZooKeeperLayout: Equatable, Hashable, Sendable {
    /// Without a trailing slash (`/meta`); `/` becomes the empty string so paths read `/brokers/…`.
    public let root: String

    public init(root: String = "/meta") {
        var trimmed = root
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.root = trimmed
    }

    // MARK: brokers (§3.1, §3.2)

    public var brokerIdsPath: String { root + "/brokers/ids" }
    /// Persistent; data `meta://host:port` of the master (for pre-1.4.3 clients).
    public func brokerPath(_ brokerId: Int) -> String { brokerIdsPath + "/\(brokerId)" }
    /// Ephemeral; data `meta://host:port`.
    public func masterPath(_ brokerId: Int) -> String { brokerPath(brokerId) + "/master" }
    /// Ephemeral; data the decimal CRC32 of the master's `server.ini`.
    public func masterConfigChecksumPath(_ brokerId: Int) -> String { brokerPath(brokerId) + "/master_config_checksum" }
    public var topicsPath: String { root + "/brokers/topics" }
    public var topicsPubPath: String { root + "/brokers/topics-pub" }
    public var topicsSubPath: String { root + "/brokers/topics-sub" }
    /// Deprecated registration (data: decimal partition count), still read by old clients.
    public func topicPath(_ topic: String) -> String { topicsPath + "/" + topic }
    public func topicPubPath(_ topic: String) -> String { topicsPubPath + "/" + topic }
    public func topicSubPath(_ topic: String) -> String { topicsSubPath + "/" + topic }
    /// The child name a master registers under a topic node: `<brokerId>-m`.
    public static func masterNodeName(_ brokerId: Int) -> String { "\(brokerId)-m" }
    /// `ids/<id>/slave<slaveId>` (§3.1, §6.1).
    public func slavePath(_ brokerId: Int, slaveId: Int) -> String { brokerPath(brokerId) + "/slave\(slaveId)" }
    /// A slave's child of the topic nodes: `<id>-s<slaveId>` (§3.1).
    public static func slaveNodeName(_ brokerId: Int, slaveId: Int) -> String { "\(brokerId)-s\(slaveId)" }

    // MARK: consumers (§3.1, §3.4, §5.4)

    public func groupPath(_ group: String) -> String { root + "/consumers/" + group }
    public func consumerIdsPath(_ group: String) -> String { groupPath(group) + "/ids" }
    /// Ephemeral; data the comma-separated subscribed topics.
    public func consumerIdPath(_ group: String, _ consumerId: String) -> String { consumerIdsPath(group) + "/" + consumerId }
    public func ownersPath(_ group: String, _ topic: String) -> String { groupPath(group) + "/owners/" + topic }
    /// Ephemeral; data the owner's consumer id string.
    public func ownerPath(_ group: String, _ topic: String, _ partition: BrokerPartition) -> String {
        ownersPath(group, topic) + "/" + partition.description
    }
    public func offsetsPath(_ group: String, _ topic: String) -> String { groupPath(group) + "/offsets/" + topic }
    /// Persistent; data `<msgId>-<offset>` (`StoredOffset`).
    public func offsetPath(_ group: String, _ topic: String, _ partition: BrokerPartition) -> String {
        offsetsPath(group, topic) + "/" + partition.description
    }

    /// Whether `name` can be a group, topic or consumer id: one znode name, one element of the ids
    /// node's comma list, and one wire token (§1.1) — non-empty, no `/`, `,`, space, CR or LF.
    public static func isName(_ name: String) -> Bool {
        !name.isEmpty && !name.utf8.contains { byte in
            byte == UInt8(ascii: "/") || byte == UInt8(ascii: ",") || byte == UInt8(ascii: " ")
                || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")
        }
    }

    /// The ancestors of `path`, outermost first, without `/` itself: `/a/b/c` → `/a`, `/a/b`.
    public static func ancestors(of path: String) -> [String] {
        var result: [String] = []
        var current = ""
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        for part in parts.dropLast() {
            current += "/" + part
            result.append(current)
        }
        return result
    }
}

/// A partition of the cluster: partition `partition` of broker `brokerId`, written `"<brokerId>-<partition>"`
/// in znodes and `ConsumerConfig.partition` (§1.7, §3.1).
public struct BrokerPartition: Hashable, Comparable, Sendable, CustomStringConvertible, LosslessStringConvertible {
    public var brokerId: Int
    public var partition: Int

    public init(brokerId: Int, partition: Int) {
        self.brokerId = brokerId
        self.partition = partition
    }

    /// Parses `"<brokerId>-<partition>"` (both non-negative decimals).
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let broker = Int(parts[0]), let partition = Int(parts[1]),
              broker >= 0, partition >= 0 else { return nil }
        self.init(brokerId: broker, partition: partition)
    }

    public var description: String { "\(brokerId)-\(partition)" }

    /// Numeric order by (broker, partition): the producer's order (§3.3). The consumer's rebalance
    /// sorts the strings instead (§3.4), where `0-10` comes before `0-2`.
    public static func < (a: BrokerPartition, b: BrokerPartition) -> Bool {
        (a.brokerId, a.partition) < (b.brokerId, b.partition)
    }
}

/// The JSON of a `topics-pub`/`topics-sub` child (§3.1): `{"numParts":2,"broker":"0-m"}`.
public struct TopicRegistration: Equatable, Hashable, Sendable {
    public var numParts: Int
    /// `"<brokerId>-m"` for a master, `"<brokerId>-s<slaveId>"` for a slave.
    public var broker: String

    public init(numParts: Int, broker: String) {
        self.numParts = numParts
        self.broker = broker
    }

    /// Exactly the original's bytes: keys in this order, no spaces.
    public var json: String { "{\"numParts\":\(numParts),\"broker\":\"\(broker)\"}" }

    /// Reads the two fields from a flat JSON object in any key order and spacing (other writers
    /// may format differently). Nil when a field is missing or malformed.
    public init?(json: String) {
        guard let parts = Self.intField("numParts", in: json), parts >= 0,
              let broker = Self.stringField("broker", in: json) else { return nil }
        self.init(numParts: parts, broker: broker)
    }

    /// The broker id of the `broker` field (`"3-m"` → 3, `"3-s0"` → 3).
    public var brokerId: Int? { BrokerNodeName(broker)?.brokerId }

    private static func isSpace(_ c: Character) -> Bool { c == " " || c == "\t" || c == "\n" || c == "\r" }

    /// The text after `"key"` and its colon, spaces skipped.
    private static func valueStart(_ key: String, in json: String) -> Substring? {
        let needle = Array("\"\(key)\"")
        let chars = Array(json)
        guard chars.count >= needle.count else { return nil }
        for start in 0...(chars.count - needle.count) where chars[start..<(start + needle.count)].elementsEqual(needle) {
            var rest = json.dropFirst(start + needle.count).drop(while: isSpace)
            guard rest.first == ":" else { return nil }
            rest = rest.dropFirst().drop(while: isSpace)
            return rest
        }
        return nil
    }

    private static func intField(_ key: String, in json: String) -> Int? {
        guard let rest = valueStart(key, in: json) else { return nil }
        return Int(rest.prefix(while: { $0.isNumber || $0 == "-" }))
    }

    private static func stringField(_ key: String, in json: String) -> String? {
        guard let rest = valueStart(key, in: json), rest.first == "\"" else { return nil }
        let body = rest.dropFirst()
        guard let end = body.firstIndex(of: "\"") else { return nil }
        return String(body[..<end])
    }
}

/// The name of a broker's child under a topic node: `<brokerId>-m` (master) or `<brokerId>-s<n>` (slave).
public struct BrokerNodeName: Equatable, Hashable, Sendable {
    public var brokerId: Int
    /// Nil for the master.
    public var slaveId: Int?

    public init?(_ name: String) {
        guard let dash = name.firstIndex(of: "-"), let broker = Int(name[..<dash]), broker >= 0 else { return nil }
        let role = name[name.index(after: dash)...]
        if role == "m" {
            slaveId = nil
        } else if role.first == "s", let slave = Int(role.dropFirst()), slave >= 0 {
            slaveId = slave
        } else {
            return nil
        }
        brokerId = broker
    }

    public var isMaster: Bool { slaveId == nil }
}

/// A consumer offset as ZkOffsetStorage writes it (§3.1, §5.4): `<msgId>-<offset>`, or a plain
/// `<offset>` from old clients. The msgId may be negative, so the text splits at the last `-`.
public struct StoredOffset: Equatable, Hashable, Sendable {
    public var msgId: Int64
    public var offset: Int64

    public init(msgId: Int64, offset: Int64) {
        self.msgId = msgId
        self.offset = offset
    }

    public var text: String { "\(msgId)-\(offset)" }

    public init?(text: String) {
        let trimmed = text.trimmingWhitespace
        if let plain = Int64(trimmed) {
            guard plain >= 0 else { return nil }
            self.init(msgId: -1, offset: plain)
            return
        }
        guard let dash = trimmed.lastIndex(of: "-"), dash != trimmed.startIndex,
              let id = Int64(trimmed[..<dash]), let offset = Int64(trimmed[trimmed.index(after: dash)...]),
              offset >= 0 else { return nil }
        self.init(msgId: id, offset: offset)
    }
}

extension String {
    var trimmingWhitespace: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        let head = drop(while: isSpace)
        var end = head.endIndex
        while end > head.startIndex, isSpace(head[head.index(before: end)]) { end = head.index(before: end) }
        return String(head[..<end])
    }
}
