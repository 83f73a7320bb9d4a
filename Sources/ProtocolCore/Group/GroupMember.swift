/// One consumer's membership of one group (reference §3.4 steps 1–7, §5.4) as a pure machine that
/// speaks to ZooKeeper only through `CoordinationRequest`s.
///
/// The member registers its ephemeral `ids/<consumerId>` node, then rebalances: it reads the group,
/// the topics' partitions and the brokers (setting watches), computes its share with
/// `RebalanceStrategy`, and applies the difference to what it holds — give up (stop fetching, commit,
/// delete the owner node), then claim (create owner nodes), then load offsets and start fetching.
/// A claim held by another consumer ends the attempt: the claims of the attempt are released and
/// the member tries again after `syncTimeMs`, `.rebalanceFailed` after `maxClaimRetries` attempts,
/// and a new series after `retryAfterFailureMs`. ZooKeeper answers a session's requests in order,
/// which the member relies on to pipeline: ancestors are created in the same batch as the node
/// that needs them, and the owner nodes of given-up partitions are deleted only after their
/// offsets were written (a barrier, since a first commit may need to create its node).
///
/// Applying is a difference against what is held, so a topic whose consumers, partitions and
/// broker URIs did not change (and whose claims are complete) causes no request and no fetcher
/// restart; `.rebalanced` is reported for the topics that did change. Fetching goes to the master
/// of a partition's broker (§3.4 step 7); slaves are not used yet, so a partition whose broker has
/// no master is held but not fetched until a master appears.
///
/// Offsets are kept in memory per owned partition and written when modified, at most
/// `commitIntervalMs` after a change, before a partition is given up, and on `.close`. They only
/// move forward: a `.processed` below the current offset is ignored (so a broker's 301 back to a
/// smaller max offset is not followed here — the committed offset stays where it was).
/// On session expiry all ownership is gone: uncommitted offsets are dropped (their messages will
/// be delivered again: at-least-once) and the member registers anew once connected.
public struct GroupMember: Sendable {
    public let settings: Settings
    public internal(set) var counters = Counters()

    var phase: Phase = .notStarted
    /// Partitions whose owner node this member holds (or may hold after an unknown outcome), per topic.
    var holdings: [String: [BrokerPartition: Holding]] = [:]
    /// Partitions whose owner node may carry my id although I do not hold them: a create or
    /// delete of it whose outcome is unknown (connection loss, or an attempt aborted before its
    /// reply). Each attempt settles them: a partition still mine is claimed again; any other has
    /// its node deleted when it carries my id, so that it never blocks its next owner.
    var suspects: Set<Slot> = []
    /// Requests awaiting their reply, by tag.
    var pending: [UInt64: Pending] = [:]
    var nextTag: UInt64 = 1
    /// What each topic looked like when it was last applied successfully.
    var applied: [String: TopicView] = [:]
    /// When the modified offsets are written next (nil: none modified).
    var commitDue: Instant?
    var wakeUp = WakeUp()

    public init(settings: Settings) {
        self.settings = settings
    }

    /// The partitions held, per topic, sorted.
    public var owned: [String: [BrokerPartition]] {
        var result: [String: [BrokerPartition]] = [:]
        for (topic, partitions) in holdings where !partitions.isEmpty { result[topic] = partitions.keys.sorted() }
        return result
    }

    /// Whether the last rebalance completed and no other is under way or due.
    public var isSettled: Bool { phase == .idle }

    /// Feeds one event; returns what the driver must do, in order.
    public mutating func handle(_ event: Event, now: Instant) -> [Action] {
        var before: Holdings = [:]
        var wasIdle = false
        assert({ before = holdings; wasIdle = phase == .idle; return true }())
        var actions: [Action] = []
        switch event {
        case .start:
            if phase == .notStarted { startRegistration(failedAttempts: 0, &actions) }
        case .coordination(.reply(let tag, let reply)):
            receive(reply, tag: tag, now, &actions)
        case .coordination(.watch(let watch)):
            watchFired(watch, now, &actions)
        case .coordination(.session(let state)):
            sessionChanged(state, now, &actions)
        case .processed(let topic, let partition, let nextOffset, let msgId):
            processed(Slot(topic: topic, partition: partition), StoredOffset(msgId: msgId, offset: nextOffset), now)
        case .offsetsLoaded(let topic, let offsets):
            offsetsLoaded(topic, offsets, now, &actions)
        case .tick:
            break
        case .close:
            close(now, &actions)
        }
        expire(now, &actions)
        if let at = wakeUp.request(nextDeadline, now: now) { actions.append(.scheduleTick(at: at)) }
        checkInvariants(before: before, wasIdle: wasIdle)
        return actions
    }

