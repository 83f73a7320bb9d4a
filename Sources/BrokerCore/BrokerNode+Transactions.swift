import ProtocolCore
import StoreCore

/// Transactions in the node (reference §4): the redo log's writes and syncs, and the commit.
///
/// A commit appends each partition's batch behind a hold on its log (`PartitionLog.holdWrites`),
/// writes the commit entry naming where the batches went, and — with `flushTxLogAtCommit=1` —
/// lets the batches reach the file only once that entry is durable. So a power loss can leave a
/// commit entry without its batches (recovery appends them, §4.5) but never batches without
/// their commit entry (which recovery would have to roll back while consumers may have read
/// them). The COMMIT is answered when the entry is durable and every batch is written
/// (`unflushThreshold > 0`) or synced (group commit) — the same rule as a plain put.
extension BrokerNode {
    /// A commit on its way: its batches' logs are held until the commit entry is durable.
    struct CommitInFlight {
        var plan: TxCommitPlan
        /// The logs holding a batch of this commit (one hold each), until the entry is durable.
        var held: [(partition: TopicPartition, log: PartitionLog)]
        /// Batches not yet written (threshold policy) or synced (group commit).
        var batchesLeft: Int
        var entryDurable = false
        /// The transaction's first redo-log entry (a checkpoint must not pass it while its
        /// batches are not durable).
        var firstEntry: TxJournalPosition?
        /// Batches acknowledged by their write (`unflushThreshold > 0`): their log and end.
        var writtenBatches: [(log: PartitionLog, end: Int64)] = []
    }

    /// Where a pending batch of a commit is (its token is its ticket in the log).
    struct CommitBatch {
        var commit: UInt64
        var partition: TopicPartition
        /// Acknowledged by the write (threshold) rather than by a sync.
        var byWrite: Bool
        /// Where the batch ends in its partition (a synchronous master waits for its slaves to
        /// pass it, issue 17).
        var end: Int64
        /// Stored here and waiting for the slaves (synchronous replication).
        var awaitingReplication = false
    }

    /// What waits for the journal to be durable up to a position.
    enum JournalWaiter {
        /// A prepare's answer (forced entries, §4.2).
        case reply(ConnectionID, ResultResponse)
        /// A commit's entry.
        case commit(UInt64)
    }

    /// Tokens of commit batches carry this bit; the machine's tokens count up from 1.
    static let commitTokenBit: UInt64 = 1 << 62

    static func isCommitToken(_ token: UInt64) -> Bool { token & commitTokenBit != 0 }

    /// Commits the node waits for.
    public var commitsInFlight: Int { commits.count }

    // MARK: - The machine's actions

    /// Carries out one transaction action of the machine.
    func performTransaction(_ action: TxAction, _ clock: NodeClock, _ actions: inout [Action]) {
        switch action {
        case .reply(let connection, let response): actions.append(.reply(connection, response))
        case .journal(let entry, let force, let connection, let response):
            var reply: (ConnectionID, ResultResponse)?
            if let connection, let response { reply = (connection, response) }
            journalEntry(entry, force: force, reply: reply, clock, &actions)
        case .commit(let plan): startCommit(plan, clock, &actions)
        case .started(let id, let firstEntry): journal.transactionStarted(id: id.key, at: firstEntry)
        case .ended(let id, _): noteRemovedRedoFiles(journal.transactionEnded(id: id.key), &actions)
        case .verifyCommit(let commit):
            actions.append(.notice(.transaction("a replayed commit of \(commit.transactionId) arrived after start-up; ignored")))
        case .notice(let text): actions.append(.notice(.transaction(text)))
        }
    }

