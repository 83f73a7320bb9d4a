import Foundation
import Sim
import Testing

/// Manual ack and rollback in the groups (reference §5.3) and the routed producers' own faults
/// (§3.3: their ZooKeeper sessions expire or disconnect, `publish(topic)` waits, shutdowns), each
/// drawn from a stream of its own so every other world runs as before. The sweeps must hold, and
/// each canary — a plausible regression in the shared ProtocolCore code — must be caught while
/// the same seeds pass without it. `METAQ_SIM_ACK_SEEDS=N` changes the sweeps' size.
@Suite("World simulation: manual ack, routed producers under ZooKeeper faults")
struct AckAndRoutingSweepTests {
    static let seedCount: Int = {
        ProcessInfo.processInfo.environment["METAQ_SIM_ACK_SEEDS"].flatMap(Int.init) ?? 40
    }()

    static func seeds(from first: UInt64 = 0, count: Int, where condition: (SimOptions) -> Bool) -> [UInt64] {
        SeedSweep.seeds(from: first, count: count, where: condition)
    }

    static func replay(_ seed: UInt64, _ flag: String = "") -> String { SeedSweep.replay(seed, flag) }

    static let manualSeeds = seeds(count: seedCount) { $0.manualAck != nil }
    static let routedFaultSeeds = seeds(count: seedCount) { $0.routedFaults != nil }

    /// Both come from their own streams: only worlds with groups (routed producers) draw them,
    /// only some of those, and no pinned seed of the other suites does — so those run byte for
    /// byte as pinned.
    @Test func ownStreamsLeaveOtherWorldsAlone() {
        var groupWorlds = 0, manual = 0, routedWorlds = 0, routedFaults = 0
        for seed: UInt64 in 0..<400 {
            let options = Simulation(seed: seed).options
            if options.cluster.groups.isEmpty {
                #expect(options.manualAck == nil, "seed \(seed)")
            } else {
                groupWorlds += 1
                if let drawn = options.manualAck {
                    manual += 1
                    #expect(!drawn.groups.isEmpty && drawn.groups.allSatisfy { $0 < options.cluster.groups.count })
                }
            }
            if options.routed == nil {
                #expect(options.routedFaults == nil, "seed \(seed)")
            } else {
                routedWorlds += 1
                if options.routedFaults != nil { routedFaults += 1 }
            }
        }
        #expect(manual > groupWorlds / 4 && manual < groupWorlds * 3 / 4)
        #expect(routedFaults > routedWorlds / 3 && routedFaults < routedWorlds * 9 / 10)
        for seed: UInt64 in [0, 2, 7, 14, 97, 136, 137, 185, 304, 316, 12_345, 1 << 40] {
            let options = Simulation(seed: seed).options
            #expect(options.manualAck == nil && options.routedFaults == nil, "pinned seed \(seed) changed")
        }
    }

    // MARK: Manual ack (§5.3)

    /// Worlds with manual-ack groups: acks, rollbacks (to the last ack and to a message), batches
    /// left undecided when their member crashes — no commit passes an unacknowledged message,
    /// every rolled-back message comes again, and every other checker still holds.
    @Test func manualAckSweep() {
        let seeds = Self.manualSeeds
        let (total, failed) = SeedSweep.run(seeds, label: "manual-ack sweep (\(seeds.count) seeds)", replay: { Self.replay($0) })
        #expect(failed.isEmpty)
        #expect(total.manualAckSeeds == seeds.count)
        if seeds.count >= 30 {
            #expect(total.manualAcks > 500 && total.manualRollbacks > 50 && total.manualRedelivered > 50)
            #expect(total.manualUndecidedAtCrash > 5 && total.memberCrashes > 5 && total.groupDelivered > 1_000)
        }
    }

    /// The canary: a manual-ack fetcher whose machine lets `.processed` move the committable
    /// position, as automatic mode does (`ConsumerMachine.Canary.processedAcknowledgesInManualMode`),
    /// commits past messages the handler never acknowledged — caught at the commit; the same
    /// seeds pass without it.
    @Test func commitOfUnacknowledgedMessagesIsCaught() {
        var caught: [UInt64] = []
        for seed in Self.manualSeeds.prefix(30) where caught.count < 3 {
            let result = Simulation(seed: seed, bugs: .manualAckCommitsProcessed).run()
            if result.failures.contains(where: { $0.contains("never acknowledged") || $0.contains("never delivered again") }) {
                caught.append(seed)
            }
        }
        #expect(caught.count >= 3, "the manual-ack canary went unnoticed in 30 seeds")
        for seed in caught { #expect(Simulation(seed: seed).run().passed, "\(Self.replay(seed))") }
    }

    // MARK: Routed producers under ZooKeeper faults (§3.3)

    /// Worlds whose routed producers lose their sessions, wait in `publish(topic)` and shut down:
    /// every wait and send is answered, a wait ends early only with its topic listed, and every
    /// running directory lists what ZooKeeper registers once the faults stop.
    @Test func routedFaultSweep() {
        let seeds = Self.routedFaultSeeds
        let (total, failed) = SeedSweep.run(seeds, label: "routed-fault sweep (\(seeds.count) seeds)", replay: { Self.replay($0) })
        #expect(failed.isEmpty)
        #expect(total.routedFaultSeeds == seeds.count)
        if seeds.count >= 30 {
            #expect(total.routedZkExpiries > 20 && total.routedZkDisconnects > 20)
            #expect(total.publishWaits > 50 && total.publishWaitsListed > 20 && total.publishWaitsUnlisted > 0)
            #expect(total.routerShutdowns > 3 && total.routedSends > 500)
        }
    }

    /// Replays are exact with the new streams too.
    @Test func newStreamsReplayExactly() {
        for seed in [Self.manualSeeds[0], Self.routedFaultSeeds[0]] {
            let first = Simulation(seed: seed).run()
            let second = Simulation(seed: seed).run()
            #expect(first.fingerprint == second.fingerprint && first.counters == second.counters, "\(Self.replay(seed))")
        }
    }

    /// The canary: a router that drops what waits for discovery at shutdown
    /// (`ProducerRouter.Canary.forgetWaitingOnShutDown`) leaves callers waiting for ever — caught
    /// at the shutdown; the same seeds pass without it.
    @Test func routerForgettingWaitersAtShutdownIsCaught() {
        var caught: [UInt64] = []
        for seed in Self.seeds(count: 60, where: { ($0.routedFaults?.shutdownProbability ?? 0) > 0 }) where caught.count < 3 {
            let result = Simulation(seed: seed, bugs: .routerForgetsWaitingOnShutDown).run()
            if result.failures.contains(where: { $0.contains("unanswered") }) { caught.append(seed) }
        }
        #expect(caught.count >= 3, "the router shutdown canary went unnoticed in 60 seeds")
        for seed in caught { #expect(Simulation(seed: seed).run().passed, "\(Self.replay(seed))") }
    }
}