    // MARK: requests

    /// Allocates a tag, remembers what it is for, and emits the request.
    mutating func submit(_ request: CoordinationRequest, _ purpose: Purpose, _ scope: Scope, _ actions: inout [Action]) {
        let tag = nextTag
        nextTag += 1
        pending[tag] = Pending(purpose: purpose, scope: scope)
        actions.append(.coordinate(request, tag: tag))
    }

    /// Creates the missing ancestors of `request`'s path (persistent, no data as the original's; an existing one
    /// answers `.nodeExists`, which is fine), then `request` again. In one batch: the session's
    /// FIFO order makes the ancestors exist before `request` is processed.
    mutating func submitWithAncestors(_ request: CoordinationRequest, _ purpose: Purpose, _ scope: Scope,
                                      _ actions: inout [Action]) {
        for ancestor in MetaZooKeeperLayout.ancestors(of: request.path) {
            submit(.create(path: ancestor, data: nil, mode: .persistent), .ancestor, scope, &actions)
        }
        submit(request, purpose, scope, &actions)
    }

    private mutating func receive(_ reply: CoordinationReply, tag: UInt64, _ now: Instant, _ actions: inout [Action]) {
        guard let entry = pending.removeValue(forKey: tag) else {
            counters.staleReplies += 1
            return
        }
        switch entry.purpose {
        case .ancestor, .deleteStaleRegistration, .deleteStaleOwner, .closeDelete:
            // The request that follows in the same batch reports the outcome.
            break
        case .register(let recreate, let retried):
            registrationReplied(reply, recreate: recreate, retried: retried, now, &actions)
        case .consumerIds, .consumerData, .topicChildren, .topicChild, .brokerIds, .master, .masterExists:
            readReplied(entry.purpose, reply, now, &actions)
        case .claim(let slot, let retried):
            claimReplied(slot, retried: retried, reply, now, &actions)
        case .claimOwner(let slot):
            claimOwnerReplied(slot, reply, now, &actions)
        case .reclaim(let slot):
            reclaimReplied(slot, reply, now, &actions)
        case .unclaim(let slot):
            unclaimReplied(slot, reply, &actions)
        case .verifySuspect(let slot), .deleteSuspect(let slot):
            suspectReplied(slot, entry.purpose, reply, now, &actions)
        case .releaseOwner(let slot):
            releaseReplied(slot, reply, now, &actions)
        case .commitSet(let slot, let offset, let retried):
            commitSetReplied(slot, offset, retried: retried, entry.scope, reply, now, &actions)
        case .commitCreate(let slot, let offset):
            commitCreateReplied(slot, offset, entry.scope, reply, now, &actions)
        case .loadOffset(let slot):
            loadReplied(slot, reply, now, &actions)
        }
        advance(now, &actions)
    }

    /// A request of `scope` failed in a way the member cannot work around.
    mutating func failed(_ scope: Scope, _ now: Instant, _ actions: inout [Action]) {
        switch scope {
        case .registration:
            guard case .registering(let failedAttempts) = phase else { preconditionFailure("registration failed in \(phase)") }
            pending = pending.filter { $0.value.scope != .registration }
            phase = .waiting(until: now.adding(milliseconds: settings.syncTimeMs), then: .register(failedAttempts: failedAttempts))
        case .round:
            abortRound(now, &actions)
        case .commit:
            counters.commitFailures += 1
            if commitDue == nil { commitDue = now.adding(milliseconds: settings.commitIntervalMs) }
        case .closing:
            // Closing goes on regardless: the session's end removes the ephemeral nodes anyway.
            counters.commitFailures += 1
        case .cleanup:
            break
        }
    }

