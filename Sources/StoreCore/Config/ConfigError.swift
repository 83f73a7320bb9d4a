/// A problem in `server.ini` that stops start-up (DESIGN §8: it names the file, line, key and the
/// expected form, and suggests the closest key).
///
/// ``description`` reads `<path>:<line>: [<section>] <key>: <message>`, leaving out the parts that do
/// not apply, e.g.
///
///     conf/server.ini:3: [system] brokerID: Invalid config key:brokerID,do you mean 'brokerId'?
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The class of problem, for callers that react differently (and for tests).
    public enum Kind: Equatable, Sendable {
        /// The file is not UTF-8; ``ConfigError/line`` is where the first invalid sequence is.
        case invalidEncoding
        /// A line that is neither blank, a comment, a `[section]` nor `key=value`.
        case malformedLine
        /// A `key=value` line before the first section header.
        case keyOutsideSection
        /// A section other than `[system]`, `[zookeeper]`, `[replication]` and `[topic=<name>]`.
        case unknownSection
        /// A `[topic=…]` section whose name cannot be a topic (empty, whitespace, `/`).
        case invalidTopicName
        /// A key the section does not have; ``ConfigError/suggestion`` holds the closest valid one.
        case unknownKey
        /// The same key twice in one section.
        case duplicateKey
        /// A section header that appeared before (`[topic=x]` twice): MetaQ's ini4j would use only
        /// one of them, silently.
        case duplicateSection
        /// Not an integer expression, or it overflows or divides by zero.
        case badNumber
        /// Not `true` or `false`.
        case badBoolean
        /// `deletePolicy` that ``DeletePolicy/init(parsing:)`` rejects.
        case badDeletePolicy
        /// `deleteWhen` that ``CronExpression/init(parsing:)`` rejects.
        case badCron
        /// `group.<group>=` whose value ``AttributeFilter/init(parsing:)`` rejects (§5.7).
        case badFilter
        /// A well-formed number outside the key's range.
        case outOfRange
        /// Not `host:port` or `meta://host:port` (`[replication] master`).
        case badAddress
        /// A consumer group name outside the name rule (`slaveGroup`).
        case badGroupName
        /// A value the original accepts that this broker does not support
        /// (`autoSyncMasterConfig=true`); the message says what to do instead.
        case unsupported
        /// Two keys that cannot be set together (`rejoinSlaveId` and `slaveId`).
        case conflictingKeys
        /// A required key (or section) is absent or blank.
        case missingRequired
    }

    public var kind: Kind
    /// The config file as the caller named it.
    public var path: String
    /// 1-based line number; nil when the problem concerns the whole file (e.g. no topic section).
    public var line: Int?
    /// The section name as written between the brackets (`system`, `topic=test`), when there is one.
    public var section: String?
    /// The key concerned, when there is one.
    public var key: String?
    /// What is wrong and the form that was expected.
    public var message: String
    /// The closest valid key (or section name) for an unknown one.
    public var suggestion: String?

    public init(kind: Kind, path: String, line: Int?, section: String? = nil, key: String? = nil,
                message: String, suggestion: String? = nil) {
        self.kind = kind
        self.path = path
        self.line = line
        self.section = section
        self.key = key
        self.message = message
        self.suggestion = suggestion
    }

    public var description: String {
        var text = path
        if let line { text += ":\(line)" }
        text += ":"
        if let section { text += " [\(section)]" }
        if let key { text += " \(key)" }
        if section != nil || key != nil { text += ":" }
        return text + " " + message
    }
}

/// The candidate nearest to `word` by Levenshtein distance, as MetaQ's `Config.findBestMatchField`
/// picks it. Ties go to the earliest candidate, so the suggestion is the same on every run (MetaQ
/// iterates a `HashSet`, whose order is arbitrary).
func closestCandidate(to word: String, in candidates: [String]) -> String? {
    var best: (candidate: String, distance: Int)?
    for candidate in candidates {
        let distance = levenshteinDistance(word, candidate)
        if best == nil || distance < best!.distance { best = (candidate, distance) }
    }
    return best?.candidate
}

/// Edits (insert, delete, substitute one character) that turn `a` into `b`; two rows of the table.
func levenshteinDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    guard !a.isEmpty else { return b.count }
    guard !b.isEmpty else { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
