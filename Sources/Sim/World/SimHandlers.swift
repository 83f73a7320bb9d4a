import BrokerCore

/// The groups' simulated application when it fails (reference §5.2; MetaQ issue #111): some
/// messages always ("poison", chosen from the message's key), others at random per attempt. The
/// fetchers then retry a failed message `maxFetchRetries` times and hand it off to the member's
/// recover store, which a redelivery round hands to the application again every
/// `recoverIntervalMs`.
///
/// Drawn from a third stream of the seed (`SimOptions.handlerStream`), after the world and its
/// cluster, so turning it on for some seeds changes nothing in the options of any seed.
public struct SimHandlers: Sendable, Equatable, CustomStringConvertible {
    /// Poison messages per thousand: `poison(key)` fails every attempt, redeliveries included.
    public var poisonPerMille: Int
    /// The chance that one attempt of any other message fails.
    public var failProbability: Double
    /// The fetchers' `RetryPolicy(maxFetchRetries:)`.
    public var maxFetchRetries: Int
    /// The period of a member's redelivery rounds.
    public var recoverIntervalMs: Int
    /// The chance that one write to a recover store fails (its sync throws, as after an EIO).
    public var storeFaultProbability: Double
    /// The chance that a successful hand-off is followed within a few ms by its member's crash,
    /// before the next offset commit (the safety phase only).
    public var crashAfterHandOffProbability: Double
    /// The chance that a member crash is a power loss of the member's disk too.
    public var powerLossOnCrashProbability: Double
    /// Mixed into the poison hash, so the poison messages differ from seed to seed.
    public var salt: UInt64

    /// The generator the handler options and decisions come from: `seed` mixed with a constant
    /// no other stream uses.
    public static func stream(seed: UInt64) -> SimRandom { SimRandom(seed: seed ^ 0x3C5E_A1F7_0D92_B860) }

    /// Nil for worlds without groups and for about half of those with; draws nothing from
    /// `rng` when there are no groups.
    static func draw(_ rng: inout SimRandom, hasGroups: Bool) -> SimHandlers? {
        guard hasGroups, rng.chance(0.5) else { return nil }
        return SimHandlers(poisonPerMille: rng.int(in: 5...80), failProbability: rng.unit() * 0.4,
                           maxFetchRetries: rng.int(in: 0...3), recoverIntervalMs: rng.int(in: 200...2000),
                           storeFaultProbability: rng.chance(0.6) ? rng.unit() * 0.2 : 0,
                           crashAfterHandOffProbability: rng.chance(0.7) ? 0.05 + rng.unit() * 0.3 : 0,
                           powerLossOnCrashProbability: rng.unit(), salt: rng.next())
    }

    /// Whether the application fails the message with ledger key `key` every time.
    public func isPoison(_ key: UInt64) -> Bool {
        var z = key ^ salt
        // SplitMix64's finaliser: neighbouring keys land far apart.
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Int(z % 1000) < poisonPerMille
    }

    public var description: String {
        func percent(_ p: Double) -> String { "\(Int((p * 100).rounded()))%" }
        return "handlers: poison=\(poisonPerMille)‰ fail=\(percent(failProbability)) retries=\(maxFetchRetries) "
            + "recover-interval=\(recoverIntervalMs)ms store-faults=\(percent(storeFaultProbability)) "
            + "crash-after-hand-off=\(percent(crashAfterHandOffProbability)) member-power-loss=\(percent(powerLossOnCrashProbability))"
    }
}

/// What the checkers know of one recover store (a member's, of one topic): the msgIds whose
/// `append` returned (durable) and were not removed since, and those whose `append` or `remove`
/// threw (either state may be on the disk). Reopening the store resolves the doubtful ones.
struct SimStoreShadow {
    var kept: Set<Int64> = []
    var doubtful: Set<Int64> = []
}