    /// Runs the next step while the current one has nothing left to wait for.
    mutating func advance(_ now: Instant, _ actions: inout [Action]) {
        while isStepDone {
            switch phase {
            case .registering(let failedAttempts): startRound(failedAttempts: failedAttempts, &actions)
            case .rebalancing(let round):
                switch round.step {
                case .reading(let reads): plan(reads, now, &actions)
                case .committingReleases(let plan, let releases): startClaims(plan, releases, &actions)
                case .claiming(let plan, let claims):
                    claims.conflict ? resolveConflict(claims, now, &actions) : startLoads(plan, &actions)
                case .loadingOffsets(let plan, _): finishRound(plan, dirty: round.dirty, &actions)
                }
            case .closing(.committing): deleteForClose(&actions)
            case .closing(.deleting):
                holdings = [:]
                phase = .closed
                actions.append(.closed)
            case .notStarted, .waiting, .idle, .sessionExpired, .closed: return
            }
        }
    }

    private var isStepDone: Bool {
        let scope: Scope
        switch phase {
        case .registering: scope = .registration
        case .rebalancing(let round):
            if case .loadingOffsets(_, let awaitingLoads) = round.step, !awaitingLoads.isEmpty { return false }
            scope = .round
        case .closing: scope = .closing
        case .notStarted, .waiting, .idle, .sessionExpired, .closed: return false
        }
        return !pending.values.contains { $0.scope == scope }
    }

    // MARK: registration (§3.4 step 1)

    /// Registers; `failedAttempts` of the current series carry over to the attempt that follows.
    mutating func startRegistration(failedAttempts: Int, _ actions: inout [Action]) {
        phase = .registering(failedAttempts: failedAttempts)
        submit(registrationRequest, .register(recreate: false, retried: false), .registration, &actions)
    }

    private var registrationRequest: CoordinationRequest {
        .create(path: settings.layout.consumerIdPath(settings.group, settings.consumerId),
                data: Array(settings.topics.joined(separator: ",").utf8), mode: .ephemeral)
    }

    /// An existing ids node may be an old session's (a restart within the session timeout) or this
    /// session's after a lost connection: it is deleted and created again, so the node surely
    /// belongs to this session. If the second create finds a node again, another process with the
    /// same id raced us; it is accepted (a duplicate id is a configuration error either way, and
    /// deleting in turn would make the two processes fight forever).
    private mutating func registrationReplied(_ reply: CoordinationReply, recreate: Bool, retried: Bool,
                                              _ now: Instant, _ actions: inout [Action]) {
        let path = settings.layout.consumerIdPath(settings.group, settings.consumerId)
        switch reply {
        case .created:
            counters.registrations += 1
        case .failed(.nodeExists) where recreate:
            counters.registrations += 1
        case .failed(.nodeExists):
            submit(.delete(path: path), .deleteStaleRegistration, .registration, &actions)
            submit(registrationRequest, .register(recreate: true, retried: retried), .registration, &actions)
        case .failed(.noNode) where !retried:
            submitWithAncestors(registrationRequest, .register(recreate: recreate, retried: true), .registration, &actions)
        default:
            failed(.registration, now, &actions)
        }
    }

    // MARK: watches and session (§3.4 step 2, step 1's session watch)

    private mutating func watchFired(_ watch: WatchEvent, _ now: Instant, _ actions: inout [Action]) {
        guard isWatched(watch.path) else { return }
        switch phase {
        case .idle: startRound(failedAttempts: 0, &actions)
        case .rebalancing: round.dirty = true
        case .registering, .waiting:
            // The attempt that follows begins its reads (and sets its watches) after this change.
            break
        case .notStarted, .sessionExpired, .closing, .closed: break
        }
    }

    private func isWatched(_ path: String) -> Bool {
        let layout = settings.layout
        if path == layout.consumerIdsPath(settings.group) || path == layout.brokerIdsPath { return true }
        if path.hasPrefix(layout.brokerIdsPath + "/") && path.hasSuffix("/master") { return true }
        return settings.topics.contains { layout.topicSubPath($0) == path }
    }

