import Foundation
import Sim
import Testing

/// The whole-system simulation (DESIGN.md §6): brokers, producers and consumers on the virtual
/// clock under faults, checked on every seed. A failure names its seed and the command that
/// replays it. `METAQ_SIM_SEEDS=N` changes the sweep size (per chunk: N / 8).
@Suite("World simulation: sweep, determinism, canary, pinned scenarios")
struct WorldSweepTests {
    static let chunks = 8
    static let seedsPerChunk: UInt64 = {
        let total = ProcessInfo.processInfo.environment["METAQ_SIM_SEEDS"].flatMap(UInt64.init) ?? 2400
        return max(1, total / UInt64(chunks))
    }()

    static func replay(_ seed: UInt64, canary: Bool = false) -> String {
        "replay: swift run metaq-sim --seed \(seed) --trace\(canary ? " --canary" : "")"
    }

    /// The sweep, in chunks so the test runner spreads it over the cores (about two and a half
    /// minutes of CPU in a debug build; ≥ 1,000 seeds a minute).
    @Test(arguments: 0..<chunks)
    func sweep(chunk: Int) {
        let first = UInt64(chunk) * Self.seedsPerChunk
        let label = "world sweep chunk \(chunk) (seeds \(first)..<\(first + Self.seedsPerChunk))"
        let (total, failed) = SeedSweep.run(first..<(first + Self.seedsPerChunk), label: label, replay: { Self.replay($0) })
        #expect(failed.isEmpty)
        if Self.seedsPerChunk >= 250 {
            // The seeds must reach what the simulator exists for (figures of a 300-seed chunk
            // are several times these).
            #expect(total.powerLosses > 100 && total.crashes > 50 && total.disconnects > 100 && total.partitions > 30)
            #expect(total.recoveryTruncations > 2 && total.segmentRolls > 200 && total.latentErrors > 2)
            #expect(total.unknownPuts > 10 && total.lostUnsyncedAcknowledged > 0 && total.redelivered > 0)
            #expect(total.powerLossesBetweenAppendAndSync > 10 && total.consumerTimeouts > 50)
            // ZooKeeper and consumer groups (about a third of the seeds have groups).
            #expect(total.groupSeeds > 50 && total.memberCrashes > 40 && total.groupTakeovers > 5)
            #expect(total.zkExpiries > 20 && total.zkDisconnects > 20 && total.lateBrokerJoins > 3)
            #expect(total.groupRebalances > 500 && total.claimConflicts > 20)
            #expect(total.brokerRestartsWithLiveSession > 100 && total.memberRestartsWithLiveSession > 10)
            // The broker node's own faults (broker disk, graceful stop, retention).
            #expect(total.diskWriteErrors > 10 && total.diskFullErrors > 10 && total.diskSyncErrors > 10)
            #expect(total.brokerLogsFailed > 5 && total.failedLogAnswers > 5 && total.restartsAfterDiskFailure > 3)
            #expect(total.gracefulStops > 20 && total.retentionRemovedSegments > 20)
            // Replicated worlds (about three in ten): slaves, their faults, the master's disk destroyed.
            #expect(total.replicatedSeeds > 40 && total.slaveCrashes > 20 && total.masterLinkPartitions > 40)
            #expect(total.masterDisksDestroyed > 10 && total.acknowledgedOnSlaves > 300)
        }
    }

    /// A seed is a replay: the same fingerprint, counters and verdicts every time (7, 136 and
    /// 12,345 run consumer groups over ZooKeeper).
    @Test(arguments: [0, 7, 136, 304, 12_345, 1 << 40] as [UInt64])
    func sameSeedSameRun(seed: UInt64) {
        let first = Simulation(seed: seed).run()
        let second = Simulation(seed: seed).run()
        #expect(first.fingerprint == second.fingerprint, "\(Self.replay(seed))")
        #expect(first.counters == second.counters)
        #expect(first.failures == second.failures)
        #expect(first.virtualMs == second.virtualMs)
        // Tracing must not change the run.
        let traced = Simulation(seed: seed, trace: true).run()
        #expect(traced.fingerprint == first.fingerprint)
        #expect(!(traced.trace ?? []).isEmpty)
    }

    /// Different seeds are different worlds (the fingerprint is not a constant).
    @Test func differentSeedsDiffer() {
        let prints = Set((0..<20 as Range<UInt64>).map { Simulation(seed: $0).run().fingerprint })
        #expect(prints.count == 20)
    }

