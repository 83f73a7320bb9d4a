// Reading the replication keys (issue 17, reference §6.1): the `[replication]` section of
// server.ini and the original's `async_slave.properties`. Both go through `ReplicationKeys`, so a
// key means the same and is checked the same in either file.

import ProtocolCore

extension ServerConfig {
    /// The keys a slave's properties file may hold: the original's four, and our `master`.
    static let slaveKeys = ["slaveId", "slaveGroup", "slaveMaxDelayInMills", "autoSyncMasterConfig", "master"]
    /// `[replication]`: a slave's keys and the master's (`synchronous` and the rest, ours).
    static let replicationKeys = slaveKeys + ["synchronous", "maxLagMs", "minInSyncReplicas", "fetchHoldMs", "failover",
                                              "rejoinSlaveId", "acceptSync"]
}

/// The replication keys of one file, gathered in file order and checked as a whole by `finish`.
struct ReplicationKeys {
    private var config = ReplicationConfig()
    private var slaveId: Int?
    private var slaveGroup: String?
    private var maxDelayMs: Int64 = 500
    private var master: String?
    /// The first key that only a slave may set, for the error when `slaveId` is absent.
    private var firstSlaveOnlyKey: ConfigValue?
    /// `rejoinSlaveId`, which only a configured master may set.
    private var rejoinKey: ConfigValue?
    private var fetchHoldKey: ConfigValue?

    /// Applies one entry whose key is one of `ServerConfig.replicationKeys`.
    mutating func apply(_ value: ConfigValue) throws(ConfigError) {
        if value.key != "slaveId", ServerConfig.slaveKeys.contains(value.key), firstSlaveOnlyKey == nil {
            firstSlaveOnlyKey = value
        }
        if value.key == "slaveId", value.isBlank {
            // In server.ini the key is optional (without it the broker is a master); a slave's file needs it.
            let alternative = value.section == nil ? "" : ", or remove the line (a broker without slaveId is a master)"
            throw value.error(.missingRequired, "a value is required; expected slaveId=<n> with n in 0...1023" + alternative)
        }
        // Blank optional keys keep their default, as everywhere in server.ini.
        guard !value.isBlank else { return }
        switch value.key {
        case "slaveId":
            slaveId = try value.int(in: ConfigRange.brokerId, reason: "each slave of a master needs its own id")
        case "slaveGroup":
            if let problem = MetaName.problem(with: value.text) {
                throw value.error(.badGroupName, MetaName.refusal("group", value.text, problem))
            }
            slaveGroup = value.text
        case "slaveMaxDelayInMills": maxDelayMs = try value.integer(in: ConfigRange.positiveInt)
        case "master": master = try Self.masterAddress(value).uri
        case "autoSyncMasterConfig":
            if try value.boolean() {
                throw value.error(.unsupported, "autoSyncMasterConfig=true is not supported: this broker does not copy "
                    + "its master's server.ini; give the slave the master's [topic=...] sections in its own server.ini "
                    + "and set autoSyncMasterConfig=false (or remove the line)")
            }
        case "synchronous": config.synchronous = try value.boolean()
        case "maxLagMs": config.maxLagMs = try value.integer(in: ConfigRange.positiveInt)
        case "minInSyncReplicas":
            config.minInSyncReplicas = try value.int(in: 1...16, reason: "the copies that must hold a synchronous put, "
                + "this master's included")
        case "fetchHoldMs":
            config.fetchHoldMs = try value.integer(in: 0...60_000)
            fetchHoldKey = value
        case "failover": config.failover = try value.boolean()
        case "acceptSync": config.acceptSync = try value.boolean()
        case "rejoinSlaveId":
            config.rejoinSlaveId = try value.int(in: ConfigRange.brokerId, reason: "the slave id this master follows "
                + "under once deposed")
            rejoinKey = value
        default:
            preconditionFailure("\(value.key) is not a replication key")
        }
    }

    /// The shortest `maxLagMs` a synchronous master accepts without held fetches: twice the
    /// original's default `slaveMaxDelayInMills`.
    static let unheldMinLagMs: Int64 = 1000

    /// The configuration; an error when a slave's key was given without `slaveId`, or a
    /// synchronous master without held fetches would drop its slaves between their polls.
    func finish() throws(ConfigError) -> ReplicationConfig {
        var result = config
        if slaveId != nil, let key = rejoinKey {
            throw key.error(.conflictingKeys, "rejoinSlaveId is a master's setting: a slave rejoins under its slaveId; "
                + "remove rejoinSlaveId or slaveId")
        }
        if config.synchronous, config.fetchHoldMs == 0, config.maxLagMs < Self.unheldMinLagMs, let key = fetchHoldKey {
            // Without held fetches a slave at the end polls with a back-off up to its
            // slaveMaxDelayInMills (500 ms by default): a shorter maxLagMs drops it from the in-sync
            // set between two polls, and every synchronous put is refused.
            throw key.error(.conflictingKeys, "fetchHoldMs=0 with synchronous=true and maxLagMs=\(config.maxLagMs): slaves "
                + "then poll up to slaveMaxDelayInMills (500 ms by default) apart and keep leaving the in-sync set; "
                + "keep fetchHoldMs above 0 (default 200) or set maxLagMs to \(Self.unheldMinLagMs) or more")
        }
        if let slaveId {
            result.slave = ReplicationConfig.Slave(slaveId: slaveId, slaveGroup: slaveGroup, maxDelayMs: maxDelayMs,
                                                   master: master)
        } else if let key = firstSlaveOnlyKey {
            throw key.error(.missingRequired, "\(key.key) is a slave's setting, and slaveId is missing; expected "
                + "slaveId=<n> with n in 0...1023 to make this broker a slave, or remove \(key.key)")
        }
        return result
    }

