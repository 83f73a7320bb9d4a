import ProtocolCore

/// The settings that apply to one topic: its section's values where it sets them, the `[system]`
/// values otherwise (reference §8.3).
public struct TopicConfig: Equatable, Sendable {
    /// The topic asked for.
    public var topic: String
    /// The section that supplied the settings: the topic itself or a wildcard pattern.
    public var sectionName: String
    public var numPartitions: Int
    /// Threshold and interval resolved separately: a topic may override one and inherit the other.
    public var flushPolicy: FlushPolicy
    /// nil means MetaQ's `${user.home}/meta`, resolved by the runtime (see ``ServerConfig/dataPath``).
    public var dataPath: String?
    public var deletePolicy: DeletePolicy
    public var deleteWhen: CronExpression
    public var acceptPublish: Bool
    public var acceptSubscribe: Bool
    public var stat: Bool
    /// The section's `group.<group>=<filter>` entries, in file order.
    public var groupFilters: [GroupFilter]

    /// The server-side filter configured for `group`, if any.
    public func filter(forGroup group: String) -> AttributeFilter? {
        groupFilters.first { $0.group == group }?.filter
    }
}

extension ServerConfig {
    /// The effective settings of `topic`, or nil when no section admits it (MetaQ's "legal topic",
    /// §2.8).
    ///
    /// A section named exactly `topic` wins. Otherwise the first wildcard section in file order whose
    /// pattern matches the whole name applies; `*` matches any run of characters (also none) and
    /// every other character only itself. Two differences from MetaQ, both deliberate:
    /// - MetaQ turns the pattern into a regular expression by replacing `*` with `.*`, so a `.` in a
    ///   section name matches any character; here it matches only a dot.
    /// - MetaQ uses a wildcard section only to decide that a topic is legal and gives the topic the
    ///   `[system]` values; here the matching section's overrides apply, as an operator would expect.
    public func topicConfig(for topic: String) -> TopicConfig? {
        let section = topics.first { $0.name == topic }
            ?? topics.first { $0.isPattern && TopicRules.matches(topic, $0.name) }
        guard let section else { return nil }
        return TopicConfig(
            topic: topic,
            sectionName: section.name,
            numPartitions: section.numPartitions ?? numPartitions,
            flushPolicy: FlushPolicy(unflushThreshold: section.unflushThreshold ?? flushPolicy.unflushThreshold,
                                     unflushIntervalMs: section.unflushIntervalMs ?? flushPolicy.unflushIntervalMs),
            dataPath: section.dataPath ?? dataPath,
            deletePolicy: section.deletePolicy ?? deletePolicy,
            deleteWhen: section.deleteWhen ?? deleteWhen,
            acceptPublish: section.acceptPublish ?? acceptPublish,
            acceptSubscribe: section.acceptSubscribe ?? acceptSubscribe,
            stat: section.stat ?? stat,
            groupFilters: section.groupFilters)
    }
}
