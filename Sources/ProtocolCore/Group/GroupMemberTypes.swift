/// Where a group keeps its consumed offsets (§5.4).
public enum OffsetStorageMode: Equatable, Hashable, Sendable {
    /// `ZkOffsetStorage`, the default: `offsets/<topic>/<brokerId>-<partition>` = `<msgId>-<offset>`.
    case zooKeeper
    /// Somewhere else (a local file, a database): the member asks its driver with `.loadOffsets`
    /// and `.storeOffsets` at the moments it would read or write ZooKeeper.
    case external
}

extension GroupMember {
    public struct Settings: Equatable, Sendable {
        public var group: String
        /// The full `consumerIdString`, `<group>_<id>` (§3.1): the name of the ids node and the
        /// data of the owner nodes.
        public var consumerId: String
        /// Subscribed topics, de-duplicated and sorted by `init`.
        public var topics: [String]
        public var layout: MetaZooKeeperLayout
        public var strategy: RebalanceStrategy
        /// Where a partition with no stored offset starts (`ConsumerConfig.offset`, §3.4 step 6).
        public var startOffset: Int64
        /// Start a partition with no stored offset at `Int64.max`; the broker answers with a 301
        /// to its max offset (`alwaysConsumeFromMaxOffset`, §3.4 step 6).
        public var consumeFromMaxOffset: Bool
        public var offsetStorage: OffsetStorageMode
        /// Wait before the next attempt after a claim conflict or a failed request (`zkSyncTimeMs`).
        public var syncTimeMs: Int64
        /// Attempts in a row before `.rebalanceFailed` (`MAX_N_RETRIES`, §3.4 step 5).
        public var maxClaimRetries: Int
        /// Modified offsets are written at most this long after they changed (`commitOffsetPeriodInMills`, §5.4).
        public var commitIntervalMs: Int64
        /// After `.rebalanceFailed`, the wait before a new series of attempts: a member never gives up.
        public var retryAfterFailureMs: Int64

        public init(group: String, consumerId: String, topics: [String],
                    layout: MetaZooKeeperLayout = .init(), strategy: RebalanceStrategy = .default,
                    startOffset: Int64 = 0, consumeFromMaxOffset: Bool = false,
                    offsetStorage: OffsetStorageMode = .zooKeeper,
                    syncTimeMs: Int64 = 5000, maxClaimRetries: Int = 7,
                    commitIntervalMs: Int64 = 5000, retryAfterFailureMs: Int64 = 5000) {
            let isName = MetaZooKeeperLayout.isName
            precondition(isName(group) && isName(consumerId), "group and consumer id must be znode names")
            precondition(!topics.isEmpty && topics.allSatisfy(isName), "topics must be non-empty znode names")
            precondition(startOffset >= 0, "startOffset must not be negative")
            precondition(syncTimeMs > 0 && commitIntervalMs > 0 && retryAfterFailureMs > 0 && maxClaimRetries >= 1,
                         "delays and retries must be positive")
            self.group = group
            self.consumerId = consumerId
            self.topics = Set(topics).sorted(by: RebalanceStrategy.precedes)
            self.layout = layout
            self.strategy = strategy
            self.startOffset = startOffset
            self.consumeFromMaxOffset = consumeFromMaxOffset
            self.offsetStorage = offsetStorage
            self.syncTimeMs = syncTimeMs
            self.maxClaimRetries = maxClaimRetries
            self.commitIntervalMs = commitIntervalMs
            self.retryAfterFailureMs = retryAfterFailureMs
        }
    }

    public enum Event: Equatable, Sendable {
        /// Register and rebalance. Everything before it is ignored.
        case start
        /// A reply, watch or session change from the coordination session.
        case coordination(CoordinationEvent)
        /// The application finished the messages of `partition` up to `nextOffset`; `msgId` is the
        /// id of the last one (§5.1, §5.4).
        case processed(topic: String, partition: BrokerPartition, nextOffset: Int64, msgId: Int64)
        /// External storage only: the answer to `.loadOffsets` (a partition absent = nothing stored).
        case offsetsLoaded(topic: String, [BrokerPartition: StoredOffset])
        /// Time passed (answers a `.scheduleTick`).
        case tick
        /// Commit offsets, give up owned partitions and the registration, then report `.closed`.
        case close
    }

    /// Where one owned partition is fetched from.
    public struct Assignment: Equatable, Hashable, Sendable {
        public var topic: String
        public var partition: BrokerPartition
        /// The master's `meta://host:port` (§3.4 step 7).
        public var brokerURI: String
        /// The first fetch offset; `Int64.max` asks the broker for its max (§3.4 step 6).
        public var offset: Int64

        public init(topic: String, partition: BrokerPartition, brokerURI: String, offset: Int64) {
            self.topic = topic
            self.partition = partition
            self.brokerURI = brokerURI
            self.offset = offset
        }
    }

    /// One offset to write to external storage.
    public struct OffsetCommit: Equatable, Hashable, Sendable {
        public var topic: String
        public var partition: BrokerPartition
        public var offset: StoredOffset

        public init(topic: String, partition: BrokerPartition, offset: StoredOffset) {
            self.topic = topic
            self.partition = partition
            self.offset = offset
        }
    }

    /// Actions are to be performed in order: the member relies on it (a `.storeOffsets` comes
    /// before the owner deletes that give its partitions away).
    public enum Action: Equatable, Sendable {
        /// Submit `request` to the coordination session; its reply comes back with `tag`.
        case coordinate(CoordinationRequest, tag: UInt64)
        case startFetching(Assignment)
        /// Stop fetching; messages of the partition still being processed may be reported with
        /// `.processed` until the partition is given up.
        case stopFetching(topic: String, partition: BrokerPartition)
        /// External storage: read these partitions' offsets and answer with `.offsetsLoaded`.
        case loadOffsets(topic: String, [BrokerPartition])
        /// External storage: write these offsets before performing the next action.
        case storeOffsets([OffsetCommit])
        /// Deliver `.tick` at or after this instant.
        case scheduleTick(at: Instant)
        /// A rebalance applied `topic`'s new share (informational).
        case rebalanced(topic: String, owned: [BrokerPartition])
        /// `attempts` attempts in a row failed; a new series starts after `retryAfterFailureMs`.
        case rebalanceFailed(attempts: Int)
        /// `.close` finished; the member does nothing more.
        case closed
    }

    /// Running totals, for statistics and simulator checkers.
    public struct Counters: Equatable, Sendable {
        /// Times the ids node was created (the first registration and each after an expiry).
        public var registrations = 0
        /// Rebalance attempts started.
        public var rebalanceAttempts = 0
        /// Attempts that completed.
        public var rebalances = 0
        /// Owner nodes found held by another consumer.
        public var claimConflicts = 0
        /// Attempts cut short by a failed request.
        public var abortedAttempts = 0
        /// `.rebalanceFailed` reported.
        public var rebalanceFailures = 0
        /// Offsets written (ZooKeeper replies or `.storeOffsets` entries).
        public var commits = 0
        public var commitFailures = 0
        /// Session expiries seen.
        public var expiries = 0
        /// Replies whose tag is not outstanding (from an aborted attempt or an old session).
        public var staleReplies = 0
        /// `.processed` for a partition not owned, or going backwards; ignored.
        public var ignoredProcessed = 0
        /// Stored offsets that could not be parsed; the partition starts as if none were stored.
        public var badStoredOffsets = 0
    }
}
