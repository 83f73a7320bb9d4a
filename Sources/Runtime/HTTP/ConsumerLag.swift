import ProtocolCore

/// How far a consumer group is behind on one partition of this broker (reference §7.2: the
/// original dashboard's `pending-bytes`, `pending-messages`, `consumed-bytes`,
/// `consumed-messages` and `owner`), computed from the group's znodes and a `BrokerObservation`.
///
/// Never negative (MetaQ issue #113, reference §11: the original showed negative "consumed
/// messages" once deletion moved the minimum offset past a consumer's offset). A consumer offset
/// below the partition's minimum offset counts as the minimum, one above its maximum as the
/// maximum, and `clamped` says which happened so the page can say so.
public struct PartitionLag: Equatable, Sendable {
    /// Why the consumer offset was not used as read from ZooKeeper.
    public enum Clamp: String, Equatable, Sendable {
        /// Below the minimum offset: the messages it points at were deleted (#113).
        case belowMinimum = "below-min-offset"
        /// Beyond the maximum offset (e.g. a partition restored from an older copy).
        case aboveMaximum = "above-max-offset"
    }

    /// `<brokerId>-<partition>`, as the group's znodes name it.
    public var partition: BrokerPartition
    /// The consumer id in `owners/<topic>/<partition>`, nil when nobody owns it.
    public var owner: String?
    /// The offset in `offsets/<topic>/<partition>` as stored; nil when the group never committed
    /// one (it then counts as the minimum offset: nothing consumed).
    public var consumerOffset: Int64?
    public var minOffset: Int64
    public var maxOffset: Int64
    /// Bytes and messages from the (clamped) consumer offset to the end of the log.
    public var pendingBytes: Int64
    public var pendingMessages: Int64
    /// Bytes and messages from the start of the log to the (clamped) consumer offset.
    public var consumedBytes: Int64
    public var consumedMessages: Int64
    public var clamped: Clamp?

    public init(partition: BrokerPartition, owner: String?, consumerOffset: Int64?, minOffset: Int64, maxOffset: Int64,
                pendingBytes: Int64, pendingMessages: Int64, consumedBytes: Int64, consumedMessages: Int64, clamped: Clamp?) {
        self.partition = partition
        self.owner = owner
        self.consumerOffset = consumerOffset
        self.minOffset = minOffset
        self.maxOffset = maxOffset
        self.pendingBytes = pendingBytes
        self.pendingMessages = pendingMessages
        self.consumedBytes = consumedBytes
        self.consumedMessages = consumedMessages
        self.clamped = clamped
    }
}

/// What ZooKeeper says of one group on one topic: committed offsets and owners by partition.
public struct GroupTopicState: Equatable, Sendable {
    public var offsets: [BrokerPartition: StoredOffset]
    public var owners: [BrokerPartition: String]

    public init(offsets: [BrokerPartition: StoredOffset] = [:], owners: [BrokerPartition: String] = [:]) {
        self.offsets = offsets
        self.owners = owners
    }
}

/// Consumer lag: the pure computation (tested alone) and the ZooKeeper reads feeding it. Shared
/// by the dashboard's topic page and `/metrics`.
public enum ConsumerLag {
    /// At most this many children of a node are read for one page (a hostile or huge ZooKeeper
    /// must not make one request unbounded).
    public static let maxChildren = 4096

    /// The lag of every partition of `topic` in `observation` for a group whose znodes say
    /// `state`; sorted by partition number. Messages are estimated from bytes with the
    /// partition's average message size, as the original did (offsets are byte positions, §2.3).
    public static func compute(brokerId: Int, topic: String, observation: BrokerObservation,
                               state: GroupTopicState) -> [PartitionLag] {
        compute(brokerId: brokerId, partitions: observation.snapshot.partitions.filter { $0.partition.topic == topic },
                state: state)
    }

    /// As above, from the partitions' stats directly.
    public static func compute(brokerId: Int, partitions: [StatsSnapshot.PartitionStats],
                               state: GroupTopicState) -> [PartitionLag] {
        partitions.sorted { $0.partition < $1.partition }.map { stats in
            let key = BrokerPartition(brokerId: brokerId, partition: Int(stats.partition.partition))
            return lag(of: stats, key: key, stored: state.offsets[key]?.offset, owner: state.owners[key])
        }
    }

