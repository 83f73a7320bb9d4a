import ProtocolCore
import StoreCore

/// Syncs: when one starts (the flush policy, one per log at a time), what its completion
/// answers, and what a failed or postponed one does.
extension BrokerNode {
    /// Starts a sync when the flush policy says one is due, or arms a timer for its deadline.
    /// Appends arriving while a sync runs ride the next one.
    func scheduleSync(_ partition: TopicPartition, _ clock: NodeClock, _ actions: inout [Action]) {
        guard phase == .running, let log = stores.log(partition), syncing[partition] == nil else { return }
        if log.syncDue(now: clock.now) {
            switch log.beginSync() {
            case .idle: return
            case .failed(let abandoned):
                reportFailure(partition, log, clock, &actions)
                answerAbandoned(abandoned, of: partition, log, clock, &actions)
            case .begun(let batch):
                syncing[partition] = batch
                let firstWriteAt = unsyncedSince.removeValue(forKey: partition) ?? clock.now
                actions.append(.startSync(SyncJob(partition: partition, batch: batch, dataPath: stores.dataPath(of: partition.topic),
                                                  begunAt: clock.now, firstWriteAt: firstWriteAt)))
            }
        } else if let deadline = log.nextSyncDeadline(), armedTimers.insert(.syncDeadline(partition)).inserted {
            actions.append(.armTimer(.syncDeadline(partition), at: deadline))
        }
    }

    /// A sync ended. On success the next one starts at once (appends staged meanwhile are already
    /// written) — its `.startSync` comes before anything else, so the driver starts the fsync
    /// before it spends time on answers — and the puts this one made durable are answered at the
    /// end of the tick, which `.endTickNow` asks the driver to hold at once (flushed in this task,
    /// not behind the next round of reads).
    func syncFinished(_ partition: TopicPartition, id: UInt64, _ result: Result<Void, StorageError>, _ clock: NodeClock,
                      _ actions: inout [Action]) {
        guard let batch = syncing[partition], batch.id == id else {
            return violated("a sync of \(partition) (#\(id)) finished that the node did not start")
        }
        syncing[partition] = nil
        guard let log = stores.log(partition) else { return }
        var answered = 0
        var failed = false
        switch result {
        case .success:
            if let postponed = syncPostponedEpisode.succeeded() { actions.append(.notice(.syncsResumed(postponed: postponed))) }
            let tickets = log.completeSync(batch, now: clock.now)
            scheduleSync(partition, clock, &actions)
            if replica != nil { replicaSynced(partition, log, clock, &actions) } else { masterSynced(partition, log, clock, &actions) }
            if !tickets.isEmpty { durable.append((partition, tickets)) }
            answered = tickets.count
        case .failure(let error) where error.isRetryable:
            // Out of descriptors: the sync did nothing, its puts wait for the next one, which the
            // log makes due a little later (its deadline arms the timer at the end of the tick).
            log.postponeSync(batch, error: error, now: clock.now)
            if syncPostponedEpisode.refused() { actions.append(.notice(.syncPostponed(partition, error))) }
        case .failure(let error):
            // A failed fsync is fatal for the log (DESIGN.md §4): never retried as if the data were safe.
            failed = true
            let tickets = log.failSync(batch, error: error)
            reportFailure(partition, log, clock, &actions)
            answerAbandoned(tickets, of: partition, log, clock, &actions)
        }
        markDirty(partition, log)
        if answered > 0 || failed { actions.append(.endTickNow) }
        actions.append(.syncAnswered(partition, count: answered))
        if phase == .draining && syncing.isEmpty && journalSyncing == nil { finishStop(clock, &actions) }
    }

    func timerFired(_ timer: NodeTimer, _ clock: NodeClock, _ actions: inout [Action]) {
        armedTimers.remove(timer)
        switch timer {
        case .syncDeadline(let partition): scheduleSync(partition, clock, &actions)
        case .retention(let index):
            guard retentionSchedules.indices.contains(index) else { return }
            runRetention(retentionSchedules[index], wallMs: clock.wallMs, &actions)
            armRetentionTimer(index, clock, &actions)
        case .transactionTimeout, .transactionCheckpoint, .transactionJournalFlush:
            guard phase == .running else { return }
            transactionTimerFired(timer, clock, &actions)
        case .replication:
            guard phase == .running else { return }
            replicationTimerFired(clock, &actions)
        }
    }

    /// Invariants a driver may check at any quiet point (the simulator does after every event):
    /// every waiting put is held by a healthy log that will sync it — a sync in flight, due at
    /// the end of this tick, or a timer armed — so no put can wait forever; the node waits for
    /// exactly the puts its logs hold; the transaction and replication machines' own invariants.
    public func checkInvariants() -> [String] {
        var problems = violations
        var heldByLogs = 0
        for partition in stores.partitions {
            guard let log = stores.log(partition), log.pendingAcknowledgements > 0 else { continue }
            let count = log.pendingAcknowledgements
            heldByLogs += count
            let endOfTickPending = dirtyLogs.contains { $0.partition == partition }
            if log.isFailed && !endOfTickPending { problems.append("\(count) put(s) wait for the failed log of \(partition)") }
            // A log held for a commit syncs once the commit entry is durable and the hold released.
            let willSync = syncing[partition] != nil || armedTimers.contains(.syncDeadline(partition))
                || endOfTickPending || phase != .running || log.isHoldingWrites
            if !willSync { problems.append("\(count) put(s) wait for \(partition) with no sync in flight or due") }
        }
        // Puts a sync made durable wait for the end of the tick, no longer for their log.
        heldByLogs += durable.reduce(0) { $0 + $1.tickets.count }
        // Commit batches under group commit wait in their logs too, as waiters the node keeps
        // apart from the puts.
        heldByLogs -= commitBatches.values.filter { !$0.byWrite && !$0.awaitingReplication }.count
            + durable.reduce(0) { $0 + $1.tickets.filter(Self.isCommitToken).count }
        // The end of every tick starts a journal sync when something waits for one.
        if !journalWaiters.isEmpty && journalSyncing == nil && phase == .running && dirtyLogs.isEmpty {
            problems.append("\(journalWaiters.count) answer(s) wait for a journal sync that is neither running nor due")
        }
        for (id, commit) in commits where commit.entryDurable && !commit.held.isEmpty {
            problems.append("commit \(id) keeps holds on \(commit.held.count) log(s) after its entry became durable")
        }
        problems += machine.transactions.checkInvariants()
        problems += replicas.tracker.checkInvariants()
        if replicas.waiting.count != replicas.tracker.waitingPuts {
            problems.append("\(replicas.waiting.count) put(s) wait for their slaves, the tracker holds \(replicas.tracker.waitingPuts)")
        }
        if replicas.parkedCount != replicas.parked.values.reduce(0, { $0 + $1.count }) {
            problems.append("the count of held fetches is off")
        }
        if let replica { problems += replica.fetcher.checkInvariants() }
        if replica != nil && leadingTerm != nil { problems.append("following while leading term \(leadingTerm!)") }
        if heldByLogs < awaitingSync.count {
            problems.append("\(awaitingSync.count - heldByLogs) put(s) wait that no log will acknowledge (a failed log dropped them)")
        } else if heldByLogs > awaitingSync.count && settings.canary != .ackBeforeSync {
            problems.append("the logs hold \(heldByLogs) waiting put(s), the node knows \(awaitingSync.count)")
        }
        return problems
    }
}
