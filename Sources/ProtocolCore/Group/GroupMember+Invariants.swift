// What is true of a member between events. `handle` checks it after every event: the cheap
// invariants that protect offsets and ownership with `precondition` (kept in release builds),
// the ones that walk the holdings or the requests, or run the strategy, with `assert`.

extension GroupMember {
    enum InvariantViolation: Equatable, CustomStringConvertible {
        /// Not started, expired or closed, yet still holding, asking or scheduling something
        /// (`what`): everything the session held is gone, uncommitted offsets included.
        case outlivesSession(what: String)
        /// A commit is scheduled although the member is not (or no longer) in the group.
        case commitOutsideMembership
        /// The failed attempts of a series are outside `0..<maxClaimRetries`: `.rebalanceFailed`
        /// would never be (or have been) reported.
        case failedAttemptsOutOfRange(Int)
        /// `.offsetsLoaded` is awaited although offsets are kept in ZooKeeper.
        case awaitingLoadsWithZooKeeperStorage
        /// A request of `scope` is outstanding in a phase that is not that scope's: its reply
        /// would be taken for one of the current phase.
        case requestOutsideItsPhase(Scope)
        /// A partition is held and being claimed at once.
        case claimingHeldPartition(Slot)
        /// A held partition whose stored offset was not read is fetched or has an offset.
        case unreadPartitionInUse(Slot)
        /// Settled, yet holding a partition outside the share computed from what was applied.
        case heldOutsideShare(Slot)
        /// Settled, yet a held partition is not fetched from its broker's master as applied.
        case notFetchingAsApplied(Slot)
        /// A partition's offset or committed offset moved backwards while it stayed held.
        case offsetWentBack(Slot)

        var description: String {
            switch self {
            case .outlivesSession(let what): return "\(what) outlives the session"
            case .commitOutsideMembership: return "a commit is scheduled outside the group"
            case .failedAttemptsOutOfRange(let n): return "\(n) failed attempts in a series"
            case .awaitingLoadsWithZooKeeperStorage: return "external loads awaited with ZooKeeper storage"
            case .requestOutsideItsPhase(let scope): return "a \(scope) request outstanding outside its phase"
            case .claimingHeldPartition(let slot): return "\(slot.topic)/\(slot.partition) held and being claimed"
            case .unreadPartitionInUse(let slot): return "\(slot.topic)/\(slot.partition) used before its offset was read"
            case .heldOutsideShare(let slot): return "\(slot.topic)/\(slot.partition) held outside the applied share"
            case .notFetchingAsApplied(let slot): return "\(slot.topic)/\(slot.partition) not fetched as applied"
            case .offsetWentBack(let slot): return "\(slot.topic)/\(slot.partition) offset went backwards"
            }
        }
    }

    typealias Holdings = [String: [BrokerPartition: Holding]]

    /// Checks the state `handle` leaves. `before` is the holdings before the event, `wasIdle`
    /// whether the member was settled then (both only gathered in debug builds).
    func checkInvariants(before: Holdings, wasIdle: Bool) {
        let essential = essentialViolations()
        precondition(essential.isEmpty, "GroupMember \(settings.consumerId): \(essential)")
        // The share only changes when a rebalance completes and the held set only grows during
        // one: while settled, the strategy need not run again unless partitions were given up.
        assert({
            let share = !wasIdle || before.values.map(\.count).reduce(0, +) != holdings.values.map(\.count).reduce(0, +)
            let violations = expensiveViolations(checkShare: share) + offsetRegressions(since: before)
            assert(violations.isEmpty, "GroupMember \(settings.consumerId): \(violations)")
            return true
        }())
    }

    /// Every invariant this state breaks (empty when sound).
    func invariantViolations() -> [InvariantViolation] {
        essentialViolations() + expensiveViolations(checkShare: true)
    }