    /// A put inside a transaction: its APPEND_MSG entry is staged, and written with the others of
    /// this tick in one write (not synced: the original does not force it either, §4.3); once
    /// written, the machine answers `<msgId> <partition> -1`.
    func journalPut(_ put: BrokerMachine.TransactionPutJournal, _ clock: NodeClock, _ actions: inout [Action]) {
        if let reservationFailure {
            return feed(.transactionPutJournaled(put, .failure(.init(reservationFailure))), clock, &actions)
        }
        do {
            let position = try journal.stageAppendMessage(messageId: put.messageId, put: put.put)
            journaledPuts.append((put, position))
        } catch {
            journalFailed("\(error)", clock, &actions)
            feed(.transactionPutJournaled(put, .failure(.init("cannot write the transaction journal: \(error)"))), clock, &actions)
        }
    }

    /// Hands the staged puts to the machine, which holds them for their transaction, and keeps
    /// their answers until the entries are written (`writeJournal`). Before a PREPARE, COMMIT or
    /// ROLLBACK — a COMMIT pipelined behind its puts finds them, and its own entry is staged
    /// behind theirs — and before a closed connection's rollbacks.
    func recordStagedPuts(_ clock: NodeClock) {
        guard !journaledPuts.isEmpty else { return }
        let puts = journaledPuts
        journaledPuts.removeAll(keepingCapacity: true)
        var machineActions = machineActionPool.popLast() ?? []
        for (put, position) in puts { machine.completeTransactionPut(put, .success(position), into: &machineActions) }
        for index in machineActions.indices { perform(machineActions[index], clock, &deferredPutAnswers) }
        machineActions.removeAll(keepingCapacity: true)
        machineActionPool.append(machineActions)
    }

    /// The end of a tick: the staged entries written in one write, then the answers of the puts
    /// they hold. If the write fails, the journal is failed and those puts are answered with the
    /// error (their transactions cannot commit any more).
    func writeJournal(_ clock: NodeClock, _ actions: inout [Action]) {
        recordStagedPuts(clock)
        if journal.hasStagedEntries {
            do { try journal.flushWrites() } catch { journalSyncFailed("\(error)", clock, &actions) }
        }
        guard !deferredPutAnswers.isEmpty else { return }
        if let failure = journal.failure {
            // Whether these entries reached the file is unknown (a write failed, here or in a
            // sync's first step): their puts are refused, and their transactions cannot commit.
            for index in deferredPutAnswers.indices {
                if case .putAnswer(let connection, let answer) = deferredPutAnswers[index] {
                    deferredPutAnswers[index] = .reply(connection, ResultResponse(
                        code: StatusCode.internalServerError, text: "cannot write the transaction journal: \(failure)",
                        opaque: answer.opaque))
                }
            }
        }
        actions.append(contentsOf: deferredPutAnswers)
        deferredPutAnswers.removeAll(keepingCapacity: true)
    }

    /// A prepare or rollback entry. A forced entry's answer (a prepare's `0`) waits for the
    /// journal sync under `flushTxLogAtCommit=1`; otherwise answers go once the entry is written.
    /// (A rollback lost to a power loss is harmless: recovery rolls back what has no outcome.)
    func journalEntry(_ entry: TxJournalEntry, force: Bool, reply: (ConnectionID, ResultResponse)?, _ clock: NodeClock,
                      _ actions: inout [Action]) {
        let waitsForSync = force && config.flushTxLogAtCommit == .everyCommit
        do {
            // An entry answered after its sync is staged (the sync writes it first); one answered
            // after its write is written now.
            if waitsForSync { try journal.stage(entry, force: force) } else { try journal.append(entry, force: force) }
        } catch {
            journalFailed("\(error)", clock, &actions)
            if let (connection, response) = reply {
                actions.append(.reply(connection, ResultResponse(
                    code: StatusCode.internalServerError,
                    text: XACode.text(XACode.resourceManagerError, "cannot write the transaction journal: \(error)"),
                    opaque: response.opaque)))
            }
            return
        }
        guard let (connection, response) = reply else { return }
        if waitsForSync {
            journalWaiters.append((journal.writtenEnd, .reply(connection, response)))
        } else {
            actions.append(.reply(connection, response))
        }
    }

