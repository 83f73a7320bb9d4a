/// How a transaction ends other than by its own command: the outcome of a commit plan the node
/// carried out, a closed connection, a timeout (§4.6), an operator's heuristic decision (§4.5).
extension TransactionMachine {
    // MARK: - Commit outcomes

    /// The node appended every batch and the commit entry is durable: the transaction is done.
    /// Returns the answer to the committing client (if it is still connected) and `.ended`.
    public mutating func commitFinished(_ slot: TxSlot) -> [TxAction] {
        guard let tx = transactions[slot], tx.state == .committing else {
            return [.notice("commitFinished for \(slot), which is not committing")]
        }
        var actions: [TxAction] = []
        if let replyTo = tx.replyTo { actions.append(.reply(replyTo.connection, Self.success(replyTo.opaque))) }
        if tx.heuristic { putHeuristicRecord(TxHeuristicRecord(id: slot.id, outcome: .committed)) }
        actions.append(contentsOf: remove(slot))
        return actions
    }

    /// The commit could not be completed. The transaction is finished either way, so a retried
    /// COMMIT cannot append its messages twice (it answers "not started").
    ///
    /// - `commitEntryWritten == false` (a batch append or the commit entry's write failed): as in
    ///   MetaQ, a rollback entry is journaled and the client gets
    ///   `XAException:code=104,msg=STORE COMMIT FAILED: Transaction rolled back.` — batches already
    ///   appended stay in their partitions (MetaQ has the same window; the node should only append
    ///   batches it can write whole).
    /// - `commitEntryWritten == true` (the entry was written but its sync failed): the outcome is
    ///   decided by the next start's replay (the entry is verified and completed if it survived;
    ///   otherwise the transaction is rolled back or, prepared, restored), so no rollback entry
    ///   is written and its redo file stays pinned (no `.ended`); the client gets XA_HEURHAZ (8).
    public mutating func commitFailed(_ slot: TxSlot, reason: String, commitEntryWritten: Bool) -> [TxAction] {
        guard let tx = transactions[slot], tx.state == .committing else {
            return [.notice("commitFailed for \(slot), which is not committing")]
        }
        var actions: [TxAction] = [.notice("commit of \(slot.id.key) failed: \(reason)")]
        if tx.committingPrepared && !tx.heuristic {
            // A prepared branch promised its transaction manager that it can commit: the broker
            // must not decide otherwise (MetaQ rolls it back with XA_RBOTHER, which breaks the
            // atomicity of the global transaction). It stays prepared — no entry is written, and a
            // commit entry that was written but not synced is settled by the next start's replay,
            // which finds either the commit or the prepare — and the manager is told to retry
            // (XAER_RMFAIL): RECOVER lists it again, until a commit succeeds.
            transactions[slot]!.state = .prepared
            transactions[slot]!.committingPrepared = false
            transactions[slot]!.replyTo = nil
            if let replyTo = tx.replyTo {
                actions.append(.reply(replyTo.connection, Self.failure(XACode.text(
                    XACode.resourceManagerFailure,
                    "Commit of prepared transaction '\(slot.id.key)' failed (\(reason)); it stays prepared: "
                        + "retry the commit, after the broker is restarted if it says so."), replyTo.opaque)))
            }
            return actions
        }
        if commitEntryWritten {
            transactions[slot] = nil
            heldBytes -= tx.bytes + tx.pendingBytes
            if let replyTo = tx.replyTo {
                actions.append(.reply(replyTo.connection, Self.failure(XACode.text(
                    XACode.heuristicHazard,
                    "Commit of transaction '\(slot.id.key)' was written but not made durable (\(reason)); "
                        + "the broker decides it when it restarts."), replyTo.opaque)))
            }
            return actions
        }
        let answer = tx.replyTo.map {
            ($0.connection, Self.failure(XACode.text(XACode.rollbackOther, "STORE COMMIT FAILED: Transaction rolled back."), $0.opaque))
        }
        actions.append(contentsOf: rollBack(slot, reply: answer, journalEvenIfEmpty: true))
        return actions
    }

    // MARK: - Connections and timeouts

