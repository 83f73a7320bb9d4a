// The member's internal state: what phase it is in, what each outstanding request is for, and
// what it holds.

extension GroupMember {
    /// Each phase carries the data that only has meaning in it: a rebalance attempt's reads,
    /// plan and claims live in `.rebalancing`'s `Round`, and the count of failed attempts in a
    /// row lives in the phases of a series of attempts (registering, rebalancing, waiting), so
    /// none of it can outlive the attempt or the series.
    enum Phase: Equatable {
        case notStarted
        /// Creating the ids node; `failedAttempts` of the current series so far (a member that
        /// found itself out of the group registers again mid-series).
        case registering(failedAttempts: Int)
        /// A rebalance attempt.
        case rebalancing(Round)
        /// Before the next attempt (after a conflict or a failure).
        case waiting(until: Instant, then: Retry)
        /// Registered, balanced, waiting for a watch.
        case idle
        /// The session expired; waiting for `.connected` to start over.
        case sessionExpired
        case closing(ClosingStep)
        case closed
    }

    /// One rebalance attempt (§3.4 steps 2–7): what it read, decided and did so far.
    struct Round: Equatable {
        /// Attempts of this series that failed before this one (`< maxClaimRetries`).
        var failedAttempts: Int
        /// A watch fired since this attempt's reads began: one more attempt is due after it.
        var dirty = false
        var step: RoundStep = .reading(Reads())

        init(failedAttempts: Int) { self.failedAttempts = failedAttempts }
    }

    enum RoundStep: Equatable {
        /// Reading the group, the topics' partitions and the brokers.
        case reading(Reads)
        /// Writing the offsets of `releases` (held partitions the plan gives up), before their
        /// owner nodes go.
        case committingReleases(Plan, releases: [Slot])
        /// Deleting the owner nodes given up and creating the new ones.
        case claiming(Plan, Claims)
        /// Reading the offsets of newly held partitions; external storage: the topics whose
        /// `.offsetsLoaded` is awaited, with the partitions asked for.
        case loadingOffsets(Plan, awaitingLoads: [String: Set<BrokerPartition>])
    }

    /// What the reads of an attempt returned so far.
    struct Reads: Equatable {
        var consumerIds: [String] = []
        var consumerTopics: [String: [String]] = [:]
        var topicChildren: [String: [String: TopicRegistration]] = [:]
        var masters: [Int: String] = [:]
    }

    /// What an attempt decided from its reads.
    struct Plan: Equatable {
        /// Each subscribed topic as the reads saw it.
        var views: [String: TopicView] = [:]
        /// This member's share of each subscribed topic.
        var desired: [String: Set<BrokerPartition>] = [:]

        func isDesired(_ slot: Slot) -> Bool { desired[slot.topic]?.contains(slot.partition) == true }
    }

    /// The claims of an attempt.
    struct Claims: Equatable {
        /// Owner nodes this attempt created (or found to be its own already).
        var claimedNow: [Slot] = []
        /// A claim found another consumer's node: the attempt fails once its requests are answered.
        var conflict = false
    }

    /// What comes after `.waiting`, with the failed attempts of the series so far.
    enum Retry: Equatable {
        case register(failedAttempts: Int)
        case rebalance(failedAttempts: Int)
    }

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

}

extension GroupMember {
    /// The attempt under way: only `.rebalancing` has one, and asking for it in any other phase
    /// is a bug in the member.
    var round: Round {
        get {
            guard case .rebalancing(let round) = phase else { preconditionFailure("no rebalance attempt in \(phase)") }
            return round
        }
        _modify {
            guard case .rebalancing(var round) = phase else { preconditionFailure("no rebalance attempt in \(phase)") }
            phase = .idle  // drops the phase's reference, so the round's collections are changed in place
            defer { phase = .rebalancing(round) }
            yield &round
        }
    }
}

extension GroupMember.Round {
    /// The reads so far: only while reading.
    var reads: GroupMember.Reads {
        get {
            guard case .reading(let reads) = step else { preconditionFailure("no reads in \(step)") }
            return reads
        }
        _modify {
            guard case .reading(var reads) = step else { preconditionFailure("no reads in \(step)") }
            step = .reading(GroupMember.Reads())
            defer { step = .reading(reads) }
            yield &reads
        }
    }

    /// The claims so far: only while claiming.
    var claims: GroupMember.Claims {
        get {
            guard case .claiming(_, let claims) = step else { preconditionFailure("no claims in \(step)") }
            return claims
        }
        _modify {
            guard case .claiming(let plan, var claims) = step else { preconditionFailure("no claims in \(step)") }
            step = .claiming(plan, GroupMember.Claims())
            defer { step = .claiming(plan, claims) }
            yield &claims
        }
    }

    /// The plan, once the reads are done.
    var plan: GroupMember.Plan? {
        switch step {
        case .reading: return nil
        case .committingReleases(let plan, _), .claiming(let plan, _), .loadingOffsets(let plan, _): return plan
        }
    }
}
