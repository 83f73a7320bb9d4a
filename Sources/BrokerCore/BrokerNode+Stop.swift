import ProtocolCore
import StoreCore

/// Graceful stop: stop starting syncs, let those in flight finish (their files stay open under
/// them), sync everything written one last time and answer what that made durable, then close
/// every connection and log.
extension BrokerNode {
    func requestStop(_ clock: NodeClock, _ actions: inout [Action]) {
        guard phase == .running else { return }
        phase = .draining
        // What is staged is written now; no sync starts any more (`scheduleSync` checks the phase).
        endOfTick(clock, &actions)
        if syncing.isEmpty && journalSyncing == nil { finishStop(clock, &actions) }
    }

    /// The final step, once no sync is in flight: one last sync per healthy log on the node's own
    /// thread, its puts answered, then connections and logs closed.
    func finishStop(_ clock: NodeClock, _ actions: inout [Action]) {
        // The journal first: a commit's batches may be written only once its entry is durable.
        finalJournalSync(clock, &actions)
        // What the last syncs in flight made durable precedes what the final syncs make durable (a
        // synchronous master's puts wait for their copies in offset order).
        answerDurable(clock, &actions)
        var answered = 0
        for partition in stores.partitions where settings.canary != .skipFinalSync {
            guard let log = stores.log(partition), !log.isFailed else { continue }
            answered += finalSync(partition, log, clock, &actions)
        }
        // Puts of logs that failed earlier (or just now) get their error.
        for partition in stores.partitions {
            if let log = stores.log(partition), log.isFailed { abandon(partition, log, clock, &actions) }
        }
        endOfTick(clock, &actions)
        // Last, once every put is durable here or failed: what still waits for its copies is refused.
        stopReplication(clock, &actions)
        actions.append(.flush)
        if unansweredPuts > 0 { violated("a graceful stop left \(unansweredPuts) put(s) unanswered") }
        if !commits.isEmpty { violated("a graceful stop left \(commits.count) commit(s) unanswered") }
        for partition in stores.partitions {
            if let log = stores.log(partition), !log.isFailed, log.hasUnsyncedData {
                violated("a graceful stop left unsynced data in \(partition)")
            }
        }
        for connection in openConnections.sorted() { actions.append(.close(connection)) }
        let failures = stores.partitions.compactMap { partition in
            stores.log(partition)?.failure.map { (partition: partition, failure: $0) }
        }
        for slice in openedSlices.values { try? slice.file.close() }
        openedSlices.removeAll()
        // Every healthy log is fully synced now: each leaves a clean-stop mark, so the next
        // start skips scanning its last segment (issue 18).
        let marked = stores.closeAll(clean: true)
        closeTransactions(&actions)
        phase = .stopped
        actions.append(.stopped(StopReport(failedPartitions: failures, answeredByFinalSync: answered,
                                           cleanStopMarks: marked)))
    }

    /// Syncs one log synchronously; returns how many puts it answered.
    func finalSync(_ partition: TopicPartition, _ log: PartitionLog, _ clock: NodeClock, _ actions: inout [Action]) -> Int {
        do { try log.flushWrites() } catch {
            reportFailure(partition, log, clock, &actions)
            return 0
        }
        switch log.beginSync() {
        case .idle: return 0
        case .failed(let abandoned):
            reportFailure(partition, log, clock, &actions)
            answerAbandoned(abandoned, of: partition, log, clock, &actions)
            return 0
        case .begun(let batch):
            do {
                try batch.perform()
            } catch {
                actions.append(.notice(.finalSyncFailed(partition, "\(error)")))
                let tickets = log.failSync(batch, error: error)
                reportFailure(partition, log, clock, &actions)
                answerAbandoned(tickets, of: partition, log, clock, &actions)
                return 0
            }
            let tickets = log.completeSync(batch, now: clock.now)
            for ticket in tickets {
                if Self.isCommitToken(ticket) {
                    commitBatchStored(ticket, clock, &actions)
                } else if let offset = awaitingSync.removeValue(forKey: ticket) {
                    acknowledge(ticket, offset: offset, partition: partition, clock, &actions)
                }
            }
            return tickets.count
        }
    }
}