    /// The connection's local transactions that are not finished are rolled back (their rollback
    /// entries to journal, no answers); a commit in progress completes, unanswered. XA
    /// transactions are the broker's and stay.
    public mutating func connectionClosed(_ connection: ConnectionID) -> [TxAction] {
        var actions: [TxAction] = []
        let affected = transactions.filter { $0.key.connection == connection || $0.value.replyTo?.connection == connection }
            .sorted { $0.value.sequence < $1.value.sequence }.map(\.key)
        for slot in affected {
            if transactions[slot]!.state == .committing {
                if transactions[slot]!.replyTo?.connection == connection { transactions[slot]!.replyTo = nil }
            } else if slot.connection == connection {
                actions.append(contentsOf: rollBack(slot, reply: nil))
            }
        }
        return actions
    }

    /// Rolls back every transaction whose timeout is at or before `now` and that is neither
    /// prepared nor committing (§4.6); their timers are the only ones due.
    public mutating func timerFired(now: Instant) -> [TxAction] {
        var actions: [TxAction] = []
        while let first = timers.first, first.deadline <= now {
            timers.removeFirst()
            guard var tx = transactions[first.slot], tx.sequence == first.sequence else { continue }
            tx.deadline = nil
            transactions[first.slot] = tx
            guard tx.state == .started || tx.state == .inUse else { continue }
            actions.append(.notice("transaction \(first.slot.id.key) timed out and is rolled back"))
            actions.append(contentsOf: rollBack(first.slot, reply: nil))
        }
        return actions
    }

    // MARK: - Heuristic completion (operators)

    /// An operator commits a prepared XA transaction (MetaQ's JMX `commitTransactionHeuristically`):
    /// the same plan as COMMIT, with no client to answer; once `commitFinished`, RECOVER lists it
    /// and COMMIT/ROLLBACK answer XA_HEURCOM until FORGET.
    public mutating func heuristicCommit(_ key: String) throws(TxOperatorError) -> [TxAction] {
        let slot = try preparedForOperator(key)
        counters.txCommit += 1
        return [.commit(startCommit(slot, wasPrepared: true, replyTo: nil, heuristic: true))]
    }

    /// An operator rolls back a prepared XA transaction (`rollbackTransactionHeuristically`).
    public mutating func heuristicRollback(_ key: String) throws(TxOperatorError) -> [TxAction] {
        let slot = try preparedForOperator(key)
        counters.txRollback += 1
        let actions = rollBack(slot, reply: nil)
        putHeuristicRecord(TxHeuristicRecord(id: slot.id, outcome: .rolledBack))
        return actions
    }

    /// Loads the heuristic records saved by the journal (heuristic.log). Non-XA ids, duplicates
    /// (the first place is kept, the last outcome wins, as a `LinkedHashMap` would) and records
    /// beyond `maxHeuristicRecords` are dropped; returns what was dropped and why.
    public mutating func importHeuristicRecords(_ records: [TxHeuristicRecord]) -> [String] {
        var problems: [String] = []
        heuristicRecords = []
        for record in records {
            guard record.id.isXA else {
                problems.append("heuristic record \(record.id.key) is not an XA transaction")
                continue
            }
            if heuristicRecords.contains(where: { $0.id == record.id }) || heuristicRecords.count < settings.maxHeuristicRecords {
                putHeuristicRecord(record)
            } else {
                problems.append("heuristic record \(record.id.key) dropped: more than \(settings.maxHeuristicRecords) records")
            }
        }
        return problems
    }

    func preparedForOperator(_ key: String) throws(TxOperatorError) -> TxSlot {
        let id: TransactionId?
        do { id = try TransactionId.parse(key, maxKeyBytes: settings.maxKeyBytes) } catch { throw TxOperatorError(text: error.text) }
        guard let id, id.isXA else { throw TxOperatorError(text: "'\(key)' is not an XA transaction") }
        let slot = TxSlot(connection: nil, id: id)
        guard transactions[slot]?.state == .prepared else {
            throw TxOperatorError(text: "XA transaction '\(id.key)' is not prepared")
        }
        guard heuristicRecords.count < settings.maxHeuristicRecords || heuristicRecords.contains(where: { $0.id == id }) else {
            throw TxOperatorError(text: "the broker already holds \(heuristicRecords.count) heuristic records: FORGET some first")
        }
        return slot
    }

    mutating func putHeuristicRecord(_ record: TxHeuristicRecord) {
        if let index = heuristicRecords.firstIndex(where: { $0.id == record.id }) {
            heuristicRecords[index].outcome = record.outcome
        } else {
            heuristicRecords.append(record)
        }
    }

}
