// Turning server.ini's sections into a ServerConfig: which keys each section has, their types,
// ranges and defaults (reference §8, MetaQ's `MetaConfig.populate*`).
//
// Blank values (`key=`): for every optional key a blank means "the default" (for a topic: "the
// [system] value"), as in MetaQ. MetaQ refuses a blank or absent value for brokerId, numPartitions,
// unflushThreshold, unflushInterval, maxSegmentSize and maxTransferSize. We require brokerId as it
// does and also refuse the other five when blank, but let them be absent and then use MetaQ's class
// defaults: every file MetaQ accepts means the same here, and a short file is not an error.

import ProtocolCore

extension ServerConfig {
    /// Parses the text of a MetaQ `server.ini`. `path` only names the file in errors; reading the
    /// file (and decoding it) is the caller's job.
    ///
    /// - Throws: ``ConfigError`` for the first problem in file order, or a missing `brokerId` or
    ///   topic section after the whole file was read.
    public init(parsing text: String, path: String) throws(ConfigError) {
        var builder = ServerConfigBuilder(path: path)
        for section in try IniReader.read(text, path: path) {
            try builder.add(section)
        }
        self = try builder.finish()
    }

    static let systemKeys = [
        "brokerId", "hostName", "serverPort", "dashboardHttpPort", "dataPath", "dataLogPath", "appClassPath",
        "numPartitions", "unflushThreshold", "unflushInterval", "maxSegmentSize", "maxTransferSize",
        "getProcessThreadCount", "putProcessThreadCount", "deletePolicy", "deleteWhen", "quartzThreadCount",
        "maxCheckpoints", "checkpointInterval", "maxTxTimeoutTimerCapacity", "flushTxLogAtCommit",
        "maxTxTimeoutInSeconds", "acceptPublish", "acceptSubscribe", "stat", "updateConsumerOffsets",
        "loadMessageStoresInParallel", "maxAutoCreatedPartitions", "maxConnections", "maxPartialFrameBytes", "partialFrameTimeoutMs",
        "listenBacklog", "syncThreads", "ioThreads", "maxQueuedRequestBytes",
    ]
    static let zooKeeperKeys = [
        "zk.zkConnect", "zk.zkSessionTimeoutMs", "zk.zkConnectionTimeoutMs", "zk.zkSyncTimeMs", "zk.zkEnable",
        "zk.zkRoot",
    ]
    /// `group.<group>` keys come on top of these.
    static let topicKeys = [
        "numPartitions", "unflushThreshold", "unflushInterval", "dataPath", "deletePolicy", "deleteWhen",
        "acceptPublish", "acceptSubscribe", "stat",
    ]
    static let groupKeyPrefix = "group."
    /// `[http]`: the HTTP message API (§7.1). `serverPort` is the key of the original's
    /// `jettyBroker.properties`; `enableHttp` the switch of its `bin/env.sh`.
    static let httpKeys = ["enableHttp", "serverPort"]
    /// Keys MetaQ will not take blank, with the default we use when they are absent (nil: required).
    static let valueRequiredSystemKeys: [String: String?] = [
        "brokerId": nil, "numPartitions": "1", "unflushThreshold": "1000", "unflushInterval": "10000",
        "maxSegmentSize": "1073741824", "maxTransferSize": "1048576",
    ]
}

/// Which of server.ini's sections a header names.
enum ConfigSection: Hashable {
    case system
    case zooKeeper
    case replication
    case http
    case topic(String)
}

/// Accumulates sections in file order. A section header may appear once: ini4j would keep only
/// one of two same-named sections, silently, so a repeat is refused rather than merged.
struct ServerConfigBuilder {
    let path: String
    private var config = ServerConfig(brokerId: 0)
    private var replication = ReplicationKeys()
    private var hasBrokerId = false
    private var systemLine: Int?
    /// The header line of every section seen so far.
    private var sectionLines: [ConfigSection: Int] = [:]

    init(path: String) { self.path = path }