/// Bugs a test can switch on to prove the recover checkers fail (never on in a sweep).
public struct SimBugs: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// A hand-off answers `.handedOff` without writing the recover store.
    public static let handOffWithoutStore = SimBugs(rawValue: 1)
    /// A redelivery round removes the messages the application failed too (the message is
    /// dropped instead of kept for the next round, §5.2).
    public static let redeliveryRemovesFailures = SimBugs(rawValue: 2)
    /// The broker node's canaries (`BrokerNode.Canary`), for the disk-fault and stop checkers:
    /// a failed log never answers the puts it abandons; answers them as stored; a graceful stop
    /// skips its final sync.
    public static let brokerForgetsFailedLogPuts = SimBugs(rawValue: 1 << 8)
    public static let brokerAcknowledgesFailedLogPuts = SimBugs(rawValue: 1 << 9)
    public static let brokerSkipsFinalSync = SimBugs(rawValue: 1 << 10)
    /// A manual-ack fetcher's machine moves its committable position when a batch is processed,
    /// as in automatic mode (`ConsumerMachine.Canary.processedAcknowledgesInManualMode`): commits
    /// pass messages the handler got and never acknowledged.
    public static let manualAckCommitsProcessed = SimBugs(rawValue: 1 << 11)
    /// A routed producer's router drops the sends and `publish(topic)` waits that wait for
    /// discovery at shutdown (`ProducerRouter.Canary.forgetWaitingOnShutDown`).
    public static let routerForgetsWaitingOnShutDown = SimBugs(rawValue: 1 << 12)
    /// The broker node's transaction canaries: a commit's batches released before its entry is
    /// durable; recovery skipping the re-append of a missing committed batch (§4.5).
    public static let brokerReleasesCommitEarly = SimBugs(rawValue: 1 << 13)
    public static let brokerSkipsCommitReappend = SimBugs(rawValue: 1 << 14)
    /// A synchronous master answers a put once it is durable there, without waiting for its
    /// slaves (`BrokerNode.Canary.answerBeforeSlavesConfirm`). It also makes every world a
    /// synchronous replicated one whose master's disk is destroyed (SimReplication).
    public static let replicationAnswersBeforeSlavesConfirm = SimBugs(rawValue: 1 << 15)
    /// A follower that takes over adopts the term it read instead of raising it
    /// (`BrokerElection.Settings.canaryTakeOverWithoutNewTerm`): two brokers accept puts in one
    /// term. It also makes every world a failover world.
    public static let failoverTakeOverWithoutNewTerm = SimBugs(rawValue: 1 << 16)
    /// Rule 10 of the election forgets that logs must be intact
    /// (`BrokerElection.Settings.canaryIgnoreLostLogs`): a master whose disk was destroyed, or a
    /// slave copying again, takes over and loses what was acknowledged. It also makes every
    /// world a failover world.
    public static let failoverIgnoresLostLogs = SimBugs(rawValue: 1 << 17)
    /// Recovery keeps the clean-stop mark and trusts it after the log changed
    /// (`BrokerNode.Canary.trustStaleCleanStopMark`, issue 18).
    public static let brokerTrustsStaleCleanStopMark = SimBugs(rawValue: 1 << 18)

    /// The replication canary these bugs ask for.
    var replicationCanary: BrokerNode.Canary? {
        contains(.replicationAnswersBeforeSlavesConfirm) ? .answerBeforeSlavesConfirm : nil
    }

    /// The node canary these bugs ask for (at most one is meant to be set).
    var brokerCanary: BrokerNode.Canary? {
        if contains(.brokerForgetsFailedLogPuts) { return .forgetFailedLogPuts }
        if contains(.brokerAcknowledgesFailedLogPuts) { return .acknowledgeFailedLogPuts }
        if contains(.brokerSkipsFinalSync) { return .skipFinalSync }
        if contains(.brokerReleasesCommitEarly) { return .releaseCommitBeforeEntryDurable }
        if contains(.brokerSkipsCommitReappend) { return .skipCommitReappend }
        if contains(.brokerTrustsStaleCleanStopMark) { return .trustStaleCleanStopMark }
        return nil
    }
}
