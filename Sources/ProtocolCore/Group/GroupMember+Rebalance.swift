// One rebalance attempt (§3.4 steps 2–7): read with watches, compute the share, give up, claim,
// load offsets, fetch.

extension GroupMember {
    // MARK: reading (§3.4 step 2, step 7)

    /// Starts an attempt; `failedAttempts` is how many of this series failed before it.
    mutating func startRound(failedAttempts: Int, _ actions: inout [Action]) {
        phase = .rebalancing(Round(failedAttempts: failedAttempts))
        counters.rebalanceAttempts += 1
        let layout = settings.layout
        submit(.getChildren(path: layout.consumerIdsPath(settings.group), watch: true), .consumerIds, .round, &actions)
        for topic in settings.topics {
            submit(.getChildren(path: layout.topicSubPath(topic), watch: true), .topicChildren(topic, retried: false),
                   .round, &actions)
        }
        submit(.getChildren(path: layout.brokerIdsPath, watch: true), .brokerIds, .round, &actions)
    }

    mutating func readReplied(_ purpose: Purpose, _ reply: CoordinationReply, _ now: Instant, _ actions: inout [Action]) {
        let layout = settings.layout
        switch (purpose, reply) {
        case (.consumerIds, .children(let names)):
            round.reads.consumerIds = names.sorted(by: RebalanceStrategy.precedes)
            for id in round.reads.consumerIds {
                submit(.getData(path: layout.consumerIdPath(settings.group, id), watch: false), .consumerData(id), .round, &actions)
            }
        case (.consumerData(let id), .data(let bytes)):
            round.reads.consumerTopics[id] = String(decoding: bytes ?? [], as: UTF8.self)
                .split(separator: ",").map { String($0).trimmingWhitespace }
        case (.topicChildren(let topic, _), .children(let names)):
            round.reads.topicChildren[topic] = [:]
            for name in names.sorted() {
                submit(.getData(path: layout.topicSubPath(topic) + "/" + name, watch: false),
                       .topicChild(topic, name: name), .round, &actions)
            }
        case (.topicChildren(let topic, retried: false), .failed(.noNode)):
            // Nobody registered the topic yet: create its node so the watch can be set (§3.5).
            submitWithAncestors(.create(path: layout.topicSubPath(topic), data: nil, mode: .persistent), .ancestor, .round, &actions)
            submit(.getChildren(path: layout.topicSubPath(topic), watch: true), .topicChildren(topic, retried: true), .round, &actions)
        case (.topicChild(let topic, let name), .data(let bytes)):
            if let registration = TopicRegistration(json: String(decoding: bytes ?? [], as: UTF8.self)) {
                round.reads.topicChildren[topic, default: [:]][name] = registration
            }
        case (.brokerIds, .children(let names)):
            for id in names.compactMap({ Int($0) }).sorted() {
                submit(.getData(path: layout.masterPath(id), watch: true), .master(id), .round, &actions)
            }
        case (.master(let id), .data(let bytes)):
            round.reads.masters[id] = String(decoding: bytes ?? [], as: UTF8.self)
        case (.master(let id), .failed(.noNode)):
            // A getData watch is not set on a missing node; `exists` sets one for its creation.
            submit(.exists(path: layout.masterPath(id), watch: true), .masterExists(id), .round, &actions)
        case (.masterExists, .exists(let present)):
            if present { round.dirty = true }  // the master came back between the two reads
        case (.consumerIds, .failed(.noNode)), (.brokerIds, .failed(.noNode)),
             (.consumerData, .failed(.noNode)), (.topicChild, .failed(.noNode)):
            // Gone between the listing and the read: the watch set by the listing reports it.
            break
        default:
            failed(.round, now, &actions)
        }
    }

    // MARK: deciding (§3.4 steps 2–4)

    /// Computes every topic's share; a member that is not (or no longer) in the group registers first.
    mutating func plan(_ reads: Reads, _ now: Instant, _ actions: inout [Action]) {
        let me = settings.consumerId
        guard reads.consumerIds.contains(me), reads.consumerTopics[me] != nil else {
            startRegistration(failedAttempts: round.failedAttempts, &actions)
            return
        }
        let members = reads.consumerIds.compactMap { id in reads.consumerTopics[id].map { (id: id, topics: $0) } }
        var plan = Plan()
        for topic in settings.topics {
            let children = (reads.topicChildren[topic] ?? [:]).sorted { $0.key < $1.key }
                .map { (name: $0.key, registration: $0.value) }
            let partitions = RebalanceStrategy.partitionStrings(topicSubChildren: children)
            let consumers = RebalanceStrategy.consumers(subscribedTo: topic, in: members)
            let mine = settings.strategy.assign(partitions: partitions, consumers: consumers, me: me)
            var uris: [Int: String] = [:]
            for partition in partitions.compactMap(BrokerPartition.init) {
                if let uri = reads.masters[partition.brokerId], !uri.isEmpty { uris[partition.brokerId] = uri }
            }
            plan.views[topic] = TopicView(consumers: consumers, partitions: partitions, brokerURIs: uris)
            plan.desired[topic] = Set(mine.compactMap(BrokerPartition.init))
        }
        startReleases(plan, &actions)
    }

