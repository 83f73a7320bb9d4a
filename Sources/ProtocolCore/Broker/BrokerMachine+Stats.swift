/// `stats [item]` (reference §1.4.6, §9). Items that need the runtime's facts (system, `topics`,
/// `offsets`, a topic name) go out as `.collectStats` and are answered on `.statsCollected`;
/// `help`, `reset` and `realtime` need nothing from the runtime and are answered at once;
/// `config` is sent by the runtime with its special framing (`.sendConfigFile`).
///
/// Beyond the original: the system item ends with `failed_partitions <n>` and the item
/// `failed_partitions` lists them (BrokerMachine+FailedPartitions.swift). MetaQ's Java client reads
/// a stats body as `key value` lines into a map, so an extra line is one more key to it; the
/// monitor's `offsets` parser counts tokens, so those lines keep their exact form.
///
/// Realtime statistics (`RealtimeStats`): `null` for a statistic nothing was recorded for since
/// the last reset, as the original prints.
enum StatsItem: Equatable, Sendable {
    case system, topics, offsets, realtime, help, reset, config, failedPartitions
    case topic(String)

    /// §1.4.6: nil or empty = system; the known words; anything else is a topic name.
    init(_ item: String?) {
        switch item ?? "" {
        case "": self = .system
        case "topics": self = .topics
        case "offsets": self = .offsets
        case "realtime": self = .realtime
        case "help": self = .help
        case "reset": self = .reset
        case "config": self = .config
        case "failed_partitions": self = .failedPartitions
        case let topic: self = .topic(topic)
        }
    }

    /// The item as handed to the runtime in `.collectStats` (nil = system).
    var wireName: String? {
        switch self {
        case .system: return nil
        case .topics: return "topics"
        case .offsets: return "offsets"
        case .realtime: return "realtime"
        case .help: return "help"
        case .reset: return "reset"
        case .config: return "config"
        case .failedPartitions: return "failed_partitions"
        case .topic(let name): return name
        }
    }
}

extension BrokerMachine {
    /// The `help` item's lines (§9).
    static let helpLines = [
        "*EMPTY* Returns broker info.",
        "help Returns this help.",
        "topics Returns every topic's partitions, message count, bytes and accept flags.",
        "offsets Returns every partition's min and max offset.",
        "realtime Returns realtime statistics of the last interval.",
        "config Returns broker's config file content.",
        "failed_partitions Returns the partitions that refuse writes after a disk error, since when and why.",
    ]

    mutating func handleStats(_ command: StatsCommand, from connection: ConnectionID) -> [Action] {
        let item = StatsItem(command.item)
        let opaque = command.responseOpaque
        switch item {
        case .config: return [.sendConfigFile(connection, opaque: opaque)]
        case .help: return [statsReply(connection, Self.helpLines, opaque)]
        case .failedPartitions: return [statsReply(connection, failedPartitionLines(), opaque)]
        case .reset:
            realtime.reset(nowMs: clockMs)
            return [statsReply(connection, ["reset ok"], opaque)]
        case .realtime:
            realtime.rollIfDue(nowMs: clockMs)
            let lines = RealtimeStats.Kind.allCases.map { kind in
                "realtime_\(kind.key) " + (realtime.total(kind).map { realtime.describe($0, nowMs: clockMs) } ?? "null")
            }
            return [statsReply(connection, lines, opaque)]
        case .system, .topics, .offsets, .topic:
            let token = token(for: .stats(connection, opaque: opaque, item))
            return [.collectStats(token: token, item: item.wireName)]
        }
    }

    mutating func completeStats(_ token: UInt64, _ snapshot: StatsSnapshot) -> [Action] {
        guard case .stats(let connection, let opaque, let item)? = pending.removeValue(forKey: token) else { return [] }
        let lines: [String]
        switch item {
        case .topics: lines = topicsLines(snapshot)
        case .offsets: lines = snapshot.sortedPartitions.map {
            "\($0.partition.topic) part \($0.partition.partition) min_offset \($0.minOffset) max_offset \($0.maxOffset)"
        }
        case .topic(let name):
            realtime.rollIfDue(nowMs: clockMs)
            lines = topicLines(name, snapshot)
        default: lines = systemLines(snapshot)
        }
        return [statsReply(connection, lines, opaque)]
    }