    private mutating func sessionChanged(_ state: SessionState, _ now: Instant, _ actions: inout [Action]) {
        switch state {
        case .connecting:
            break
        case .connected:
            if phase == .sessionExpired { startRegistration(failedAttempts: 0, &actions) }
        case .expired:
            sessionExpired(&actions)
        }
    }

    /// Everything the session held is gone (§3.4 step 1's session watch): stop, forget, start over.
    private mutating func sessionExpired(_ actions: inout [Action]) {
        switch phase {
        case .notStarted, .sessionExpired, .closed:
            return
        case .closing:
            pending = [:]
            holdings = [:]
            phase = .closed
            actions.append(.closed)
            return
        case .registering, .rebalancing, .waiting, .idle:
            break
        }
        counters.expiries += 1
        stopFetchingAll(&actions)
        holdings = [:]
        suspects = []
        pending = [:]
        applied = [:]
        commitDue = nil
        phase = .sessionExpired
    }

    func sortedSlots(where include: (Slot, Holding) -> Bool = { _, _ in true }) -> [Slot] {
        var slots: [Slot] = []
        for (topic, partitions) in holdings {
            for (partition, holding) in partitions {
                let slot = Slot(topic: topic, partition: partition)
                if include(slot, holding) { slots.append(slot) }
            }
        }
        return slots.sorted()
    }

    mutating func stopFetchingAll(_ actions: inout [Action]) {
        for slot in sortedSlots(where: { $1.fetchingFrom != nil }) {
            holdings[slot.topic]?[slot.partition]?.fetchingFrom = nil
            actions.append(.stopFetching(topic: slot.topic, partition: slot.partition))
        }
    }

    // MARK: close (§5.4: offsets are committed on shutdown)

    private mutating func close(_ now: Instant, _ actions: inout [Action]) {
        switch phase {
        case .closing, .closed:
            return
        case .notStarted, .sessionExpired:
            phase = .closed
            actions.append(.closed)
            return
        case .registering, .rebalancing, .waiting, .idle:
            break
        }
        pending = [:]
        commitDue = nil
        phase = .closing(.committing)
        stopFetchingAll(&actions)
        commit(sortedSlots(where: { $1.isModified }), .closing, &actions)
        advance(now, &actions)
    }

    private mutating func deleteForClose(_ actions: inout [Action]) {
        phase = .closing(.deleting)
        for slot in sortedSlots() {
            submit(.delete(path: ownerPath(slot)), .closeDelete, .closing, &actions)
        }
        submit(.delete(path: settings.layout.consumerIdPath(settings.group, settings.consumerId)),
               .closeDelete, .closing, &actions)
    }

    // MARK: time

    private mutating func expire(_ now: Instant, _ actions: inout [Action]) {
        if case .waiting(let until, let next) = phase, until <= now {
            switch next {
            case .register(let failedAttempts): startRegistration(failedAttempts: failedAttempts, &actions)
            case .rebalance(let failedAttempts): startRound(failedAttempts: failedAttempts, &actions)
            }
        }
        if let due = commitDue, due <= now, isMember {
            commitDue = nil
            commit(sortedSlots(where: { $1.isModified }), .commit, &actions)
        }
    }

    private var nextDeadline: Instant? {
        var deadline: Instant?
        if case .waiting(let until, _) = phase { deadline = until }
        if let due = commitDue, isMember { deadline = min(deadline ?? due, due) }
        return deadline
    }

    /// Whether the member is in the group (or getting there) with a live session.
    var isMember: Bool {
        switch phase {
        case .registering, .rebalancing, .waiting, .idle: return true
        case .notStarted, .sessionExpired, .closing, .closed: return false
        }
    }

    func ownerPath(_ slot: Slot) -> String { settings.layout.ownerPath(settings.group, slot.topic, slot.partition) }
    func offsetPath(_ slot: Slot) -> String { settings.layout.offsetPath(settings.group, slot.topic, slot.partition) }
}
