import ProtocolCore
import Sim
import Testing
@testable import StoreCore

/// Power loss at every step of a scripted transaction history (reference §4.3–§4.5): after
/// reopening, every entry a completed sync covered is replayed (from the replay start on), the
/// replay is a prefix of what was appended, every synced open transaction is still reachable from
/// the replay start, and a second open finds a clean tail.
@Suite("Transaction journal under power loss")
struct TxJournalPowerLossTests {
    enum Step {
        case append(TxJournalEntry, force: Bool, starts: String?, ends: String?)
        case sync
        case checkpoint
    }

    static let script: [Step] = [
        .append(txPut(1), force: false, starts: "TX:a", ends: nil),
        .append(txPut(2), force: false, starts: nil, ends: nil),
        .sync,
        .append(txPut(3), force: false, starts: "XID:b", ends: nil),
        .append(txPrepare("XID:b"), force: true, starts: nil, ends: nil),
        .sync,
        .append(txCommit("TX:a"), force: false, starts: nil, ends: "TX:a"),
        .sync,
        .checkpoint,
        .append(txPut(4), force: false, starts: "TX:c", ends: nil),
        .sync,
        .append(txRollback("TX:c"), force: false, starts: nil, ends: "TX:c"),
        .sync,
        .append(txPut(8), force: false, starts: "TX:f", ends: nil),
        .sync,
        .append(txCommit("TX:f"), force: false, starts: nil, ends: "TX:f"),
        .sync,
        // XID:b kept every file since its start; now several can go.
        .append(.operation(type: .xaCommit, wasPrepared: true, transactionId: "XID:b", locations: [
            TxPartitionLocation(offset: 60, length: 25, checksum: 5, topic: "test", partition: 1)]), force: false, starts: nil, ends: "XID:b"),
        .sync,
        .append(txPut(5), force: false, starts: "TX:d", ends: nil),
        .checkpoint,
        .sync,
        .checkpoint,
        .append(txPut(9), force: false, starts: "TX:g", ends: nil),
        .sync,
        // TX:d ends before TX:g: a checkpoint at TX:g must wait until TX:d's commit is durable.
        .append(txCommit("TX:d"), force: false, starts: nil, ends: "TX:d"),
        .checkpoint,
        .sync,
        .checkpoint,
        .append(txPut(6), force: false, starts: nil, ends: nil),
        .sync,
        .sync,
        .sync,
        .append(txPut(7), force: false, starts: "TX:e", ends: nil),
    ]

    struct Appended {
        var position: TxJournalPosition
        var end: TxJournalPosition
        var entry: TxJournalEntry
    }

    /// Runs the first `count` steps; returns what was appended, the synced end, and the first
    /// entries of the transactions whose start is durable but whose end is not (or that are still
    /// open): a power loss must not make those vanish.
    func run(_ count: Int, on disk: SimDisk, config: TxJournalConfig) throws -> (appended: [Appended], synced: TxJournalPosition, mustReplay: [TxJournalPosition]) {
        let (journal, _) = try openJournal(disk, config)
        journal.recoveryFinished()
        var appended: [Appended] = []
        var open: [String: TxJournalPosition] = [:]
        var started: [String: Appended] = [:]
        var ended: [String: Appended] = [:]
        for step in Self.script.prefix(count) {
            switch step {
            case .append(let entry, let force, let starts, let ends):
                let position = try journal.append(entry, force: force)
                let record = Appended(position: position, end: journal.writtenEnd, entry: entry)
                appended.append(record)
                if let starts {
                    open[starts] = position
                    started[starts] = record
                    journal.transactionStarted(id: starts, at: position)
                }
                if let ends {
                    open[ends] = nil
                    ended[ends] = record
                    journal.transactionEnded(id: ends)
                }
            case .sync:
                try journal.syncNow()
            case .checkpoint:
                _ = try journal.checkpoint(oldestOpen: open.values.min())
            }
        }
        let synced = journal.syncedEnd
        let mustReplay = started.filter { id, start in
            start.end <= synced && !(ended[id].map { $0.end <= synced } ?? false)
        }.map(\.value.position).sorted()
        return (appended, synced, mustReplay)
    }

    /// The script reaches what it is meant to test: at a small file size it rolls, deletes files
    /// (several become deletable at once) and leaves checkpoints.
    @Test func theScriptRollsDeletesAndCheckpoints() throws {
        let disk = SimDisk()
        _ = try run(Self.script.count, on: disk, config: TxJournalConfig(fileSizeBytes: 40))
        let names = try disk.list(txDir)
        #expect(!names.contains("redo.1") && !names.contains("redo.5") && names.contains("redo.7"), "\(names)")
        #expect(names.contains("checkpoint.1") && names.contains("checkpoint.3"), "\(names)")
    }

    @Test(arguments: [TxJournalConfig(fileSizeBytes: 67_108_864), TxJournalConfig(fileSizeBytes: 90), TxJournalConfig(fileSizeBytes: 40)])
    func everySyncedEntrySurvivesPowerLossAtEveryStep(config: TxJournalConfig) throws {
        for count in 0...Self.script.count {
            for seed in UInt64(0)..<40 {
                let disk = SimDisk()
                let (appended, synced, mustReplay) = try run(count, on: disk, config: config)
                var rng = SimRandom(seed: seed &* 1_000 &+ UInt64(count))
                disk.powerLoss(using: &rng)

                let context = "step \(count), seed \(seed), file size \(config.fileSizeBytes)"
                let (journal, report) = try openJournal(disk, config)
                let replayed = try replayAll(journal)
                let expected = appended.filter { $0.position >= report.replayStart }
                #expect(replayed.map(\.entry) == expected.prefix(replayed.count).map(\.entry), "\(context)")
                #expect(replayed.map(\.position) == expected.prefix(replayed.count).map(\.position), "\(context)")
                let durable = expected.filter { $0.end <= synced }
                #expect(replayed.count >= durable.count, "\(context): \(replayed.count) replayed, \(durable.count) were synced")
                let positions = Set(replayed.map(\.position))
                for start in mustReplay {
                    #expect(positions.contains(start), "\(context): the transaction that started at \(start) vanished")
                }
                journal.close()
                let (again, second) = try openJournal(disk, config)
                #expect(second.truncatedBytes == 0, "\(context)")
                #expect(try replayAll(again).map(\.entry) == replayed.map(\.entry), "\(context)")
                // The reopened journal takes appends and syncs.
                try again.append(txPut(99), force: false)
                try again.syncNow()
            }
        }
    }
}
