/// Transactions seen from the broker machine (reference §4): the `transaction` command and
/// puts inside a transaction go to `TransactionMachine`; its answers become the machine's
/// replies, everything else (journal entries, commits) goes to the node as `.transaction`.
extension BrokerMachine {
    /// A `transaction` command. The node calls this (rather than `handle(.request…)`) because
    /// BEGIN's timeout is measured on its monotonic clock.
    public mutating func transactionCommand(_ command: TransactionCommand, from connection: ConnectionID,
                                            now: Instant) -> [Action] {
        transactionActions(transactions.handle(command, from: connection, now: now))
    }

    /// Timeouts due at `now` (§4.6): the expired transactions' rollbacks.
    public mutating func transactionTimersFired(now: Instant) -> [Action] {
        transactionActions(transactions.timerFired(now: now))
    }

    /// A partition got a log by other means than a put (a slave's copy of its master's, issue
    /// 17): gets must find it instead of answering 404 (§1.4.2).
    public mutating func partitionHasData(_ partition: TopicPartition) {
        if !partitionsWithData.contains(partition) { partitionsWithData.insert(partition) }
    }

    /// A commit plan's outcome, reported by the node.
    /// `partitions`: where the commit's batches were stored. A partition whose first messages
    /// came by a commit holds data now, so GETs must find it instead of answering 404 (§1.4.2).
    public mutating func transactionCommitFinished(_ slot: TxSlot, storedIn partitions: [TopicPartition] = []) -> [Action] {
        for partition in partitions where !partitionsWithData.contains(partition) { partitionsWithData.insert(partition) }
        return transactionActions(transactions.commitFinished(slot))
    }

    public mutating func transactionCommitFailed(_ slot: TxSlot, reason: String, commitEntryWritten: Bool) -> [Action] {
        transactionActions(transactions.commitFailed(slot, reason: reason, commitEntryWritten: commitEntryWritten))
    }

    /// An operator's commit or rollback of a prepared XA transaction (`metaq tx`).
    public mutating func transactionHeuristic(commit: Bool, key: String) throws(TxOperatorError) -> [Action] {
        let actions = commit ? try transactions.heuristicCommit(key) : try transactions.heuristicRollback(key)
        return transactionActions(actions)
    }

    /// Start-up (§4.5): replays one redo-log entry.
    public mutating func replayTransaction(_ entry: TxJournalEntry, at position: TxJournalPosition) -> [TxAction] {
        transactions.replay(entry, at: position)
    }

    /// Start-up: what replay left in flight is rolled back; prepared ones stay.
    public mutating func finishTransactionReplay() -> [TxAction] {
        transactions.finishReplay()
    }

    public mutating func importHeuristicRecords(_ records: [TxHeuristicRecord]) -> [String] {
        transactions.importHeuristicRecords(records)
    }

    /// The put's APPEND_MSG entry was written (or not): hold the message and answer
    /// (`.transactionPutJournaled` as a call: the node's hot path, without an event around it)
    /// `<msgId> <partition> -1` (§1.4.1), or refuse it.
    public mutating func completeTransactionPut(_ journal: TransactionPutJournal, _ result: Result<TxJournalPosition, StoreFailure>,
                                                into actions: inout [Action]) {
        let target = journal.ticket.partition
        func refuse(_ text: String) {
            statsCounters.putFailed += 1
            recordRealtime(.putFailed, target.topic)
            actions.append(.reply(journal.connection, ResultResponse(code: StatusCode.internalServerError, text: text,
                                                                      opaque: journal.opaque)))
        }
        switch result {
        case .failure(let failure):
            transactions.putAbandoned(journal.ticket)
            refuse(putPrefix(target) + failure.message)
        case .success(let position):
            switch transactions.recordPut(journal.ticket, messageId: journal.messageId, journaledAt: position) {
            case .refused(let text): refuse(text)
            case .recorded(let started):
                if let started { actions.append(.transaction(.started(journal.ticket.slot.id, firstEntry: started))) }
                actions.append(.putAnswer(journal.connection, PutAnswer(opaque: journal.opaque, msgId: journal.messageId,
                                                                       partition: target.partition, offset: -1)))
            }
        }
    }

    /// The transaction machine's actions as the broker's: answers become replies, and the
    /// `tx_*` counters of `stats` follow the machine's (§9).
    mutating func transactionActions(_ actions: [TxAction]) -> [Action] {
        let counters = transactions.counters
        statsCounters.txBegin = counters.txBegin
        statsCounters.txXaBegin = counters.txXABegin
        statsCounters.txCommit = counters.txCommit
        statsCounters.txRollback = counters.txRollback
        return actions.map { action in
            if case .reply(let connection, let response) = action { return .reply(connection, response) }
            return .transaction(action)
        }
    }
}