    mutating func add(_ section: IniSection) throws(ConfigError) {
        let kind = try classify(section)
        if let first = sectionLines[kind] {
            throw ConfigError(kind: .duplicateSection, path: path, line: section.line, section: section.name,
                              message: "repeats the section of line \(first); expected each section once "
                                  + "(MetaQ would silently use only one of them): merge the two")
        }
        sectionLines[kind] = section.line
        if case .system = kind { systemLine = section.line }
        if case .topic(let name) = kind { config.topics.append(TopicSection(name: name, line: section.line)) }
        var keyLines: [String: Int] = [:]
        for entry in section.entries {
            let value = ConfigValue(entry: entry, section: section.name, path: path)
            if let first = keyLines[entry.key] {
                throw value.error(.duplicateKey, "\(entry.key) is already set on line \(first); "
                    + "expected each key at most once per section")
            }
            keyLines[entry.key] = entry.line
            switch kind {
            case .system: try applySystem(value)
            case .zooKeeper: try applyZooKeeper(value)
            case .replication: try applyReplication(value)
            case .http: try applyHTTP(value)
            case .topic: try Self.applyTopic(value, to: &config.topics[config.topics.count - 1])
            }
        }
    }

    func finish() throws(ConfigError) -> ServerConfig {
        var config = config
        config.replication = try replication.finish()
        guard hasBrokerId else {
            throw ConfigError(kind: .missingRequired, path: path, line: systemLine, section: "system", key: "brokerId",
                              message: "missing required key; expected brokerId=<id> with an id in 0...1023"
                                  + (systemLine == nil ? " in a [system] section" : ""))
        }
        guard !config.topics.isEmpty else {
            throw ConfigError(kind: .missingRequired, path: path, line: nil,
                              message: "no topic section; expected at least one [topic=<name>] section "
                                  + "(MetaQ: Empty topics list)")
        }
        return config
    }

    // MARK: Sections

    private func classify(_ section: IniSection) throws(ConfigError) -> ConfigSection {
        switch section.name {
        case "system":
            return .system
        case "zookeeper":
            return .zooKeeper
        case "replication":
            return .replication
        case "http":
            return .http
        default:
            break
        }
        let parts = section.name.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            .map { $0.trimmingSpaces() }
        guard parts.count == 2, parts[0] == "topic" else {
            let topicGuess = "topic=" + (parts.count == 2 ? parts[1] : section.name)
            let closest = closestCandidate(to: section.name, in: [topicGuess, "system", "zookeeper", "replication", "http"])!
            throw ConfigError(kind: .unknownSection, path: path, line: section.line, section: section.name,
                              message: "unknown section; expected [system], [zookeeper], [replication], [http] or [topic=<name>]; "
                                  + "do you mean [\(closest)]?", suggestion: closest)
        }
        let topic = parts[1]
        // A section's topics become directory names: the one name rule, with `*` for patterns.
        if let problem = MetaName.problem(with: topic, allowingWildcard: true) {
            throw ConfigError(kind: .invalidTopicName, path: path, line: section.line, section: section.name,
                              message: "topic name \(topic.debugDescription) is not valid: \(problem); expected "
                                  + "[topic=<name>] with \(MetaName.ruleDescription) ('*' is a wildcard)")
        }
        return .topic(topic)
    }

    // MARK: Keys

    /// Sends the unknown, blank and required cases off before a section's typed switch runs.
    /// Returns false when the value is blank and so leaves the default in place.
    private static func screen(_ value: ConfigValue, validKeys: [String]) throws(ConfigError) -> Bool {
        guard validKeys.contains(value.key) else { throw unknownKey(value, validKeys: validKeys) }
        guard value.isBlank else { return true }
        if value.section == "system", let defaultValue = ServerConfig.valueRequiredSystemKeys[value.key] {
            let expected = defaultValue.map { "remove the line to use the default \($0)" }
                ?? "expected brokerId=<id> with an id in 0...1023"
            throw value.error(.missingRequired, "a value is required (MetaQ refuses a blank \(value.key)); \(expected)")
        }
        return false
    }

