/// Identifies one client connection to the broker machine.
public struct ConnectionID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var raw: UInt64
    public init(_ raw: UInt64) { self.raw = raw }
    public static func < (a: ConnectionID, b: ConnectionID) -> Bool { a.raw < b.raw }
    public var description: String { "conn#\(raw)" }
}

/// A partition of a topic on this broker.
public struct TopicPartition: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32
    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }
    public static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        (a.topic, a.partition) < (b.topic, b.partition)
    }
    /// MetaQ's `<topic>-<partition>` (directory names, error texts).
    public var description: String { "\(topic)-\(partition)" }
}

/// Which topics this broker accepts and how many partitions each has (reference §2.8): exact
/// section names first, then `*` patterns in file order.
public struct TopicRules: Equatable, Sendable {
    public struct Rule: Equatable, Sendable {
        public var pattern: String
        public var numPartitions: Int32
        /// `stat=true`: the topic's realtime statistics are collected (§9).
        public var stat: Bool
        /// Server-side filters by consumer group (`group.<group>=<filter>`, §5.7).
        public var filters: [String: AttributeFilter]
        public init(pattern: String, numPartitions: Int32, stat: Bool = false, filters: [String: AttributeFilter] = [:]) {
            self.pattern = pattern
            self.numPartitions = numPartitions
            self.stat = stat
            self.filters = filters
        }
    }

    public var rules: [Rule] {
        didSet { hasFilters = rules.contains { !$0.filters.isEmpty } }
    }
    /// Whether any section has a filter: when none has, a `get` skips the filter lookup.
    public private(set) var hasFilters: Bool

    public init(_ rules: [Rule]) {
        self.rules = rules
        hasFilters = rules.contains { !$0.filters.isEmpty }
    }

    /// The server-side filter of `group` on `topic` (from the section that accepts the topic).
    public func filter(for topic: String, group: String) -> AttributeFilter? {
        rule(for: topic)?.filters[group]
    }

    /// The section that accepts `topic`: its exact name, else the first matching pattern.
    public func rule(for topic: String) -> Rule? {
        if let exact = rules.first(where: { $0.pattern == topic }) { return exact }
        return rules.first { $0.pattern.contains("*") && Self.matches(topic, $0.pattern) }
    }

    /// Whether a section is named exactly `topic` (not a pattern that matches it): such a topic's
    /// partitions are configured, not created from the wire.
    public func hasExactSection(_ topic: String) -> Bool {
        rules.contains { $0.pattern == topic && !$0.pattern.contains("*") }
    }

    /// The partition count of `topic`, or nil when no section accepts it.
    public func numPartitions(of topic: String) -> Int32? { rule(for: topic)?.numPartitions }

    /// Whether realtime statistics are collected for `topic`.
    public func collectsStats(_ topic: String) -> Bool { rule(for: topic)?.stat ?? false }

    /// Whether `name` matches `pattern`, where `*` matches any run of characters (also none) and
    /// every other character only itself. Greedy with one backtrack point (the last `*` seen),
    /// which suffices for a single wildcard and keeps the work at O(pattern × name).
    public static func matches(_ name: String, _ pattern: String) -> Bool {
        let p = Array(pattern), n = Array(name)
        var pi = 0, ni = 0
        var star: (pattern: Int, name: Int)?
        while ni < n.count {
            if pi < p.count, p[pi] == "*" {
                star = (pi, ni)
                pi += 1
            } else if pi < p.count, p[pi] == n[ni] {
                pi += 1
                ni += 1
            } else if let s = star {
                // Let the last `*` swallow one more character and retry from there.
                star = (s.pattern, s.name + 1)
                pi = s.pattern + 1
                ni = s.name + 1
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}

/// What a partition read found, as the runtime reports it to the machine (mirrors StoreCore's
/// `LogRead`, which ProtocolCore cannot see).
public enum PartitionRead: Equatable, Sendable {
    /// `count` bytes at the requested offset are ready to send (the runtime keeps the slice).
    case slice(count: Int)
    /// The bytes at the requested offset, for an `Action.readBytes`.
    case bytes([UInt8])
    /// Reading the bytes failed (an I/O error); the text is the detail of a 500 answer.
    case failed(String)
    case belowMinimum(minOffset: Int64)
    case atOrBeyondEnd(maxOffset: Int64)
    case damaged(resumeAt: Int64)
}
