// The member's internal state: what phase it is in, what each outstanding request is for, and
// what it holds.

extension GroupMember {
    enum Phase: Equatable {
        case notStarted
        /// Creating the ids node.
        case registering
        /// A rebalance attempt at `step`; `round` holds its data.
        case rebalancing(RoundStep)
        /// Before the next attempt (after a conflict or a failure).
        case waiting(until: Instant, then: Retry)
        /// Registered, balanced, waiting for a watch.
        case idle
        /// The session expired; waiting for `.connected` to start over.
        case sessionExpired
        case closing(ClosingStep)
        case closed
    }

    enum RoundStep: Equatable {
        /// Reading the group, the topics' partitions and the brokers.
        case reading
        /// Writing the offsets of partitions given up, before their owner nodes go.
        case committingReleases
        /// Deleting the owner nodes given up and creating the new ones.
        case claiming
        /// Reading the offsets of newly held partitions.
        case loadingOffsets
    }

    enum Retry: Equatable { case register, rebalance }

    enum ClosingStep: Equatable { case committing, deleting }

    /// Which activity a request belongs to: a step waits for the replies of its own scope only,
    /// and an aborted activity drops its scope's tags.
    enum Scope: Equatable {
        case registration
        case round
        /// Periodic offset commits, independent of rebalances.
        case commit
        case closing
        /// Fire-and-forget: releasing the claims of a conflicting attempt.
        case cleanup
    }

    enum Purpose: Equatable {
        /// A persistent ancestor created before a request that needs it.
        case ancestor
        case register(recreate: Bool, retried: Bool)
        case deleteStaleRegistration
        case consumerIds
        case consumerData(String)
        case topicChildren(String, retried: Bool)
        case topicChild(String, name: String)
        case brokerIds
        case master(Int)
        case masterExists(Int)
        case claim(Slot, retried: Bool)
        /// Reading an owner node that already existed: mine, or a conflict.
        case claimOwner(Slot)
        /// Deleting an owner node with my id that may belong to an earlier session.
        case deleteStaleOwner
        /// Claiming again after `deleteStaleOwner`.
        case reclaim(Slot)
        case releaseOwner(Slot)
        case unclaim(Slot)
        /// Reading the owner node of a suspect slot (see `GroupMember.suspects`).
        case verifySuspect(Slot)
        /// Deleting the owner node of a suspect slot that turned out to carry my id.
        case deleteSuspect(Slot)
        case commitSet(Slot, StoredOffset, retried: Bool)
        /// Creating the offset node a `setData` did not find.
        case commitCreate(Slot, StoredOffset)
        case loadOffset(Slot)
        case closeDelete
    }

    struct Pending: Equatable {
        var purpose: Purpose
        var scope: Scope
    }

    /// One partition of one topic, ordered by topic then (broker, partition).
    struct Slot: Hashable, Comparable {
        var topic: String
        var partition: BrokerPartition

        static func < (a: Slot, b: Slot) -> Bool {
            a.topic != b.topic ? RebalanceStrategy.precedes(a.topic, b.topic) : a.partition < b.partition
        }
    }

    /// A partition whose owner node this member holds.
    struct Holding: Equatable {
        /// Whether the stored offset was read (fetching starts only after).
        var loaded = false
        /// Where processing has reached: the stored offset at first, then the last `.processed`.
        var offset: StoredOffset?
        /// What was last read from or written to the offset storage.
        var committed: StoredOffset?
        /// The broker URI being fetched from; nil when not fetching.
        var fetchingFrom: String?

        var isModified: Bool { loaded && offset != nil && offset != committed }
    }

    /// A topic as one rebalance saw it (§3.4 step 2); a topic is applied again only when it changes.
    struct TopicView: Equatable {
        var consumers: [String]
        var partitions: [String]
        /// Master URIs of the brokers of `partitions` (a broker without a master is absent).
        var brokerURIs: [Int: String]
    }

    /// What one attempt read and decided.
    struct Round {
        var consumerIds: [String] = []
        var consumerTopics: [String: [String]] = [:]
        var topicChildren: [String: [String: TopicRegistration]] = [:]
        var masters: [Int: String] = [:]
        var views: [String: TopicView] = [:]
        var desired: [String: Set<BrokerPartition>] = [:]
        /// Held partitions this attempt gives up.
        var releases: [Slot] = []
        /// Owner nodes this attempt created (or found to be its own already).
        var claimedNow: [Slot] = []
        var conflict = false
        /// External storage: topics whose `.offsetsLoaded` is awaited, with the partitions asked for.
        var awaitingLoads: [String: Set<BrokerPartition>] = [:]
    }
}