    private static func unknownKey(_ value: ConfigValue, validKeys: [String]) -> ConfigError {
        let closest = closestCandidate(to: value.key, in: validKeys) ?? ""
        var message = "Invalid config key:\(value.key),do you mean '\(closest)'?"
        let homes = [("system", ServerConfig.systemKeys), ("zookeeper", ServerConfig.zooKeeperKeys),
                     ("replication", ServerConfig.replicationKeys), ("topic=<name>", ServerConfig.topicKeys)]
        if let home = homes.first(where: { $0.1.contains(value.key) }) {
            message += " (\(value.key) belongs in [\(home.0)])"
        }
        return value.error(.unknownKey, message, suggestion: closest)
    }

    private mutating func applySystem(_ value: ConfigValue) throws(ConfigError) {
        guard try Self.screen(value, validKeys: ServerConfig.systemKeys) else { return }
        if try applySystemNumber(value) { return }
        switch value.key {
        case "hostName": config.hostName = value.text
        case "dataPath": config.dataPath = value.text
        case "dataLogPath": config.dataLogPath = value.text
        case "appClassPath": config.appClassPath = value.text
        case "deletePolicy": config.deletePolicy = try value.deletePolicy()
        case "deleteWhen": config.deleteWhen = try value.cron()
        case "acceptPublish": config.acceptPublish = try value.boolean()
        case "acceptSubscribe": config.acceptSubscribe = try value.boolean()
        case "stat": config.stat = try value.boolean()
        case "updateConsumerOffsets": config.updateConsumerOffsets = try value.boolean()
        case "loadMessageStoresInParallel": config.loadMessageStoresInParallel = try value.boolean()
        default: throw Self.unknownKey(value, validKeys: ServerConfig.systemKeys)
        }
    }

    /// The numeric `[system]` keys; false when `value` is not one of them.
    private mutating func applySystemNumber(_ value: ConfigValue) throws(ConfigError) -> Bool {
        switch value.key {
        case "brokerId":
            config.brokerId = try value.int(in: ConfigRange.brokerId)
            hasBrokerId = true
        case "serverPort": config.serverPort = try value.int(in: ConfigRange.port)
        case "dashboardHttpPort": config.dashboardHttpPort = try value.int(in: ConfigRange.portOrOff)
        case "numPartitions": config.numPartitions = try value.partitionCount()
        case "unflushThreshold": config.flushPolicy.unflushThreshold = try value.int(in: ConfigRange.javaInt)
        // A zero or negative period is what Java's scheduleAtFixedRate refuses for MetaQ's flush timer.
        case "unflushInterval": config.flushPolicy.unflushIntervalMs = try value.integer(in: ConfigRange.positiveInt)
        case "maxSegmentSize":
            config.maxSegmentSize = try value.integer(
                in: ConfigRange.segmentSize,
                reason: "a segment must have room for at least one record's \(Record.headerSize)-byte header")
        case "maxTransferSize": config.maxTransferSize = try value.int(in: ConfigRange.positiveInt)
        case "getProcessThreadCount": config.getProcessThreadCount = try value.int(in: ConfigRange.positiveInt)
        case "putProcessThreadCount": config.putProcessThreadCount = try value.int(in: ConfigRange.positiveInt)
        case "quartzThreadCount": config.quartzThreadCount = try value.int(in: ConfigRange.positiveInt)
        case "maxCheckpoints": config.maxCheckpoints = try value.int(in: ConfigRange.positiveInt)
        case "checkpointInterval": config.checkpointIntervalMs = try value.integer(in: ConfigRange.positiveLong)
        case "maxTxTimeoutTimerCapacity": config.maxTxTimeoutTimerCapacity = try value.int(in: ConfigRange.positiveInt)
        case "flushTxLogAtCommit":
            config.flushTxLogAtCommit = TransactionLogFlush(rawValue: try value.int(in: 0...2))!
        case "maxTxTimeoutInSeconds": config.maxTxTimeoutSeconds = try value.int(in: ConfigRange.positiveInt)
        // Ours: 0 is allowed and means wildcard sections create no partitions at all.
        case "maxAutoCreatedPartitions": config.maxAutoCreatedPartitions = try value.int(in: ConfigRange.nonNegativeInt)
        case "maxConnections": config.maxConnections = try value.int(in: ConfigRange.positiveInt)
        case "maxPartialFrameBytes": config.maxPartialFrameBytes = Int(try value.integer(in: ConfigRange.partialFrameBytes))
        case "partialFrameTimeoutMs": config.partialFrameTimeoutMs = try value.integer(in: ConfigRange.positiveInt)
        case "listenBacklog": config.listenBacklog = try value.int(in: ConfigRange.positiveInt)
        case "syncThreads": config.syncThreads = try value.int(in: 1...256)
        case "ioThreads": config.ioThreads = value.text == "auto" ? nil : try value.int(in: 0...64)
        case "maxQueuedRequestBytes": config.maxQueuedRequestBytes = Int(try value.integer(in: ConfigRange.partialFrameBytes))
        default: return false
        }
        return true
    }

