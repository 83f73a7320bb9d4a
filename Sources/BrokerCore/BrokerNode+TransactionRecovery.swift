import ProtocolCore
import StoreCore

/// Start-up of transactions (reference §4.5), after the partitions are recovered: the redo log is
/// opened (a torn tail cut off), `heuristic.log` loaded, every entry from the last checkpoint
/// replayed into the transaction machine, each replayed commit checked against its partitions —
/// a batch missing or failing its checksum is appended again (after cutting off a torn one, so no
/// message is there twice) and the entry's attachment rewritten — then what was in flight is
/// rolled back and the prepared XA transactions wait for their transaction manager.
extension BrokerNode {
    /// What transaction recovery hands to the node.
    struct RecoveredTransactions {
        var journal: TxJournal
        var machine: TransactionMachine
        var report: TransactionRecoveryReport
    }

    static func recoverTransactions(storage: any Storage, stores: PartitionStores, config: ServerConfig,
                                    settings: TransactionMachine.Settings, clock: NodeClock,
                                    canary: Canary? = nil) throws -> RecoveredTransactions {
        let directory = TxJournal.directory(dataLogPath: config.dataLogPath ?? stores.defaultDataPath)
        let (journal, opened) = try TxJournal.open(storage: storage, directory: directory,
                                                   config: TxJournalConfig(maxCheckpoints: config.maxCheckpoints))
        var report = TransactionRecoveryReport(journal: opened)
        var machine = TransactionMachine(settings: settings)
        let heuristic = try TxHeuristicLog.loadRecords(storage: storage, directory: directory, maxKeyBytes: settings.maxKeyBytes)
        report.notes += heuristic.skipped.map { "heuristic.log: '\($0)' is not a transaction id; skipped" }
        report.notes += machine.importHeuristicRecords(heuristic.records)
        func apply(_ action: TxAction) throws {
            switch action {
            case .started(let id, let firstEntry): journal.transactionStarted(id: id.key, at: firstEntry)
            case .ended(let id, _): journal.transactionEnded(id: id.key)
            case .journal(let entry, let force, _, _):
                try journal.append(entry, force: force)
                if case .operation(let type, _, _, _) = entry, type.isRollback { report.rolledBack += 1 }
            case .verifyCommit(let commit):
                report.commitsChecked += 1
                try verify(commit, stores: stores, journal: journal, clock: clock, report: &report, canary: canary)
            case .notice(let text): report.notes.append(text)
            case .reply, .commit: report.notes.append("replay asked for \(action); ignored")
            }
        }
        try journal.replay { record in
            for action in machine.replay(record.entry, at: record.position) { try apply(action) }
        }
        for action in machine.finishReplay() { try apply(action) }
        try journal.syncNow()
        journal.recoveryFinished()
        report.prepared = machine.recoverList(uniqueQualifier: nil).filter { id in
            machine.slots.contains { $0.id == id && machine.state(of: $0) == .prepared }
        }.map(\.key)
        return RecoveredTransactions(journal: journal, machine: machine, report: report)
    }

    /// Checks one replayed commit against its partitions and appends what is missing (§4.5).
    static func verify(_ commit: TxReplayedCommit, stores: PartitionStores, journal: TxJournal, clock: NodeClock,
                       report: inout TransactionRecoveryReport, canary: Canary? = nil) throws {
        var locations = commit.locations
        var changed = false
        for (index, location) in commit.locations.enumerated() {
            let partition = TopicPartition(location.topic, location.partition)
            let log = try stores.logCreatingIfNeeded(partition, now: clock.now)
            if try log.holdsBatch(at: location.offset, length: location.length, checksum: location.checksum) { continue }
            // Below the log's first offset the batch was stored and later removed by retention on
            // purpose (§2.7): appending it again would deliver its messages a second time.
            if location.offset < log.minOffset { continue }
            if canary == .skipCommitReappend { continue }  // the canary: a missing committed batch stays missing
            guard let plan = commit.plan, let batch = plan.batches.first(where: { $0.partition == partition }) else {
                report.notes.append("the commit of \(commit.transactionId) names \(partition) at \(location.offset), which does "
                                    + "not hold its batch, and the journal no longer has its messages")
                continue
            }
            // A batch torn at the very end of the log is cut off first (its first records must not
            // be there twice) and appended whole. One damaged before records that recovery kept
            // (and readers skip the damage) stays: cutting it would drop the records after it and
            // shift the offsets readers hold, so only its records not intact where the commit put
            // them are appended.
            var messages = batch.messages
            if let lastStart = log.segmentStarts.last, location.offset >= lastStart, location.offset < log.writtenOffset,
               location.offset + Int64(location.length) >= log.writtenOffset {
                try log.truncate(to: location.offset)
            } else if location.offset < log.writtenOffset {
                var offset = location.offset
                messages = []
                for message in batch.messages {
                    let record = [message].records()
                    if try !log.holdsBatch(at: offset, length: Int32(record.count), checksum: CRC32.metaqChecksum(record)) {
                        messages.append(message)
                    }
                    offset += Int64(record.count)
                }
            }
            if messages.isEmpty { continue }
            let bytes = messages.records()
            let outcome = try log.append(records: bytes, now: clock.now)
            _ = try log.syncNow(now: clock.now)
            locations[index] = TxPartitionLocation(offset: outcome.offset, length: Int32(bytes.count),
                                                   checksum: CRC32.metaqChecksum(bytes), topic: location.topic,
                                                   partition: location.partition)
            changed = true
            report.batchesAppended += 1
            report.notes.append("appended the batch of \(commit.transactionId) to \(partition) again at \(outcome.offset) "
                                + "(\(messages.count) of its \(batch.messages.count) messages)")
        }
        if changed { try journal.rewriteAttachment(at: commit.position, locations: locations) }
    }
}

/// What transaction recovery found and did (logged at start-up).
public struct TransactionRecoveryReport: Sendable, CustomStringConvertible {
    public var journal: TxJournalOpenReport
    public var commitsChecked = 0
    /// Committed batches that were missing or torn and were appended again.
    public var batchesAppended = 0
    /// In-flight transactions rolled back.
    public var rolledBack = 0
    /// Prepared XA transactions waiting for their transaction manager.
    public var prepared: [String] = []
    public var notes: [String] = []

    public var description: String {
        var parts = ["\(journal)", "\(commitsChecked) commits checked", "\(batchesAppended) batches appended again",
                     "\(rolledBack) in-flight transactions rolled back", "\(prepared.count) prepared"]
        if !notes.isEmpty { parts.append("notes: \(notes.joined(separator: "; "))") }
        return parts.joined(separator: ", ")
    }
}