    /// System stats in exactly the order of §9's example, then our own `failed_partitions`.
    func systemLines(_ s: StatsSnapshot) -> [String] {
        let c = statsCounters
        let topics = Set(s.topicsWithData).union(s.configuredTopics).count
        let pairs: [(String, String)] = [
            ("pid", "\(s.pid)"), ("broker_id", "\(settings.brokerId)"), ("port", "\(settings.port)"),
            ("uptime", "\(s.uptimeSeconds)"), ("version", settings.version), ("slave", "\(s.isSlave)"),
            ("curr_connections", "\(s.currentConnections)"), ("threads", "\(s.threads)"),
            ("cmd_put", "\(c.cmdPut)"), ("cmd_get", "\(c.cmdGet)"), ("cmd_offset", "\(c.cmdOffset)"),
            ("tx_begin", "\(c.txBegin)"), ("tx_xa_begin", "\(c.txXaBegin)"), ("tx_commit", "\(c.txCommit)"),
            ("tx_rollback", "\(c.txRollback)"), ("get_miss", "\(c.getMiss)"), ("put_failed", "\(c.putFailed)"),
            ("total_messages", "\(s.partitions.reduce(0) { $0 + $1.messageCount })"), ("topics", "\(topics)"),
            ("config_checksum", "\(s.configChecksum)"), ("failed_partitions", "\(failedPartitions.count)"),
        ]
        return pairs.map { "\($0.0) \($0.1)" }
    }

    /// §9 `topics`: topics with data (sorted), then configured topics without data as `*Empty*`.
    func topicsLines(_ s: StatsSnapshot) -> [String] {
        let withData = s.topicsWithData
        var lines = withData.map { topic -> String in
            let parts = s.partitions.filter { $0.partition.topic == topic }
            let flags = s.flags(of: topic)
            return "\(topic) partitions \(parts.count) message_count \(parts.reduce(0) { $0 + $1.messageCount })"
                + " message_bytes \(parts.reduce(0) { $0 + $1.bytes })"
                + " accept_publish \(flags.acceptPublish) accept_subscribe \(flags.acceptSubscribe)"
        }
        let empty = Set(s.configuredTopics).subtracting(withData).sorted()
        lines += empty.map { "\($0) *Empty*" }
        return lines
    }

    /// §9 `<topic>`: the first line is the bare topic name, as the original prints it (the Java
    /// client's `getStats(item)` reads each line as `key value`, so the topic is a key without a
    /// value). resultCode 0 = has data, 1 = unknown, 2 = configured but no data. A
    /// `topic_realtime_*` line is `null` when nothing of its kind was recorded at all, and
    /// `Invalid keyTwo:<topic>` when nothing was recorded for this topic.
    func topicLines(_ topic: String, _ s: StatsSnapshot) -> [String] {
        let parts = s.partitions.filter { $0.partition.topic == topic }
        let code = !parts.isEmpty ? 0 : (s.configuredTopics.contains(topic) ? 2 : 1)
        var lines = [
            topic, "resultCode \(code)", "partitions \(parts.count)",
            "message_count \(parts.reduce(0) { $0 + $1.messageCount })", "bytes \(parts.reduce(0) { $0 + $1.bytes })",
        ]
        lines += RealtimeStats.Kind.allCases.map { kind in
            let value: String
            if realtime.total(kind) == nil {
                value = "null"
            } else if let sample = realtime.sample(kind, topic: topic) {
                value = realtime.describe(sample, nowMs: clockMs)
            } else {
                value = "Invalid keyTwo:\(topic)"
            }
            return "topic_realtime_\(kind.key) \(value)"
        }
        return lines
    }

    /// `result 200 <len> <opaque>␍␊STATS␍␊<lines>END␍␊` (§1.4.6).
    func statsReply(_ connection: ConnectionID, _ lines: [String], _ opaque: Int32) -> Action {
        let body = "STATS\r\n" + lines.map { $0 + "\r\n" }.joined() + "END\r\n"
        return reply(connection, StatusCode.success, body, opaque)
    }
}
