import ProtocolCore

/// The cluster's part of convergence and its checks (DESIGN.md §6): after the faults stop, every
/// broker is registered by its current session, every group has settled with one live owner per
/// registered partition, and every partition was read to its end by the group.
extension Simulation {
    /// What the cluster still waits for; empty once converged.
    func clusterWaiting() -> [String] {
        var waiting: [String] = []
        for broker in brokers where !broker.destroyed
            && (broker.registration?.isRegistered != true || broker.zkSession?.status != .connected) {
            waiting.append("broker\(broker.id) not registered in ZooKeeper")
        }
        guard !groups.isEmpty else { return waiting }
        // A dead process's session must be gone too: its owner nodes could otherwise still hide a
        // partition nobody fetches, or vanish after the check.
        abandonedSessions.removeAll { !isAliveAtServer($0) }
        if !abandonedSessions.isEmpty { waiting.append("\(abandonedSessions.count) abandoned ZooKeeper session(s) alive") }
        if zooKeeper.clients.contains(where: { !$0.outbox.isEmpty }) { waiting.append("ZooKeeper deliveries in flight") }
        waiting += recoverWaiting()
        for group in groups {
            for member in group.members {
                if !member.isUp {
                    waiting.append("\(member.name) down")
                } else if member.session?.status != .connected {
                    waiting.append("\(member.name) not connected to ZooKeeper")
                } else if !member.machine.isSettled {
                    waiting.append("\(member.name) rebalancing")
                }
            }
            for slot in slots(of: group) {
                if let behind = groupBehind(group, slot) { waiting.append("\(group.name) \(slot) \(behind)") }
            }
        }
        return waiting
    }

    /// Every partition a group subscribes to, on every broker.
    func slots(of group: SimGroup) -> [GroupSlot] {
        var slots: [GroupSlot] = []
        for topic in options.topics where group.topics.contains(topic.name) {
            for broker in brokers {
                for p in 0..<topic.partitions {
                    slots.append(GroupSlot(topic: topic.name, partition: BrokerPartition(brokerId: broker.id, partition: p)))
                }
            }
        }
        return slots
    }

    /// Nil when the group has read `slot` to its end (or is stuck on bit rot there).
    private func groupBehind(_ group: SimGroup, _ slot: GroupSlot) -> String? {
        let clients = group.members.compactMap { $0.isUp ? $0.fetchers[slot] : nil }
        guard let fetcher = clients.first.flatMap({ groupFetchers[$0] }) else { return "is fetched by nobody" }
        if fetcher.processing { return "is being processed" }
        if fetcher.handingOff { return "is handing off" }
        let partition = TopicPartition(slot.topic, Int32(slot.partition.partition))
        if fetcher.damagedAt != nil && rotRanges[fetcher.broker]?[partition] != nil { return nil }
        return readBehind(fetcher.machine.offset, broker: fetcher.broker, partition)
    }

    /// After convergence: each broker's ephemeral nodes belong to its current session (an earlier
    /// session's leftovers were taken over, §3.2), and each group's ownership is exact (§3.4).
    func checkClusterAfterConvergence() {
        for broker in brokers {
            guard let registration = broker.registration, let session = broker.zkSession else { continue }
            for node in registration.nodes where node.isEphemeral {
                if zooKeeper.ephemeralOwner(of: node.path) != session.id || zooKeeper.data(at: node.path) != node.data {
                    fail("broker\(broker.id): \(node.path) is not its current session's node with its data")
                }
            }
            // The persistent `ids/<id>` a master writes holds its URI (what pre-1.4.3 clients
            // follow), not a deposed leader's.
            for node in registration.nodes where !node.isEphemeral && zooKeeper.data(at: node.path) != node.data {
                fail("broker\(broker.id): \(node.path) does not hold its data")
            }
        }
        for group in groups { checkOwnership(group) }
        checkRecoverAfterConvergence()
        checkManualAfterConvergence()
    }

    /// Every partition registered in `topics-sub` has one owner node, held by the current
    /// session of a live member whose `owned` says so; no member owns or fetches anything else.
    private func checkOwnership(_ group: SimGroup) {
        var owners: [String: Set<GroupSlot>] = [:]
        for topic in group.topics {
            let registered = registeredPartitions(topic)
            let expected = Set(slots(of: group).filter { $0.topic == topic }.map(\.partition))
            if registered != expected {
                fail("topics-sub/\(topic) registers \(registered.sorted()), the brokers have \(expected.sorted())")
            }
            for partition in registered.sorted() {
                let path = layout.ownerPath(group.name, topic, partition)
                guard let data = zooKeeper.data(at: path) else {
                    fail("\(group.name): \(topic)/\(partition) has no owner node after convergence")
                    continue
                }
                let owner = String(decoding: data, as: UTF8.self)
                guard let member = group.members.first(where: { $0.consumerId == owner }), member.isUp,
                      let session = member.session else {
                    fail("\(group.name): \(topic)/\(partition) is owned by \(owner), not a live member")
                    continue
                }
                if zooKeeper.ephemeralOwner(of: path) != session.id {
                    fail("\(group.name): the owner node of \(topic)/\(partition) belongs to an earlier session of \(owner)")
                }
                owners[owner, default: []].insert(GroupSlot(topic: topic, partition: partition))
            }
            for child in zooKeeper.children(of: layout.ownersPath(group.name, topic)) {
                if !(BrokerPartition(child).map(registered.contains) ?? false) {
                    fail("\(group.name): owner node \(topic)/\(child) for a partition nobody registers")
                }
            }
        }
        for member in group.members {
            var owned: Set<GroupSlot> = []
            for (topic, partitions) in member.machine.owned {
                for partition in partitions { owned.insert(GroupSlot(topic: topic, partition: partition)) }
            }
            let nodes = owners[member.consumerId] ?? []
            if owned != nodes {
                fail("\(member.name) believes it owns \(owned.sorted()), its owner nodes are \(nodes.sorted())")
            }
            if Set(member.fetchers.keys) != owned {
                fail("\(member.name) fetches \(member.fetchers.keys.sorted()) but owns \(owned.sorted())")
            }
        }
    }

    /// The partitions the brokers' `topics-sub/<topic>` children announce (§3.4 step 2).
    private func registeredPartitions(_ topic: String) -> Set<BrokerPartition> {
        var partitions: Set<BrokerPartition> = []
        for child in zooKeeper.children(of: layout.topicSubPath(topic)) {
            guard let name = BrokerNodeName(child),
                  let data = zooKeeper.data(at: layout.topicSubPath(topic) + "/" + child),
                  let registration = TopicRegistration(json: String(decoding: data, as: UTF8.self)) else {
                fail("topics-sub/\(topic)/\(child) is not a broker's registration")
                continue
            }
            for k in 0..<registration.numParts { partitions.insert(BrokerPartition(brokerId: name.brokerId, partition: k)) }
        }
        return partitions
    }

    /// Counters the member machines kept (a crashed machine's are added when it dies).
    func absorbCounters(of member: SimGroupMember) {
        let c = member.machine.counters
        counters.claimConflicts += c.claimConflicts
        counters.abortedRebalances += c.abortedAttempts
        counters.groupSessionExpiries += c.expiries
    }

    func collectGroupCounters() {
        guard !groups.isEmpty else { return }
        counters.groupSeeds += 1
        if options.handlers != nil { counters.handlerSeeds += 1 }
        if options.manualAck != nil { counters.manualAckSeeds += 1 }
        counters.groupMembers += groups.map(\.members.count).reduce(0, +)
        for group in groups {
            for member in group.members where member.isUp { absorbCounters(of: member) }
        }
    }
}
