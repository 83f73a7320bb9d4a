import Foundation
import Sim
import Testing

/// The loop every sweep test shares: run the seeds, sum their counters, print one line of what
/// fired, and record each failure (the first ten) with the command that replays it.
enum SeedSweep {
    /// The first `count` seeds from `first` on whose world satisfies `condition` (drawing the
    /// options is cheap).
    static func seeds(from first: UInt64 = 0, count: Int, where condition: (SimOptions) -> Bool) -> [UInt64] {
        var seeds: [UInt64] = []
        var seed = first
        while seeds.count < count {
            if condition(Simulation(seed: seed).options) { seeds.append(seed) }
            seed += 1
        }
        return seeds
    }

    /// The replay command printed with a failing seed (`flag`: a canary option).
    static func replay(_ seed: UInt64, _ flag: String = "") -> String { "replay: swift run metaq-sim --seed \(seed) --trace\(flag)" }

    static func run(_ seeds: some Sequence<UInt64>, label: String, replay: (UInt64) -> String,
                    make: (UInt64) -> Simulation = { Simulation(seed: $0) }) -> (total: SimCounters, failed: [String]) {
        var total = SimCounters()
        var failed: [String] = []
        for seed in seeds {
            let result = make(seed).run()
            total.add(result.counters)
            if !result.passed { failed.append("seed \(seed): \(result.failures.joined(separator: "; "))\n  \(replay(seed))") }
        }
        FileHandle.standardError.write(Data("\(label): \(failed.count) failed; fired: \(total.report)\n".utf8))
        for failure in failed.prefix(10) { Issue.record(Comment(rawValue: failure)) }
        return (total, failed)
    }
}
