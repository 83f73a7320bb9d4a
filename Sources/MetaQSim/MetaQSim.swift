import ArgumentParser
import Foundation
import Sim

/// `metaq-sim`: the deterministic simulator (DESIGN.md §6). One seed → one world; a failing seed
/// replays exactly with `metaq-sim --seed N`.
@main
struct MetaQSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metaq-sim",
        abstract: "Deterministic simulation of MetaQ brokers, producers, consumers and ZooKeeper under faults.",
        discussion: """
            Each seed draws a world (1-3 brokers registered in a simulated ZooKeeper, topics, partitions, \
            flush policy, segment size, workload, fault rates; a quarter of the seeds also run 1-2 consumer \
            groups of 1-4 members, half of them with an application that fails some messages: retries, \
            hand-offs to each member's recover store, redelivery rounds; half of them with handlers that \
            ack and roll back by hand; a third of the seeds add producers in local transactions and XA \
            transactions driven by a transaction manager that crashes between prepare and commit; three in ten \
            give one broker one or two slaves, synchronous or not), runs it on a virtual clock with power losses, crashes, connection drops, \
            network partitions, slow disks, bit rot, broker disk faults (a failed write, a full disk, a failed \
            fsync), graceful stops, retention runs, slave crashes, master-link partitions, a master's disk destroyed, \
            consumer and group-member crashes, ZooKeeper session \
            expiries and connection losses, a broker joining late (the safety phase), then heals everything \
            and waits for all work to complete (the liveness phase). Checkers: no acknowledged message lost \
            (beyond what the flush policy allows), no garbage delivered, per-partition order, every \
            acknowledged message delivered to every group, one live owner per partition, stored offsets \
            never going back, no message skipped past a committed offset or at the end unless a recover \
            store keeps it, liveness; transactions visible all or nothing, never when not committed, exactly once \
            when committed, every prepared branch finished exactly once; replicas byte-identical, every slave caught \
            up, and a synchronous master's acknowledged messages on a slave's disk when its own disk is destroyed.

            Examples:
              metaq-sim --seed 42 --trace        one seed, with its event trace
              metaq-sim --sweep 10000            seeds 0..<10000; prints each failure's replay command
              metaq-sim --seed $(git rev-parse HEAD)   a commit hash is a seed too
              metaq-sim --sweep 500 --canary     the canary: acknowledge before sync (must fail)
              metaq-sim --sweep 300 --broker-canary skip-final-sync   a broken graceful stop (must fail)
              metaq-sim --sweep 2000 --broker-canary skip-commit-reappend   a recovery losing a committed batch (must fail)
              metaq-sim --sweep 3000 --broker-canary trust-stale-clean-stop-mark   a stale clean-stop mark trusted (must fail)
              metaq-sim --sweep 500 --spool-canary   ordered spool writes dropped (must fail)
              metaq-sim --sweep 400 --ack-canary     manual ack committing unacknowledged messages (must fail)
              metaq-sim --sweep 400 --router-canary  a router shutdown forgetting waiting sends (must fail)
              metaq-sim --sweep 400 --replication-canary   a synchronous master answering before its slaves (must fail)
              metaq-sim --sweep 3000 --lost-logs-canary   a broker taking over with lost logs (must fail)
            """)

    @Option(help: "Run this one seed (a decimal number, or a hex git commit hash).")
    var seed: String?

    @Option(help: "Run this many seeds.")
    var sweep: UInt64?

    @Option(help: "First seed of a sweep.")
    var from: UInt64 = 0

    @Flag(help: "Print the event trace of the seed (with --seed).")
    var trace = false

    @Flag(help: "Canary build switch: the broker acknowledges group-commit puts before their sync; the checkers must catch it.")
    var canary = false

    @Option(help: "A broker node canary the checkers must catch: forget-failed-log-puts, acknowledge-failed-log-puts, skip-final-sync, release-commit-before-entry-durable, skip-commit-reappend or trust-stale-clean-stop-mark.")
    var brokerCanary: String?

    static let brokerCanaries: [String: SimBugs] = [
        "forget-failed-log-puts": .brokerForgetsFailedLogPuts,
        "acknowledge-failed-log-puts": .brokerAcknowledgesFailedLogPuts,
        "skip-final-sync": .brokerSkipsFinalSync,
        "release-commit-before-entry-durable": .brokerReleasesCommitEarly,
        "skip-commit-reappend": .brokerSkipsCommitReappend,
        "trust-stale-clean-stop-mark": .brokerTrustsStaleCleanStopMark,
    ]

    @Flag(help: "Canary: a manual-ack consumer commits what was processed, not what was acknowledged; the checkers must catch it.")
    var ackCanary = false

    @Flag(help: "Canary: a routed producer's router drops the sends and publish waits waiting for discovery at shutdown.")
    var routerCanary = false

    @Flag(help: "Canary: every world is a synchronous replicated one whose master's disk is destroyed, and the master answers puts before its slaves have them.")
    var replicationCanary = false

    @Flag(help: "Every world is a synchronous replicated one whose master's disk is destroyed (the replication canary's worlds, without the canary).")
    var synchronousDestroyed = false

    @Flag(help: "Every world is a failover world (a replicated one whose slaves take over; the master rejoins).")
    var failover = false

    @Flag(help: "Canary: every world is a failover world, and a slave that takes over adopts the term it read instead of raising it (two brokers accept puts in one term).")
    var failoverCanary = false

    @Flag(help: "Canary: every world is a failover world, and a broker whose logs were lost (destroyed disk, copying again) may still take over.")
    var lostLogsCanary = false

    var bugs: SimBugs {
        var bugs = brokerCanary.flatMap { Self.brokerCanaries[$0] } ?? []
        if ackCanary { bugs.insert(.manualAckCommitsProcessed) }
        if routerCanary { bugs.insert(.routerForgetsWaitingOnShutDown) }
        if replicationCanary { bugs.insert(.replicationAnswersBeforeSlavesConfirm) }
        if failoverCanary { bugs.insert(.failoverTakeOverWithoutNewTerm) }
        if lostLogsCanary { bugs.insert(.failoverIgnoresLostLogs) }
        return bugs
    }

    @Flag(help: "Canary build switch: an ordered producer's spool write is reported written but dropped; the checkers must catch it.")
    var spoolCanary = false

    /// The flags that replay this run's build switches.
    var replayFlags: String {
        (canary ? " --canary" : "") + (spoolCanary ? " --spool-canary" : "")
            + (brokerCanary.map { " --broker-canary \($0)" } ?? "")
            + (ackCanary ? " --ack-canary" : "") + (routerCanary ? " --router-canary" : "")
            + (replicationCanary ? " --replication-canary" : "") + (synchronousDestroyed ? " --synchronous-destroyed" : "")
            + (failover ? " --failover" : "") + (failoverCanary ? " --failover-canary" : "")
            + (lostLogsCanary ? " --lost-logs-canary" : "")
    }

    func validate() throws {
        if let brokerCanary, Self.brokerCanaries[brokerCanary] == nil {
            throw ValidationError("--broker-canary: one of \(Self.brokerCanaries.keys.sorted().joined(separator: ", "))")
        }
        if (seed == nil) == (sweep == nil) { throw ValidationError("give either --seed N or --sweep COUNT") }
        if let seed, Self.parseSeed(seed) == nil { throw ValidationError("--seed: not a number or a hex commit hash: \(seed)") }
    }

    /// A decimal seed, or a git commit hash (its first 16 hex digits).
    static func parseSeed(_ text: String) -> UInt64? {
        if let n = UInt64(text) { return n }
        let hex = text.lowercased()
        guard hex.count >= 7, hex.allSatisfy(\.isHexDigit) else { return nil }
        return UInt64(hex.prefix(16), radix: 16)
    }

    func run() throws {
        if let seed, let n = Self.parseSeed(seed) {
            let result = Simulation(seed: n, canary: canary, spoolCanary: spoolCanary, trace: trace, bugs: bugs,
                                    synchronousDestroyed: synchronousDestroyed, failover: failover).run()
            print("seed \(n)")
            print("options: \(result.options)")
            if let lines = result.trace {
                print("trace:")
                for line in lines { print("  \(line)") }
            }
            print("counters: \(result.counters.report)")
            print("virtual time: \(result.virtualMs) ms")
            print("fingerprint: \(String(result.fingerprint, radix: 16))")
            if result.passed {
                print("verdict: PASS")
            } else {
                print("verdict: FAIL")
                for failure in result.failures { print("  \(failure)") }
                print("replay: metaq-sim --seed \(n) --trace\(replayFlags)")
                throw ExitCode(1)
            }
            return
        }
        guard let sweep else { return }
        let started = Date()
        var total = SimCounters()
        var failed = 0
        for n in from..<(from + sweep) {
            let result = Simulation(seed: n, canary: canary, spoolCanary: spoolCanary, bugs: bugs,
                                    synchronousDestroyed: synchronousDestroyed, failover: failover).run()
            total.add(result.counters)
            if !result.passed {
                failed += 1
                print("FAIL seed \(n): \(result.failures.first ?? "")")
                print("  replay: metaq-sim --seed \(n) --trace\(replayFlags)")
            }
        }
        let seconds = Date().timeIntervalSince(started)
        print("\(sweep) seeds from \(from): \(failed) failed, \(String(format: "%.1f", seconds)) s "
              + "(\(Int(Double(sweep) / max(seconds, 0.001) * 60)) seeds/min)")
        print("fired: \(total.report)")
        if failed > 0 { throw ExitCode(1) }
    }
}