    // MARK: - Commit

    /// Appends the plan's batches behind holds, writes the commit entry with their locations,
    /// and waits for the entry (and then the batches) to be durable.
    func startCommit(_ plan: TxCommitPlan, _ clock: NodeClock, _ actions: inout [Action]) {
        let id = nextCommitId
        nextCommitId += 1
        var commit = CommitInFlight(plan: plan, held: [], batchesLeft: plan.batches.count,
                                    firstEntry: machine.transactions.firstEntry(of: plan.slot))
        var staged: [(log: PartitionLog, offset: Int64, token: UInt64)] = []
        var locations: [TxPartitionLocation] = []
        /// Takes back every batch staged so far (none reached the file: the logs are held).
        func undo() {
            for batch in staged.reversed() {
                batch.log.unstage(from: batch.offset, ticket: batch.token)
                commitBatches[batch.token] = nil
                awaitingWrite.removeAll { $0.token == batch.token }
            }
            for (partition, log) in commit.held {
                log.releaseWrites()
                markDirty(partition, log)
            }
        }
        for batch in plan.batches {
            do {
                let log = try logForAppend(batch.partition, clock, &actions)
                let bytes = batch.messages.records()
                try log.holdWrites()
                commit.held.append((batch.partition, log))
                let token = Self.commitTokenBit | nextCommitToken
                nextCommitToken += 1
                let outcome = try log.stage(records: bytes, ticket: token)
                for message in batch.messages { observeStaged?(message.messageId) }
                staged.append((log, outcome.offset, token))
                commitBatches[token] = CommitBatch(commit: id, partition: batch.partition, byWrite: outcome.acknowledged,
                                                   end: outcome.offset + Int64(bytes.count))
                if replicas.synchronous { log.requestPromptSync() }
                if outcome.acknowledged {
                    awaitingWrite.append((token, outcome.offset, batch.partition, log))
                    commit.writtenBatches.append((log, outcome.offset + Int64(bytes.count)))
                }
                locations.append(TxPartitionLocation(offset: outcome.offset, length: Int32(bytes.count),
                                                     checksum: CRC32.metaqChecksum(bytes), topic: batch.partition.topic,
                                                     partition: batch.partition.partition))
                markDirty(batch.partition, log)
            } catch {
                if let log = stores.log(batch.partition), log.isFailed { reportFailure(batch.partition, log, clock, &actions) }
                undo()
                return commitEnded(plan.slot, failure: "cannot append to \(batch.partition): \(error)", entryWritten: false,
                                   clock, &actions)
            }
        }
        do {
            // Staged: written with the tick's other entries, before the journal sync it waits for.
            try journal.stage(plan.entry(locations: locations), force: true)
        } catch {
            // Refused before anything was written (an entry too large), or the journal failed —
            // then what reached the file is unknown and the next start decides (§4.5).
            let failed = journal.failure != nil
            if failed { journalFailed("\(error)", clock, &actions) }
            undo()
            return commitEnded(plan.slot, failure: "cannot write the commit entry: \(error)", entryWritten: failed,
                               clock, &actions)
        }
        commits[id] = commit
        // (The canary releases the holds at once, as if the entry were durable already.)
        if config.flushTxLogAtCommit == .everyCommit && settings.canary != .releaseCommitBeforeEntryDurable {
            journalWaiters.append((journal.writtenEnd, .commit(id)))
        } else {
            // The journal is synced later (or by the OS): the batches need not wait for it.
            entryDurable(id, clock, &actions)
        }
    }