    /// One partition's lag.
    public static func lag(of stats: StatsSnapshot.PartitionStats, key: BrokerPartition, stored: Int64?,
                           owner: String?) -> PartitionLag {
        let low = stats.minOffset
        let high = max(stats.maxOffset, low)
        var position = stored ?? low
        var clamp: PartitionLag.Clamp?
        if position < low {
            position = low
            clamp = stored == nil ? nil : .belowMinimum
        } else if position > high {
            position = high
            clamp = .aboveMaximum
        }
        let pending = high - position
        let consumed = position - low
        return PartitionLag(partition: key, owner: owner, consumerOffset: stored, minOffset: low, maxOffset: high,
                            pendingBytes: pending, pendingMessages: messages(in: pending, of: stats),
                            consumedBytes: consumed, consumedMessages: messages(in: consumed, of: stats),
                            clamped: clamp)
    }

    /// `bytes` as a message count at the partition's average message size (rounded; 0 when the
    /// partition holds nothing). Exact at both ends: all of the log is `messageCount`.
    static func messages(in bytes: Int64, of stats: StatsSnapshot.PartitionStats) -> Int64 {
        guard bytes > 0, stats.messageCount > 0, stats.bytes > 0 else { return 0 }
        if bytes >= stats.bytes { return stats.messageCount }
        let estimate = (Double(bytes) * Double(stats.messageCount) / Double(stats.bytes)).rounded()
        return max(0, min(stats.messageCount, Int64(estimate)))
    }

    // MARK: ZooKeeper reads

    /// Runs one request and returns its reply (`ZooKeeperSession.perform`; a protocol so tests
    /// and the simulator's ZooKeeper can stand in).
    public typealias Perform = @Sendable (CoordinationRequest) async -> CoordinationReply

    /// Reads the offsets and owners of `group` on `topic` for this broker's partitions
    /// (`<brokerId>-*` children only). A missing node reads as empty; other failures throw.
    public static func read(group: String, topic: String, brokerId: Int, layout: MetaZooKeeperLayout,
                            perform: Perform) async throws -> GroupTopicState {
        var state = GroupTopicState()
        for child in try await children(layout.offsetsPath(group, topic), perform) {
            guard let key = BrokerPartition(child), key.brokerId == brokerId else { continue }
            let path = layout.offsetPath(group, topic, key)
            if let text = try await data(path, perform), let stored = StoredOffset(text: text) {
                state.offsets[key] = stored
            }
        }
        for child in try await children(layout.ownersPath(group, topic), perform) {
            guard let key = BrokerPartition(child), key.brokerId == brokerId else { continue }
            if let owner = try await data(layout.ownerPath(group, topic, key), perform) { state.owners[key] = owner }
        }
        return state
    }

    /// The groups that committed offsets for `topic` or own one of its partitions, sorted.
    public static func groups(of topic: String, layout: MetaZooKeeperLayout, perform: Perform) async throws -> [String] {
        var found: [String] = []
        for group in try await children(layout.root + "/consumers", perform).sorted()
        where MetaZooKeeperLayout.isName(group) {
            let offsets = try await children(layout.offsetsPath(group, topic), perform)
            let owners = offsets.isEmpty ? try await children(layout.ownersPath(group, topic), perform) : []
            if !offsets.isEmpty || !owners.isEmpty { found.append(group) }
        }
        return found
    }

    /// The children of `path`, at most `maxChildren`; none when it does not exist.
    public static func children(_ path: String, _ perform: Perform) async throws -> [String] {
        switch await perform(.getChildren(path: path, watch: false)) {
        case .children(let names): return Array(names.prefix(maxChildren))
        case .failed(.noNode): return []
        case .failed(let error): throw error
        default: throw CoordinationError.other(code: 0, message: "unexpected reply to getChildren \(path)")
        }
    }

    /// The data of `path` as UTF-8 text; nil when it does not exist or has none.
    public static func data(_ path: String, _ perform: Perform) async throws -> String? {
        switch await perform(.getData(path: path, watch: false)) {
        case .data(let bytes): return bytes.map { String(decoding: $0, as: UTF8.self) }
        case .failed(.noNode): return nil
        case .failed(let error): throw error
        default: throw CoordinationError.other(code: 0, message: "unexpected reply to getData \(path)")
        }
    }
}
