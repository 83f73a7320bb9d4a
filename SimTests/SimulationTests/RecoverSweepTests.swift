import Foundation
import Sim
import Testing

/// Failing handlers in the world simulation (reference §5.2, §5.4; MetaQ issue #111): poison and
/// randomly failing messages, retries, hand-offs to each member's recover store on its own disk,
/// store write failures, redelivery rounds, member crashes right after a hand-off. The checkers:
/// nothing below a committed offset and nothing at the end is skipped unless a recover store
/// keeps it. `METAQ_SIM_RECOVER_SEEDS=N` changes how many such seeds the sweep runs.
@Suite("World simulation: failing handlers and the recover store")
struct RecoverSweepTests {
    static let chunks = 2
    static let seedsPerChunk: Int = {
        let total = ProcessInfo.processInfo.environment["METAQ_SIM_RECOVER_SEEDS"].flatMap(Int.init) ?? 60
        return max(1, total / chunks)
    }()

    static func replay(_ seed: UInt64) -> String { "replay: swift run metaq-sim --seed \(seed) --trace" }

    /// Seeds from `first` on whose world has failing handlers (drawing the options is cheap).
    static func handlerSeeds(from first: UInt64, count: Int) -> [UInt64] {
        var seeds: [UInt64] = []
        var seed = first
        while seeds.count < count {
            if Simulation(seed: seed).options.handlers != nil { seeds.append(seed) }
            seed += 1
        }
        return seeds
    }

    @Test(arguments: 0..<chunks)
    func sweep(chunk: Int) {
        let seeds = Self.handlerSeeds(from: 0, count: Self.seedsPerChunk * Self.chunks)
            .dropFirst(chunk * Self.seedsPerChunk).prefix(Self.seedsPerChunk)
        let label = "recover sweep chunk \(chunk) (\(seeds.count) seeds \(seeds.first ?? 0)...\(seeds.last ?? 0))"
        let (total, failed) = SeedSweep.run(seeds, label: label, replay: { Self.replay($0) })
        #expect(failed.isEmpty)
        #expect(total.handlerSeeds == seeds.count)
        if seeds.count >= 25 {
            // What the sweep exists for (a 30-seed chunk reaches several times these).
            #expect(total.handlerFailures > 100 && total.handOffs > 20 && total.recoverRedelivered > 5)
            #expect(total.handOffFailures > 0 && total.recoverStoreFailures > 0 && total.poisonKept > 5)
            #expect(total.crashesAfterHandOff > 0 && total.memberPowerLosses > 0 && total.memberCrashes > 5)
        }
    }

    /// The handler options come from their own stream: only worlds with groups fail, and only
    /// some of them, so every other world (and its pinned seeds) is the one it was.
    @Test func onlySomeGroupWorldsFail() {
        var groupWorlds = 0
        var failing = 0
        for seed: UInt64 in 0..<400 {
            let options = Simulation(seed: seed).options
            if options.cluster.groups.isEmpty {
                #expect(options.handlers == nil, "seed \(seed)")
            } else {
                groupWorlds += 1
                if options.handlers != nil { failing += 1 }
            }
        }
        #expect(failing > groupWorlds / 4 && failing < groupWorlds * 3 / 4)
        for seed: UInt64 in [7, 97, 136, 12_345] { #expect(Simulation(seed: seed).options.handlers == nil, "pinned group seed \(seed) changed") }
    }

    /// A member crashes right after handing a message off, before an offset past it is
    /// committed: the message is in its store (synced, even when the crash is a power loss of
    /// its disk), the restarted member reopens the store and fetches the message again from the
    /// committed offset (a second hand-off keeps it once), and a redelivery round hands stored
    /// messages kept by the earlier process to the application again.
    @Test func crashBetweenHandOffAndCommit() {
        let seed: UInt64 = Self.pinnedCrashSeed
        let result = Simulation(seed: seed).run()
        #expect(result.options.contains("handlers:"))
        #expect(result.counters.handOffs > 0 && result.counters.crashesAfterHandOff > 0 && result.counters.recoverRedelivered > 0
                && result.counters.redeliveredAfterRestart > 0,
                "scenario no longer reached: re-pin (\(result.counters.report))")
        #expect(result.passed, "\(result.failures) \(Self.replay(seed))")
        let again = Simulation(seed: seed).run()
        #expect(again.fingerprint == result.fingerprint && again.counters == result.counters)
    }

    /// Re-pinned from 43 when broker disk faults and ordered producers joined the worlds.
    static let pinnedCrashSeed: UInt64 = 185

    /// The bug the checkers exist for: answering `.handedOff` without writing the store lets the
    /// offset pass a message nobody handled. The check at the commit catches it; the same seeds
    /// pass without the bug.
    @Test func handOffWithoutStoreIsCaughtAtTheCommit() {
        let caught = Self.caught(.handOffWithoutStore, failingWith: "committed offset")
        #expect(caught.count >= 6, "a hand-off that keeps nothing went unnoticed")
        for seed in caught.prefix(2) { #expect(Simulation(seed: seed).run().passed, "\(Self.replay(seed))") }
    }

    /// A redelivery round that drops the messages the application failed again (instead of
    /// keeping them for the next round, §5.2) loses the poison: caught at a later commit or, when
    /// no commit passes it any more, by the check at the end.
    @Test func redeliveryDroppingFailuresIsCaughtAtTheEnd() {
        let caught = Self.caught(.redeliveryRemovesFailures, failingWith: "nor in a recover store (skipped)")
        #expect(caught.count >= 3, "dropped redeliveries went unnoticed")
        for seed in caught.prefix(2) { #expect(Simulation(seed: seed).run().passed, "\(Self.replay(seed))") }
    }

    /// The first 12 seeds with failing handlers that fail with `bug`, naming `text`.
    static func caught(_ bug: SimBugs, failingWith text: String) -> [UInt64] {
        handlerSeeds(from: 0, count: 12).filter { seed in
            Simulation(seed: seed, bugs: bug).run().failures.contains { $0.contains(text) }
        }
    }
}