    /// The commit entry is durable (or need not be waited for): the batches may be written.
    func entryDurable(_ id: UInt64, _ clock: NodeClock, _ actions: inout [Action]) {
        guard var commit = commits[id] else { return }
        commit.entryDurable = true
        for (partition, log) in commit.held {
            log.releaseWrites()
            markDirty(partition, log)
        }
        commit.held = []
        commits[id] = commit
        // Answers held behind the released logs are due at their write again.
        if !awaitingRelease.isEmpty {
            var stillHeld: [(token: UInt64, offset: Int64, partition: TopicPartition, log: PartitionLog)] = []
            for entry in awaitingRelease {
                if entry.log.isHoldingWrites { stillHeld.append(entry) } else { awaitingWrite.append(entry) }
            }
            awaitingRelease = stillHeld
        }
        finishCommitIfDone(id, clock, &actions)
    }

    /// A batch of a commit was written (threshold) or synced (group commit).
    func commitBatchStored(_ token: UInt64, _ clock: NodeClock, _ actions: inout [Action]) {
        // A synchronous master's commit is answered once its slaves hold its batches too.
        if replicas.synchronous, let batch = commitBatches[token], !batch.awaitingReplication,
           settings.canary != .answerBeforeSlavesConfirm {
            commitBatches[token]!.awaitingReplication = true
            replicas.waiting[token] = batch.end
            performTracker(replicas.tracker.putWaiting(token: token, batch.partition, end: batch.end, now: clock.now), clock, &actions)
            return armReplicationTimer(clock, &actions)
        }
        guard let batch = commitBatches.removeValue(forKey: token) else {
            return violated("an unknown commit batch \(token) was acknowledged")
        }
        guard var commit = commits[batch.commit] else { return }  // the commit failed meanwhile
        commit.batchesLeft -= 1
        commits[batch.commit] = commit
        finishCommitIfDone(batch.commit, clock, &actions)
    }

    /// A batch of a commit will never be stored (its log failed). The commit entry is durable
    /// (its batches are written only then), so the next start appends the batch (§4.5).
    func commitBatchFailed(_ token: UInt64, _ cause: String, _ clock: NodeClock, _ actions: inout [Action]) {
        guard let batch = commitBatches.removeValue(forKey: token), let commit = commits.removeValue(forKey: batch.commit) else {
            return
        }
        for (partition, log) in commit.held {
            log.releaseWrites()
            markDirty(partition, log)
        }
        commitEnded(commit.plan.slot, failure: "\(batch.partition): \(cause)", entryWritten: true, clock, &actions)
    }

    func finishCommitIfDone(_ id: UInt64, _ clock: NodeClock, _ actions: inout [Action]) {
        guard let commit = commits[id], commit.entryDurable, commit.batchesLeft == 0 else { return }
        commits[id] = nil
        if !commit.writtenBatches.isEmpty, let firstEntry = commit.firstEntry {
            // Answered after the write: until its logs sync, recovery may need this commit.
            committedUnsynced.append((firstEntry, commit.writtenBatches))
            // Pruned when it doubles, so it stays about as long as one sync interval's commits.
            if committedUnsynced.count >= committedUnsyncedPruneAt {
                pruneCommittedUnsynced()
                committedUnsyncedPruneAt = max(64, committedUnsynced.count * 2)
            }
        }
        let stored = commit.plan.batches.map(\.partition)
        for action in machine.transactionCommitFinished(commit.plan.slot, storedIn: stored) { perform(action, clock, &actions) }
    }

    /// Tells the machine a commit did not complete, and carries out what it answers.
    func commitEnded(_ slot: TxSlot, failure: String, entryWritten: Bool, _ clock: NodeClock, _ actions: inout [Action]) {
        for action in machine.transactionCommitFailed(slot, reason: failure, commitEntryWritten: entryWritten) {
            perform(action, clock, &actions)
        }
    }

    // MARK: - Journal syncs

    /// Starts a journal sync when something waits for one (end of tick).
    func scheduleJournalSync(_ clock: NodeClock, _ actions: inout [Action]) {
        guard phase == .running, journalSyncing == nil, !journalWaiters.isEmpty else { return }
        switch journal.beginSync() {
        case .idle:
            // Nothing unsynced: everything waiting is durable already.
            journalDurable(clock, &actions)
        case .failed(let failure): journalSyncFailed("\(failure)", clock, &actions)
        case .begun(let batch):
            journalSyncing = batch
            actions.append(.startJournalSync(JournalSyncJob(batch: batch, dataPath: journalDataPath)))
        }
    }