    // MARK: applying (§3.4 step 5)

    /// Partitions no longer mine: stop fetching, then write their offsets. Their owner nodes go
    /// only after the writes were answered, so the next owner reads the final offset.
    private mutating func startReleases(_ plan: Plan, _ actions: inout [Action]) {
        let releases = sortedSlots { slot, _ in !plan.isDesired(slot) }
        round.step = .committingReleases(plan, releases: releases)
        for slot in releases where holdings[slot.topic]?[slot.partition]?.fetchingFrom != nil {
            holdings[slot.topic]?[slot.partition]?.fetchingFrom = nil
            actions.append(.stopFetching(topic: slot.topic, partition: slot.partition))
        }
        commit(releases.filter { holdings[$0.topic]?[$0.partition]?.isModified == true }, .round, &actions)
    }

    mutating func startClaims(_ plan: Plan, _ releases: [Slot], _ actions: inout [Action]) {
        round.step = .claiming(plan, Claims())
        for slot in releases {
            submit(.delete(path: ownerPath(slot)), .releaseOwner(slot), .round, &actions)
        }
        for slot in suspects.sorted() {
            if plan.isDesired(slot) {
                suspects.remove(slot)  // claimed below: a node with my id is replaced by this session's
            } else {
                submit(.getData(path: ownerPath(slot), watch: false), .verifySuspect(slot), .round, &actions)
            }
        }
        for topic in settings.topics {
            for partition in (plan.desired[topic] ?? []).sorted() where holdings[topic]?[partition] == nil {
                let slot = Slot(topic: topic, partition: partition)
                submit(claimRequest(slot), .claim(slot, retried: false), .round, &actions)
            }
        }
    }

    func claimRequest(_ slot: Slot) -> CoordinationRequest {
        .create(path: ownerPath(slot), data: Array(settings.consumerId.utf8), mode: .ephemeral)
    }

    mutating func releaseReplied(_ slot: Slot, _ reply: CoordinationReply, _ now: Instant, _ actions: inout [Action]) {
        switch reply {
        case .deleted, .failed(.noNode):
            holdings[slot.topic]?[slot.partition] = nil
        default:
            // The delete may have happened: not held any more, but suspect until checked.
            suspect(slot)
            failed(.round, now, &actions)
        }
    }

    /// `slot`'s owner node may carry my id though I do not hold it (see `suspects`).
    mutating func suspect(_ slot: Slot) {
        holdings[slot.topic]?[slot.partition] = nil
        suspects.insert(slot)
    }

    /// A suspect's node: deleted when it carries my id; otherwise it is not mine (any more).
    mutating func suspectReplied(_ slot: Slot, _ purpose: Purpose, _ reply: CoordinationReply, _ now: Instant,
                                 _ actions: inout [Action]) {
        switch (purpose, reply) {
        case (.verifySuspect, .data(let bytes)) where String(decoding: bytes ?? [], as: UTF8.self) == settings.consumerId:
            submit(.delete(path: ownerPath(slot)), .deleteSuspect(slot), .round, &actions)
        case (.verifySuspect, .data), (.verifySuspect, .failed(.noNode)),
             (.deleteSuspect, .deleted), (.deleteSuspect, .failed(.noNode)):
            suspects.remove(slot)
        default:
            failed(.round, now, &actions)
        }
    }

    /// Releasing a claim of a conflicting attempt: if its outcome is unknown, the node is suspect,
    /// and an attempt must settle it even when none is due.
    mutating func unclaimReplied(_ slot: Slot, _ reply: CoordinationReply, _ actions: inout [Action]) {
        switch reply {
        case .deleted, .failed(.noNode), .failed(.sessionExpired):
            break
        default:
            suspect(slot)
            if phase == .idle { startRound(failedAttempts: 0, &actions) }
        }
    }

    mutating func claimReplied(_ slot: Slot, retried: Bool, _ reply: CoordinationReply, _ now: Instant,
                               _ actions: inout [Action]) {
        switch reply {
        case .created:
            take(slot)
        case .failed(.nodeExists):
            submit(.getData(path: ownerPath(slot), watch: false), .claimOwner(slot), .round, &actions)
        case .failed(.noNode) where !retried:
            submitWithAncestors(claimRequest(slot), .claim(slot, retried: true), .round, &actions)
        default:
            suspect(slot)
            failed(.round, now, &actions)
        }
    }

