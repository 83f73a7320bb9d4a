import Foundation
@testable import Sim
import Testing

/// Ordered producers in the world simulation (reference §5.6): the production `OrderedSendQueue`
/// and `OrderedSpool` on the producer's own disk, with producer crashes and power losses. The
/// checkers: per lane the broker takes messages in send order (last copies), and nothing
/// promised `.spooled` is lost. `METAQ_SIM_ORDERED_SEEDS=N` changes how many seeds the sweep runs.
@Suite("World simulation: ordered producers and their spool")
struct OrderedSweepTests {
    static let seedCount = ProcessInfo.processInfo.environment["METAQ_SIM_ORDERED_SEEDS"].flatMap(Int.init) ?? 40

    static func replay(_ seed: UInt64, spoolCanary: Bool = false) -> String {
        "replay: swift run metaq-sim --seed \(seed) --trace\(spoolCanary ? " --spool-canary" : "")"
    }

    /// Seeds from `first` on whose world has ordered producers.
    static func orderedSeeds(from first: UInt64, count: Int) -> [UInt64] {
        var seeds: [UInt64] = []
        var seed = first
        while seeds.count < count {
            if Simulation(seed: seed).options.ordered != nil { seeds.append(seed) }
            seed += 1
        }
        return seeds
    }

    @Test func sweep() {
        let seeds = Self.orderedSeeds(from: 0, count: Self.seedCount)
        let (total, failed) = SeedSweep.run(seeds, label: "ordered sweep (\(seeds.count) seeds)", replay: { Self.replay($0) })
        #expect(failed.isEmpty)
        #expect(total.orderedSeeds == seeds.count)
        if seeds.count >= 30 {
            // What the sweep exists for: spooling, replays, crashes and power losses of the spool's disk.
            #expect(total.orderedSpooled > 20 && total.orderedReplayed > 20 && total.orderedSent > 200)
            #expect(total.orderedCrashes > 5 && total.orderedPowerLosses > 0)
        }
    }

    /// The spool canary: writes reported synced but dropped lose promised messages; the sweep
    /// must say so, and the same seeds pass without the canary.
    @Test func droppedSpoolWritesAreCaught() {
        var caught: [UInt64] = []
        var drops = 0
        for seed in Self.orderedSeeds(from: 0, count: 20) {
            let result = Simulation(seed: seed, spoolCanary: true).run()
            drops += result.counters.spoolCanaryDrops
            if result.failures.contains(where: { $0.contains("spooled") }) { caught.append(seed) }
        }
        #expect(drops > 0)
        #expect(caught.count >= 3, "dropped spool writes went unnoticed in 20 seeds")
        for seed in caught.prefix(3) { #expect(Simulation(seed: seed).run().passed, "\(Self.replay(seed))") }
    }

    /// The order checker itself: duplicates are fine when the last copies are in order.
    @Test func orderCheckTakesLastCopies() {
        #expect(Simulation.orderProblem([1, 2, 2, 3]) == nil)
        #expect(Simulation.orderProblem([1, 2, 3, 2, 3]) == nil, "a replay after a crash resends a suffix")
        #expect(Simulation.orderProblem([1, 3, 2]) != nil)
        #expect(Simulation.orderProblem([1, 2, 3, 2]) != nil, "2's last copy overtook by 3")
    }
}