    /// `master`: `host:port` or `meta://host:port`.
    private static func masterAddress(_ value: ConfigValue) throws(ConfigError) -> BrokerAddress {
        guard let address = BrokerAddress(configured: value.text) else {
            throw value.error(.badAddress, "expected host:port or meta://host:port with a port in 1...65535 "
                + "(IPv6 hosts in brackets), got '\(value.text)'")
        }
        return address
    }
}

extension ReplicationConfig.Slave {
    /// Parses the original's `async_slave.properties` (reference §6.1): `slaveId` (required),
    /// `slaveGroup`, `slaveMaxDelayInMills`, `autoSyncMasterConfig` (only `false`), and our
    /// `master`. `path` only names the file in errors.
    ///
    /// The bytes are read as Java's `Properties.load` reads them, ISO-8859-1, so comments in any
    /// encoding (the original's file has GBK comments) are fine. The syntax is a subset of Java's:
    /// one `key=value`, `key: value` or `key value` per line, `#` or `!` comment lines, blank
    /// lines, surrounding whitespace trimmed. Backslash escapes and continuation lines are refused
    /// (no valid value needs them). A `master` is stored as `meta://host:port`.
    ///
    /// - Throws: ``ConfigError`` for the first problem in file order (line-numbered), or a
    ///   missing `slaveId`.
    public init(parsingProperties bytes: [UInt8], path: String) throws(ConfigError) {
        var keys = ReplicationKeys()
        var keyLines: [String: Int] = [:]
        var hasSlaveId = false
        for entry in try PropertiesReader.read(bytes, path: path) {
            let value = ConfigValue(entry: entry, section: nil, path: path)
            guard ServerConfig.slaveKeys.contains(entry.key) else {
                let closest = closestCandidate(to: entry.key, in: ServerConfig.slaveKeys) ?? ""
                var message = "Invalid config key:\(entry.key),do you mean '\(closest)'?"
                if ServerConfig.replicationKeys.contains(entry.key) {
                    message += " (\(entry.key) belongs in [replication] of server.ini)"
                }
                throw value.error(.unknownKey, message, suggestion: closest)
            }
            if let first = keyLines[entry.key] {
                throw value.error(.duplicateKey, "\(entry.key) is already set on line \(first); expected each key once "
                    + "(Java would silently use the last one)")
            }
            keyLines[entry.key] = entry.line
            if entry.key == "slaveId" { hasSlaveId = true }
            try keys.apply(value)
        }
        guard hasSlaveId else {
            throw ConfigError(kind: .missingRequired, path: path, line: nil, key: "slaveId",
                              message: "missing required key; expected slaveId=<n> with n in 0...1023 "
                                  + "(distinct for each slave of a master)")
        }
        self = try keys.finish().slave!
    }
}

/// The line syntax of a Java properties file, the subset the original's `async_slave.properties`
/// uses.
enum PropertiesReader {
    static func read(_ bytes: [UInt8], path: String) throws(ConfigError) -> [IniEntry] {
        // ISO-8859-1: each byte is the scalar of the same number.
        let text = String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
        var entries: [IniEntry] = []
        var lineNumber = 0
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            lineNumber += 1
            let line = trimmed(rawLine)
            guard let first = line.first, first != "#", first != "!" else { continue }
            if line.contains("\\") {
                throw ConfigError(kind: .malformedLine, path: path, line: lineNumber,
                                  message: "backslash escapes and line continuations are not supported: '\(line)'")
            }
            // The key ends at the first `=`, `:` or whitespace; whitespace around the separator
            // and one `=` or `:` after whitespace belong to neither key nor value (Java's rule).
            let keyEnd = line.firstIndex { $0 == "=" || $0 == ":" || $0.isWhitespace } ?? line.endIndex
            let key = line[..<keyEnd]
            guard !key.isEmpty else {
                throw ConfigError(kind: .malformedLine, path: path, line: lineNumber,
                                  message: "expected key=value with a key before '\(line[keyEnd])', got '\(line)'")
            }
            var rest = line[keyEnd...].drop { $0.isWhitespace }
            if rest.first == "=" || rest.first == ":" { rest = rest.dropFirst() }
            entries.append(IniEntry(key: String(key), value: String(trimmed(rest)), line: lineNumber))
        }
        return entries
    }

    private static func trimmed(_ text: Substring) -> Substring { text.trimmedOfWhitespace }
}