    /// An owner node that already existed: with my id it is an earlier claim of mine — this
    /// session's whose reply was lost, or the previous process's (a restart with the same id
    /// within the session timeout), whose node vanishes when that session expires. Which one is
    /// unknowable from here, so it is deleted and created again, surely by this session (as the
    /// ids node is at registration). Otherwise another consumer still holds it (§3.4 step 5).
    mutating func claimOwnerReplied(_ slot: Slot, _ reply: CoordinationReply, _ now: Instant, _ actions: inout [Action]) {
        switch reply {
        case .data(let bytes) where String(decoding: bytes ?? [], as: UTF8.self) == settings.consumerId:
            submit(.delete(path: ownerPath(slot)), .deleteStaleOwner, .round, &actions)
            submit(claimRequest(slot), .reclaim(slot), .round, &actions)
        case .data, .failed(.noNode):
            // Held by another, or just released: either way the attempt lost the race.
            round.claims.conflict = true
            counters.claimConflicts += 1
        default:
            suspect(slot)
            failed(.round, now, &actions)
        }
    }

    /// The claim that follows the deletion of my own earlier owner node. Finding a node again
    /// means another consumer got in between (or runs with my id): the attempt lost the race.
    mutating func reclaimReplied(_ slot: Slot, _ reply: CoordinationReply, _ now: Instant, _ actions: inout [Action]) {
        switch reply {
        case .created:
            take(slot)
        case .failed(.nodeExists):
            round.claims.conflict = true
            counters.claimConflicts += 1
        default:
            suspect(slot)
            failed(.round, now, &actions)
        }
    }

    private mutating func take(_ slot: Slot) {
        holdings[slot.topic, default: [:]][slot.partition] = Holding()
        round.claims.claimedNow.append(slot)
    }

    /// Releases every claim of this attempt (so members waiting for them can proceed) and waits.
    mutating func resolveConflict(_ claims: Claims, _ now: Instant, _ actions: inout [Action]) {
        for slot in claims.claimedNow.sorted() {
            holdings[slot.topic]?[slot.partition] = nil
            submit(.delete(path: ownerPath(slot)), .unclaim(slot), .cleanup, &actions)
        }
        attemptFailed(now, &actions)
    }

    /// A request failed mid-attempt: its outcome is unknown, so the attempt ends and starts over.
    /// Claims already made stay held (not fetching); the next attempt keeps or releases them.
    /// Owner nodes still being created or deleted become suspects: their replies will be ignored.
    mutating func abortRound(_ now: Instant, _ actions: inout [Action]) {
        for (_, entry) in pending where entry.scope == .round {
            switch entry.purpose {
            case .claim(let slot, _), .claimOwner(let slot), .reclaim(let slot), .releaseOwner(let slot):
                suspect(slot)
            default:
                break
            }
        }
        pending = pending.filter { $0.value.scope != .round }
        counters.abortedAttempts += 1
        attemptFailed(now, &actions)
    }

    private mutating func attemptFailed(_ now: Instant, _ actions: inout [Action]) {
        let failedAttempts = round.failedAttempts + 1
        if failedAttempts >= settings.maxClaimRetries {
            actions.append(.rebalanceFailed(attempts: failedAttempts))
            counters.rebalanceFailures += 1
            phase = .waiting(until: now.adding(milliseconds: settings.retryAfterFailureMs), then: .rebalance(failedAttempts: 0))
        } else {
            phase = .waiting(until: now.adding(milliseconds: settings.syncTimeMs), then: .rebalance(failedAttempts: failedAttempts))
        }
    }

    // MARK: fetching (§3.4 steps 6–7)

    /// Every held partition fetches from its broker's master once its offset is known; kept
    /// partitions go on untouched unless the URI changed. Then the attempt is complete.
    mutating func finishRound(_ plan: Plan, dirty: Bool, _ actions: inout [Action]) {
        phase = .idle
        for slot in sortedSlots() {
            guard var holding = holdings[slot.topic]?[slot.partition] else { continue }
            let uri = holding.loaded ? plan.views[slot.topic]?.brokerURIs[slot.partition.brokerId] : nil
            guard holding.fetchingFrom != uri else { continue }
            if holding.fetchingFrom != nil {
                actions.append(.stopFetching(topic: slot.topic, partition: slot.partition))
            }
            if let uri {
                actions.append(.startFetching(Assignment(topic: slot.topic, partition: slot.partition,
                                                         brokerURI: uri, offset: fetchOffset(holding))))
            }
            holding.fetchingFrom = uri
            holdings[slot.topic]?[slot.partition] = holding
        }
        for topic in settings.topics where plan.views[topic] != applied[topic] {
            actions.append(.rebalanced(topic: topic, owned: (holdings[topic] ?? [:]).keys.sorted()))
        }
        applied = plan.views
        counters.rebalances += 1
        if dirty { startRound(failedAttempts: 0, &actions) }
    }

    /// Where fetching (re)starts: the in-memory offset, else §3.4 step 6's default.
    private func fetchOffset(_ holding: Holding) -> Int64 {
        if let offset = holding.offset { return offset.offset }
        return settings.consumeFromMaxOffset ? Int64.max : settings.startOffset
    }
}