    func journalSyncFinished(id: UInt64, _ result: Result<Void, StorageError>, _ clock: NodeClock, _ actions: inout [Action]) {
        guard let batch = journalSyncing, batch.id == id else {
            return violated("a journal sync (#\(id)) finished that the node did not start")
        }
        journalSyncing = nil
        switch result {
        case .success:
            noteRemovedRedoFiles(journal.completeSync(batch), &actions)
            journalDurable(clock, &actions)
        case .failure(let error):
            journal.failSync(batch, error: error)
            journalSyncFailed("\(error)", clock, &actions)
        }
        actions.append(.endTickNow)
        if phase == .draining && syncing.isEmpty { finishStop(clock, &actions) }
    }

    /// Answers what the journal's synced end now covers.
    func journalDurable(_ clock: NodeClock, _ actions: inout [Action]) {
        let synced = journal.syncedEnd
        while let first = journalWaiters.first, first.upTo <= synced {
            journalWaiters.removeFirst()
            switch first.waiter {
            case .reply(let connection, let response): actions.append(.reply(connection, response))
            case .commit(let id): entryDurable(id, clock, &actions)
            }
        }
    }

    /// The journal cannot be synced: nothing waiting on it will be durable. Prepares are refused;
    /// commits' batches are dropped with their logs (their entry may or may not have reached the
    /// disk: the next start decides, and a batch written now could outlive a lost entry).
    func journalSyncFailed(_ cause: String, _ clock: NodeClock, _ actions: inout [Action]) {
        journalFailed(cause, clock, &actions)
        let waiters = journalWaiters
        journalWaiters.removeAll()
        for (_, waiter) in waiters {
            switch waiter {
            case .reply(let connection, let response):
                actions.append(.reply(connection, ResultResponse(
                    code: StatusCode.internalServerError,
                    text: XACode.text(XACode.resourceManagerError, "the transaction journal could not be synced: \(cause)"),
                    opaque: response.opaque)))
            case .commit(let id):
                guard let commit = commits.removeValue(forKey: id) else { continue }
                for (partition, log) in commit.held {
                    log.releaseWrites()
                    log.fail(.sync, .io(path: journal.directory, detail: "the transaction journal could not be synced: \(cause)"))
                    abandon(partition, log, clock, &actions)
                    markDirty(partition, log)
                }
                commitEnded(commit.plan.slot, failure: cause, entryWritten: true, clock, &actions)
            }
        }
        // Answers held behind those logs are now failures (the end of the tick answers them).
        awaitingWrite.append(contentsOf: awaitingRelease)
        awaitingRelease.removeAll()
    }

    /// Reports the journal's failure once.
    func journalFailed(_ cause: String, _ clock: NodeClock, _ actions: inout [Action]) {
        guard !journalFailureReported else { return }
        journalFailureReported = true
        actions.append(.notice(.transactionJournalFailed(cause)))
    }

    func noteRemovedRedoFiles(_ names: [String], _ actions: inout [Action]) {
        if !names.isEmpty { actions.append(.notice(.transaction("redo files no open transaction needs were deleted: \(names)"))) }
    }

    // MARK: - Timers

    /// Arms the timer of the earliest transaction timeout when it is earlier than the armed one.
    func armTransactionTimer(_ clock: NodeClock, _ actions: inout [Action]) {
        guard phase == .running, let deadline = machine.transactions.nextDeadline else { return }
        if let armed = transactionTimerAt, armed <= deadline { return }
        transactionTimerAt = deadline
        actions.append(.armTimer(.transactionTimeout, at: deadline))
    }