    private mutating func applyZooKeeper(_ value: ConfigValue) throws(ConfigError) {
        guard try Self.screen(value, validKeys: ServerConfig.zooKeeperKeys) else { return }
        switch value.key {
        case "zk.zkConnect": config.zooKeeper.connect = value.text
        case "zk.zkSessionTimeoutMs": config.zooKeeper.sessionTimeoutMs = try value.int(in: ConfigRange.positiveInt)
        case "zk.zkConnectionTimeoutMs":
            config.zooKeeper.connectionTimeoutMs = try value.int(in: ConfigRange.positiveInt)
        case "zk.zkSyncTimeMs": config.zooKeeper.syncTimeMs = try value.int(in: ConfigRange.nonNegativeInt)
        case "zk.zkEnable": config.zooKeeper.isEnabled = try value.boolean()
        case "zk.zkRoot": config.zooKeeper.root = value.text
        default: throw Self.unknownKey(value, validKeys: ServerConfig.zooKeeperKeys)
        }
    }

    private mutating func applyHTTP(_ value: ConfigValue) throws(ConfigError) {
        guard try Self.screen(value, validKeys: ServerConfig.httpKeys) else { return }
        switch value.key {
        case "enableHttp": config.http.isEnabled = try value.boolean()
        case "serverPort": config.http.port = try value.int(in: ConfigRange.port)
        default: throw Self.unknownKey(value, validKeys: ServerConfig.httpKeys)
        }
    }

    private mutating func applyReplication(_ value: ConfigValue) throws(ConfigError) {
        guard ServerConfig.replicationKeys.contains(value.key) else {
            throw Self.unknownKey(value, validKeys: ServerConfig.replicationKeys)
        }
        try replication.apply(value)
    }

    private static func applyTopic(_ value: ConfigValue, to topic: inout TopicSection) throws(ConfigError) {
        if value.key.hasPrefix(ServerConfig.groupKeyPrefix) {
            let group = String(value.key.dropFirst(ServerConfig.groupKeyPrefix.count))
            guard !group.isEmpty else {
                throw value.error(.unknownKey, "expected group.<group>=<filter> with a group name")
            }
            // MetaQ skips a blank filter: the group simply has none.
            guard !value.isBlank else { return }
            do {
                topic.groupFilters.append(GroupFilter(group: group, filter: try AttributeFilter(parsing: value.text)))
            } catch {
                throw value.error(.badFilter, error.message)
            }
            return
        }
        // A misspelt `group.` prefix is best answered with the same group name spelt right.
        let groupName = value.key.split(separator: ".", maxSplits: 1).dropFirst().first.map(String.init) ?? "<group>"
        let validKeys = ServerConfig.topicKeys + [ServerConfig.groupKeyPrefix + groupName]
        guard try screen(value, validKeys: validKeys) else { return }
        switch value.key {
        case "numPartitions": topic.numPartitions = try value.partitionCount()
        case "unflushThreshold": topic.unflushThreshold = try value.int(in: ConfigRange.javaInt)
        case "unflushInterval": topic.unflushIntervalMs = try value.integer(in: ConfigRange.positiveInt)
        case "dataPath": topic.dataPath = value.text
        case "deletePolicy": topic.deletePolicy = try value.deletePolicy()
        case "deleteWhen": topic.deleteWhen = try value.cron()
        case "acceptPublish": topic.acceptPublish = try value.boolean()
        case "acceptSubscribe": topic.acceptSubscribe = try value.boolean()
        case "stat": topic.stat = try value.boolean()
        default: throw unknownKey(value, validKeys: validKeys)
        }
    }
}