    /// The canary: a broker that acknowledges group-commit puts before their sync must be caught
    /// (acknowledged messages lost at a power loss). This proves the checkers can fail.
    @Test func canaryIsCaught() {
        var caught: [UInt64] = []
        var earlyAcks = 0
        for seed: UInt64 in 0..<300 {
            let result = Simulation(seed: seed, canary: true).run()
            earlyAcks += result.counters.canaryEarlyAcks
            if result.failures.contains(where: { $0.contains("acknowledged message never delivered") && $0.contains("group commit") }) {
                caught.append(seed)
            }
        }
        #expect(earlyAcks > 0)
        #expect(caught.count >= 3, "the canary went unnoticed in 300 seeds")
        // The same seeds pass without the canary.
        for seed in caught.prefix(3) { #expect(Simulation(seed: seed).run().passed, "\(Self.replay(seed))") }
    }

    /// The broker node's own canaries (DESIGN.md §6): each breaks one rule of the shared
    /// pipeline — the code the runtime runs — and the sweep must catch it with the checker that
    /// guards the rule, while the same seeds pass without the bug.
    @Test(arguments: [
        (SimBugs.brokerForgetsFailedLogPuts, "that no log will acknowledge"),
        (SimBugs.brokerAcknowledgesFailedLogPuts, "acknowledged after its log failed"),
        (SimBugs.brokerSkipsFinalSync, "a graceful stop left"),
    ])
    func brokerCanaryIsCaught(bug: SimBugs, checker: String) {
        var caught: [UInt64] = []
        for seed: UInt64 in 0..<400 where caught.count < 3 {
            let result = Simulation(seed: seed, bugs: bug).run()
            if result.failures.contains(where: { $0.contains(checker) }) { caught.append(seed) }
        }
        #expect(caught.count >= 3, "the broker canary went unnoticed in 400 seeds (checker: \(checker))")
        for seed in caught { #expect(Simulation(seed: seed).run().passed, "\(Self.replay(seed))") }
    }

    /// Issue 18's canary: recovery keeps the clean-stop mark after open and trusts it whatever
    /// the last segment became, so a start after a later power loss skips the scan of a torn tail
    /// and serves it. Rare (3 of the first 3,000 seeds: a clean stop, a restart, then a power loss
    /// tearing that partition's tail), so the seeds found by `metaq-sim --sweep 3000 --broker-canary
    /// trust-stale-clean-stop-mark` are pinned; each passes without the bug.
    @Test(arguments: [UInt64(33), 2088, 2638])
    func staleCleanStopMarkIsCaught(seed: UInt64) {
        let result = Simulation(seed: seed, bugs: .brokerTrustsStaleCleanStopMark).run()
        #expect(result.failures.contains { $0.contains("was served damaged bytes") }, "scenario no longer reached: re-pin \(Self.replay(seed))")
        #expect(Simulation(seed: seed).run().passed, "\(Self.replay(seed))")
    }

    // MARK: Pinned scenarios (each seed reached the named state when pinned; if the option
    // drawing changes, find a new seed with `metaq-sim --seed N` and its counters).

    @Test func powerLossBetweenAppendAndSyncUnderGroupCommit() {
        let result = Simulation(seed: 2).run()
        #expect(result.options.contains("flush=group-commit"))
        #expect(result.counters.powerLossesBetweenAppendAndSync >= 1, "scenario no longer reached: re-pin")
        #expect(result.passed, "\(result.failures) \(Self.replay(2))")
        #expect(result.counters.lostUnsyncedAcknowledged == 0)
    }

    @Test func powerLossLosesOnlyTheUnsyncedTailUnderThreshold() {
        let result = Simulation(seed: 14).run()
        #expect(result.options.contains("flush=threshold"))
        #expect(result.counters.lostUnsyncedAcknowledged > 0, "scenario no longer reached: re-pin")
        #expect(result.passed, "\(result.failures) \(Self.replay(14))")
    }

    /// Re-pinned from seed 52 when groups arrived (52 now runs groups and no longer crashes right
    /// after a roll).
    @Test func crashRightAfterASegmentRoll() {
        let result = Simulation(seed: 137).run()
        #expect(result.counters.faultsRightAfterRoll >= 1, "scenario no longer reached: re-pin")
        #expect(result.passed, "\(result.failures) \(Self.replay(137))")
    }

    @Test func bitRotIsCaughtByChecksumAndNeverDelivered() {
        let result = Simulation(seed: 304).run()
        #expect(result.counters.latentErrors >= 1 && result.counters.damageReports >= 1, "scenario no longer reached: re-pin")
        #expect(result.passed, "\(result.failures) \(Self.replay(304))")
    }

    /// Re-pinned from seed 290 when spool faults joined the ordered worlds (290's world changed
    /// and its canary run no longer loses a message).
    @Test func canarySeedLosesAnAcknowledgedMessage() {
        let result = Simulation(seed: 316, canary: true).run()
        #expect(result.failures.contains { $0.contains("acknowledged message never delivered") },
                "canary seed 316 no longer fails: re-pin (\(Self.replay(316, canary: true)))")
        #expect(Simulation(seed: 316).run().passed, "\(Self.replay(316))")
    }

    // MARK: Pinned group scenarios (reference §3.4, §5.4)

    /// A member of a three-member group crashes holding two partitions; once its session times
    /// out the survivors take them over (from the committed offsets) and the group still gets
    /// every acknowledged message; the ownership checks hold after convergence.
    @Test func survivorsTakeOverACrashedMembersPartitions() {
        let result = Simulation(seed: 136).run()
        #expect(result.options.contains("groups=g0:3x"))
        #expect(result.counters.memberCrashes >= 1 && result.counters.groupTakeovers >= 1, "scenario no longer reached: re-pin")
        #expect(result.counters.groupDelivered >= result.counters.acknowledged)
        #expect(result.passed, "\(result.failures) \(Self.replay(136))")
    }

    /// A broker's ZooKeeper session expires while a group is rebalancing: its partitions vanish
    /// from `topics-sub` mid-attempt and come back when it registers again; the group settles
    /// with one live owner per partition and delivers everything.
    @Test func brokerSessionExpiryDuringARebalance() {
        let result = Simulation(seed: 97).run()
        #expect(result.counters.brokerExpiriesDuringRebalance >= 1, "scenario no longer reached: re-pin")
        let brokers = result.options.split(separator: " ").first { $0.hasPrefix("brokers=") }.flatMap { Int($0.dropFirst(8)) } ?? 0
        #expect(result.counters.brokerRegistrations > brokers, "the expired broker registered again")
        #expect(result.passed, "\(result.failures) \(Self.replay(97))")
    }
}