    func transactionTimerFired(_ timer: NodeTimer, _ clock: NodeClock, _ actions: inout [Action]) {
        switch timer {
        case .transactionTimeout:
            transactionTimerAt = nil
            for action in machine.transactionTimersFired(now: clock.now) { perform(action, clock, &actions) }
            armTransactionTimer(clock, &actions)
        case .transactionCheckpoint:
            let written = writeTransactionCheckpoint(clock, &actions)
            // A checkpoint that needs the journal synced first is tried again a second later.
            let delay = written ? config.checkpointIntervalMs : 1000
            actions.append(.armTimer(.transactionCheckpoint, at: clock.now.adding(milliseconds: delay)))
        case .transactionJournalFlush:
            if journal.hasUnsyncedData, journalSyncing == nil, phase == .running {
                if case .begun(let batch) = journal.beginSync() {
                    journalSyncing = batch
                    actions.append(.startJournalSync(JournalSyncJob(batch: batch, dataPath: journalDataPath)))
                }
            }
            actions.append(.armTimer(.transactionJournalFlush, at: clock.now.adding(milliseconds: 1000)))
        case .syncDeadline, .retention, .replication: break
        }
    }

    /// Arms the checkpoint timer and, under `flushTxLogAtCommit=2`, the once-a-second sync.
    func armTransactionTimers(_ clock: NodeClock, _ actions: inout [Action]) {
        actions.append(.armTimer(.transactionCheckpoint, at: clock.now.adding(milliseconds: config.checkpointIntervalMs)))
        if config.flushTxLogAtCommit == .everySecond {
            actions.append(.armTimer(.transactionJournalFlush, at: clock.now.adding(milliseconds: 1000)))
        }
    }

    /// A checkpoint (§4.4) and `heuristic.log`; false when the journal must be synced first (a
    /// sync is started). The checkpoint is the oldest first entry of a transaction still open —
    /// or committed and answered after the write of a batch its log has not synced yet, whose
    /// commit recovery may still have to complete.
    func writeTransactionCheckpoint(_ clock: NodeClock, _ actions: inout [Action]) -> Bool {
        pruneCommittedUnsynced()
        let oldest = [machine.transactions.oldestOpenPosition, committedUnsynced.map(\.firstEntry).min()].compactMap { $0 }.min()
        do {
            if case .needsSync = try journal.checkpoint(oldestOpen: oldest) {
                if journalSyncing == nil, phase == .running, case .begun(let batch) = journal.beginSync() {
                    journalSyncing = batch
                    actions.append(.startJournalSync(JournalSyncJob(batch: batch, dataPath: journalDataPath)))
                }
                return false
            }
            try TxHeuristicLog.save(records: machine.transactions.heuristicRecords, storage: storage, directory: journal.directory)
        } catch {
            actions.append(.notice(.transaction("checkpoint failed: \(error)")))
        }
        return true
    }

    /// Forgets the answered commits whose batches their logs have synced since.
    func pruneCommittedUnsynced() {
        committedUnsynced.removeAll { commit in commit.batches.allSatisfy { $0.log.maxOffset >= $0.end || $0.log.isFailed } }
    }

    /// Graceful stop: the journal's last sync, what it makes durable answered.
    func finalJournalSync(_ clock: NodeClock, _ actions: inout [Action]) {
        do {
            noteRemovedRedoFiles(try journal.syncNow(), &actions)
            journalDurable(clock, &actions)
        } catch {
            journalSyncFailed("\(error)", clock, &actions)
        }
    }

    /// Closes the journal after the final syncs, saving `heuristic.log` first.
    func closeTransactions(_ actions: inout [Action]) {
        if journal.failure == nil {
            do {
                try TxHeuristicLog.save(records: machine.transactions.heuristicRecords, storage: storage,
                                        directory: journal.directory)
            } catch {
                actions.append(.notice(.transaction("cannot save heuristic.log: \(error)")))
            }
        }
        journal.close()
    }
}
