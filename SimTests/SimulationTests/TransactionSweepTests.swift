import Foundation
import Sim
import Testing

/// Transactions in the worlds (reference §4): producers in local transactions and a transaction
/// manager running XA branches that crashes between prepare and commit, next to everything else,
/// under broker crashes, power losses and disk faults. Drawn from a stream of their own so every
/// other world runs as before. The sweep must hold; each transaction canary of the broker node's
/// shared pipeline must be caught while the same seeds pass without it.
/// `METAQ_SIM_TX_SEEDS=N` changes the sweep's size.
@Suite("World simulation: transactions")
struct TransactionSweepTests {
    static let seedCount: Int = {
        ProcessInfo.processInfo.environment["METAQ_SIM_TX_SEEDS"].flatMap(Int.init) ?? 60
    }()

    static func seeds(from first: UInt64 = 0, count: Int, where condition: (SimOptions) -> Bool) -> [UInt64] {
        SeedSweep.seeds(from: first, count: count, where: condition)
    }

    static func replay(_ seed: UInt64, _ flag: String = "") -> String { SeedSweep.replay(seed, flag) }

    static let txSeeds = seeds(count: seedCount) { $0.transactions != nil }

    /// The transactions come from their own stream: a share of the worlds draws them, and no
    /// pinned seed of the other suites does — so those run byte for byte as pinned.
    @Test func ownStreamLeavesOtherWorldsAlone() {
        var drawn = 0, xa = 0, local = 0
        for seed: UInt64 in 0..<400 {
            guard let tx = Simulation(seed: seed).options.transactions else { continue }
            drawn += 1
            if tx.managers > 0 { xa += 1 }
            if tx.localProducers > 0 { local += 1 }
            #expect(tx.managers + tx.localProducers > 0)
        }
        #expect(drawn > 400 / 5 && drawn < 400 / 2)
        #expect(xa > drawn / 2 && local > drawn / 2)
        for seed: UInt64 in [0, 2, 7, 14, 97, 136, 137, 185, 290, 304, 316, 12_345, 1 << 40] {
            #expect(Simulation(seed: seed).options.transactions == nil, "pinned seed \(seed) changed")
        }
    }

    /// Worlds with transactions: local commits, rollbacks, abandoned transactions and timeouts,
    /// XA branches prepared, managers crashing and recovering — every checker holds.
    @Test func transactionSweep() {
        let seeds = Self.txSeeds
        let (total, failed) = SeedSweep.run(seeds, label: "transaction sweep (\(seeds.count) seeds)", replay: { Self.replay($0) })
        #expect(failed.isEmpty)
        #expect(total.txSeeds == seeds.count)
        if seeds.count >= 50 {
            #expect(total.txCommitted > 100 && total.txRolledBack > 20 && total.txAbandoned > 5)
            #expect(total.txPrepared > 50 && total.tmCrashes > 10 && total.tmRecoveredFinished > 5)
        }
    }

    /// Replays are exact with the new stream too.
    @Test func transactionWorldsReplayExactly() {
        for seed in Self.txSeeds.prefix(2) {
            let first = Simulation(seed: seed).run()
            let second = Simulation(seed: seed).run()
            #expect(first.fingerprint == second.fingerprint && first.counters == second.counters, "\(Self.replay(seed))")
        }
    }

    /// The broker node's transaction canaries (`BrokerNode.Canary`): each breaks one rule of the
    /// shared commit or recovery path (§4.5) — the code the runtime runs — and must be caught
    /// within the first transaction worlds, while the same seeds pass without the bug.
    @Test(arguments: [
        (SimBugs.brokerReleasesCommitEarly, "release-commit-before-entry-durable"),
        (SimBugs.brokerSkipsCommitReappend, "skip-commit-reappend"),
    ])
    func transactionCanaryIsCaught(bug: SimBugs, name: String) {
        var caught: [UInt64] = []
        for seed in Self.seeds(count: 300, where: { $0.transactions != nil }) where caught.count < 3 {
            let result = Simulation(seed: seed, bugs: bug).run()
            if !result.passed && result.failures.contains(where: { $0.contains("TX:") || $0.contains("XID:") }) {
                caught.append(seed)
            }
        }
        #expect(caught.count >= 3, "the canary \(name) went unnoticed in 300 transaction worlds")
        for seed in caught { #expect(Simulation(seed: seed).run().passed, "\(Self.replay(seed))") }
    }
}