    /// The O(1) invariants, checked with `precondition`.
    func essentialViolations() -> [InvariantViolation] {
        var violations: [InvariantViolation] = []
        switch phase {
        case .notStarted, .sessionExpired, .closed:
            if !holdings.isEmpty { violations.append(.outlivesSession(what: "ownership")) }
            if !pending.isEmpty { violations.append(.outlivesSession(what: "a request")) }
            if phase != .closed {
                // `.close` keeps these: nothing reads them afterwards.
                if !suspects.isEmpty { violations.append(.outlivesSession(what: "a suspect")) }
                if !applied.isEmpty { violations.append(.outlivesSession(what: "an applied view")) }
            }
        case .registering(let failedAttempts), .waiting(_, .register(let failedAttempts)),
             .waiting(_, .rebalance(let failedAttempts)):
            if !(0..<settings.maxClaimRetries).contains(failedAttempts) {
                violations.append(.failedAttemptsOutOfRange(failedAttempts))
            }
        case .rebalancing(let round):
            if !(0..<settings.maxClaimRetries).contains(round.failedAttempts) {
                violations.append(.failedAttemptsOutOfRange(round.failedAttempts))
            }
            if case .loadingOffsets(_, let awaitingLoads) = round.step, !awaitingLoads.isEmpty,
               settings.offsetStorage == .zooKeeper {
                violations.append(.awaitingLoadsWithZooKeeperStorage)
            }
        case .idle, .closing:
            break
        }
        if commitDue != nil && !isMember { violations.append(.commitOutsideMembership) }
        return violations
    }

    /// The invariants that walk the requests and the holdings; `checkShare` also runs the strategy.
    func expensiveViolations(checkShare: Bool) -> [InvariantViolation] {
        var violations: [InvariantViolation] = []
        var scopes: [Scope] = []
        for entry in pending.values where !scopes.contains(entry.scope) { scopes.append(entry.scope) }
        for scope in scopes where !isPhase(of: scope) { violations.append(.requestOutsideItsPhase(scope)) }
        var claiming: [Slot] = []
        for entry in pending.values {
            switch entry.purpose {
            case .claim(let slot, _), .claimOwner(let slot), .reclaim(let slot):
                if holdings[slot.topic]?[slot.partition] != nil { claiming.append(slot) }
            default:
                break
            }
        }
        violations += claiming.sorted().map { .claimingHeldPartition($0) }
        for slot in sortedSlots(where: { !$1.loaded && ($1.fetchingFrom != nil || $1.offset != nil) }) {
            violations.append(.unreadPartitionInUse(slot))
        }
        if phase == .idle {
            var shares: [String: Set<BrokerPartition>] = [:]
            if checkShare {
                for (topic, view) in applied {
                    let mine = settings.strategy.assign(partitions: view.partitions, consumers: view.consumers,
                                                        me: settings.consumerId)
                    shares[topic] = Set(mine.compactMap(BrokerPartition.init))
                }
            }
            for slot in sortedSlots() {
                let holding = holdings[slot.topic]![slot.partition]!
                if checkShare && shares[slot.topic]?.contains(slot.partition) != true {
                    violations.append(.heldOutsideShare(slot))
                }
                if !holding.loaded || holding.fetchingFrom != applied[slot.topic]?.brokerURIs[slot.partition.brokerId] {
                    violations.append(.notFetchingAsApplied(slot))
                }
            }
        }
        return violations
    }

    /// Partitions held before and after an event whose offset (where processing reached) or
    /// committed offset moved backwards. A partition given up and claimed again starts afresh
    /// from the stored offset, so only one that was read before and is still held counts.
    func offsetRegressions(since before: Holdings) -> [InvariantViolation] {
        var violations: [InvariantViolation] = []
        for slot in sortedSlots() {
            guard let old = before[slot.topic]?[slot.partition], old.loaded else { continue }
            let new = holdings[slot.topic]![slot.partition]!
            if !new.loaded || Self.isBehind(new.offset, old.offset) || Self.isBehind(new.committed, old.committed) {
                violations.append(.offsetWentBack(slot))
            }
        }
        return violations
    }

    private static func isBehind(_ new: StoredOffset?, _ old: StoredOffset?) -> Bool {
        guard let old else { return false }
        guard let new else { return true }
        return new.offset < old.offset
    }

    /// Whether requests of `scope` may be outstanding in the current phase.
    private func isPhase(of scope: Scope) -> Bool {
        switch (scope, phase) {
        case (.registration, .registering), (.round, .rebalancing), (.closing, .closing): return true
        case (.commit, _), (.cleanup, _): return isMember
        default: return false
        }
    }
}
