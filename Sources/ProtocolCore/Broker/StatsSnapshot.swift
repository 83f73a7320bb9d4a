/// What only the runtime knows when it answers a `stats` request (reference §9): process facts,
/// connection count, the config checksum and the partition logs' sizes. The machine adds its own
/// counters (`StatsCounters`) and its settings and renders the lines.
public struct StatsSnapshot: Equatable, Sendable {
    /// One partition log: its readable range, how many messages and bytes it holds.
    public struct PartitionStats: Equatable, Sendable {
        public var partition: TopicPartition
        public var minOffset: Int64
        public var maxOffset: Int64
        public var messageCount: Int64
        public var bytes: Int64

        public init(partition: TopicPartition, minOffset: Int64, maxOffset: Int64, messageCount: Int64, bytes: Int64) {
            self.partition = partition
            self.minOffset = minOffset
            self.maxOffset = maxOffset
            self.messageCount = messageCount
            self.bytes = bytes
        }
    }

    /// The `acceptPublish` / `acceptSubscribe` switches of one topic (§8.3); topics not listed
    /// accept both.
    public struct TopicFlags: Equatable, Sendable {
        public var topic: String
        public var acceptPublish: Bool
        public var acceptSubscribe: Bool

        public init(topic: String, acceptPublish: Bool, acceptSubscribe: Bool) {
            self.topic = topic
            self.acceptPublish = acceptPublish
            self.acceptSubscribe = acceptSubscribe
        }
    }

    public var pid: Int
    public var uptimeSeconds: Int64
    public var threads: Int
    public var currentConnections: Int
    public var configChecksum: Int64
    public var isSlave: Bool
    /// Every partition log of the broker, in any order (the machine sorts).
    public var partitions: [PartitionStats]
    /// `[topic=…]` sections without wildcards; those without data print `<topic> *Empty*`.
    public var configuredTopics: [String]
    public var topicFlags: [TopicFlags]

    public init(pid: Int, uptimeSeconds: Int64, threads: Int, currentConnections: Int, configChecksum: Int64,
                isSlave: Bool, partitions: [PartitionStats] = [], configuredTopics: [String] = [],
                topicFlags: [TopicFlags] = []) {
        self.pid = pid
        self.uptimeSeconds = uptimeSeconds
        self.threads = threads
        self.currentConnections = currentConnections
        self.configChecksum = configChecksum
        self.isSlave = isSlave
        self.partitions = partitions
        self.configuredTopics = configuredTopics
        self.topicFlags = topicFlags
    }

    /// The partitions sorted by topic name, then partition number.
    var sortedPartitions: [PartitionStats] { partitions.sorted { $0.partition < $1.partition } }

    /// Topics that have at least one partition log, sorted by name.
    var topicsWithData: [String] { Array(Set(partitions.map(\.partition.topic))).sorted() }

    /// The switches of `topic`; both true when the snapshot does not list it.
    func flags(of topic: String) -> TopicFlags {
        topicFlags.first { $0.topic == topic } ?? TopicFlags(topic: topic, acceptPublish: true, acceptSubscribe: true)
    }
}
