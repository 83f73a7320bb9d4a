/// Start-up from the redo log (reference §4.5), and the machine's invariants.
extension TransactionMachine {
    /// Replays one redo-log entry, in log order, before any command is handled:
    /// - APPEND_MSG: the stored put is decoded; its message joins the transaction it names
    ///   (created in flight when new; `.started` with this position);
    /// - XA_PREPARE: the transaction becomes prepared;
    /// - a commit: the transaction is finished; `.verifyCommit` carries the entry's locations and
    ///   the batches to re-append where a location is missing or damaged;
    /// - a rollback: the transaction is dropped.
    /// Replayed transactions have no connection: a local one can only be rolled back by
    /// `finishReplay`; a prepared XA one is finished by a transaction manager from any connection.
    /// An entry that cannot be used (undecodable put, bad key) is skipped with a `.notice`.
    public mutating func replay(_ entry: TxJournalEntry, at position: TxJournalPosition) -> [TxAction] {
        switch entry {
        case .appendMessage(let messageId, let putCommand):
            return replayAppend(messageId: messageId, putCommand: putCommand, at: position)
        case .operation(let type, let wasPrepared, let key, let locations):
            let id: TransactionId?
            do { id = try TransactionId.parse(key, maxKeyBytes: settings.maxKeyBytes) } catch {
                if type.isCommit {
                    return [.notice("replay at \(position): \(error.text)"),
                            .verifyCommit(TxReplayedCommit(transactionId: key, operation: type, wasPrepared: wasPrepared,
                                                           locations: locations, position: position, plan: nil))]
                }
                return [.notice("replay at \(position): \(error.text)")]
            }
            let slot = id.map { TxSlot(connection: nil, id: $0) }
            let held = slot.flatMap { transactions[$0] }
            switch type {
            case .xaPrepare:
                guard let slot, held != nil else {
                    return [.notice("replay at \(position): prepare of \(key), which has no messages in the replayed log")]
                }
                guard slot.id.isXA else {
                    return [.notice("replay at \(position): prepare of the local transaction \(key) ignored")]
                }
                transactions[slot]!.state = .prepared
                return []
            case .xaCommit, .localCommit:
                var plan: TxCommitPlan?
                var actions: [TxAction] = []
                if let slot, held != nil {
                    plan = self.plan(for: slot, operation: type, wasPrepared: wasPrepared, heuristic: false)
                    actions = remove(slot)
                }
                return [.verifyCommit(TxReplayedCommit(transactionId: key, operation: type, wasPrepared: wasPrepared,
                                                       locations: locations, position: position, plan: plan))] + actions
            case .xaRollback, .localRollback:
                guard let slot, held != nil else { return [] }
                return remove(slot)
            }
        }
    }

    func decodeStoredPut(_ bytes: [UInt8]) -> PutCommand? {
        var decoder = FrameDecoder()
        decoder.feed(bytes)
        guard case .put(let put)? = try? decoder.next(), decoder.bufferedByteCount == 0 else { return nil }
        return put
    }

    mutating func replayAppend(messageId: Int64, putCommand: [UInt8], at position: TxJournalPosition) -> [TxAction] {
        guard let put = decodeStoredPut(putCommand), let key = put.transactionKey else {
            return [.notice("replay at \(position): APPEND_MSG of message \(messageId) does not hold a put with a transaction key")]
        }
        let parsed: TransactionId?
        do { parsed = try TransactionId.parse(key, maxKeyBytes: settings.maxKeyBytes) } catch {
            return [.notice("replay at \(position): \(error.text)")]
        }
        guard let id = parsed else { return [.notice("replay at \(position): APPEND_MSG with the key null")] }
        let slot = TxSlot(connection: nil, id: id)
        var actions: [TxAction] = []
        if transactions[slot] == nil {
            transactions[slot] = Tx(sequence: nextSequence, state: .inUse, firstEntry: position, recovered: true)
            nextSequence += 1
            actions.append(.started(id, firstEntry: position))
        }
        if transactions[slot]!.state == .prepared {
            actions.append(.notice("replay at \(position): message \(messageId) added to the prepared transaction \(key)"))
        }
        transactions[slot]!.messages.append(Held(partition: TopicPartition(put.topic, put.partition),
                                                 message: TxMessage(messageId: messageId, flag: put.flag, body: put.body)))
        transactions[slot]!.bytes += put.body.count
        heldBytes += put.body.count
        return actions
    }

    /// Ends replay (§4.5 steps 2–3): every transaction still in flight is rolled back (rollback
    /// entries to journal, `.ended`); prepared XA transactions stay prepared, listed by RECOVER.
    public mutating func finishReplay() -> [TxAction] {
        var actions: [TxAction] = []
        for slot in slots where transactions[slot]!.state != .prepared {
            actions.append(.notice("transaction \(slot.id.key) was in flight at the last stop: rolled back"))
            actions.append(contentsOf: rollBack(slot, reply: nil))
        }
        return actions
    }

    /// What must hold between events; empty when all is well.
    public func checkInvariants() -> [String] {
        var problems: [String] = []
        var total = 0
        var anyRecovered = false
        var timed = 0
        var sequences = Set<UInt64>()
        for (slot, tx) in transactions.sorted(by: { $0.value.sequence < $1.value.sequence }) {
            total += tx.bytes + tx.pendingBytes
            anyRecovered = anyRecovered || tx.recovered
            if !sequences.insert(tx.sequence).inserted { problems.append("\(slot): sequence \(tx.sequence) used twice") }
            if tx.sequence >= nextSequence { problems.append("\(slot): sequence \(tx.sequence) not below \(nextSequence)") }
            let bytes = tx.messages.reduce(0) { $0 + $1.message.body.count }
            if bytes != tx.bytes { problems.append("\(slot): holds \(bytes) bytes but counts \(tx.bytes)") }
            if tx.pendingPuts < 0 || tx.pendingBytes < 0 { problems.append("\(slot): negative pending puts or bytes") }
            if tx.pendingPuts == 0 && tx.pendingBytes != 0 { problems.append("\(slot): pending bytes without pending puts") }
            if slot.id.isXA != (slot.connection == nil) && !tx.recovered {
                problems.append("\(slot): XA transactions are the broker's, local ones a connection's")
            }
            if tx.recovered && slot.connection != nil { problems.append("\(slot): a replayed transaction has a connection") }
            if tx.firstEntry == nil && !tx.messages.isEmpty { problems.append("\(slot): messages but no first journal entry") }
            switch tx.state {
            case .started:
                if !tx.messages.isEmpty || tx.pendingPuts > 0 { problems.append("\(slot): started but holds work") }
            case .inUse:
                break
            case .prepared:
                if !slot.id.isXA { problems.append("\(slot): a local transaction is prepared") }
                if tx.messages.isEmpty { problems.append("\(slot): prepared without messages") }
                if tx.pendingPuts > 0 { problems.append("\(slot): prepared with puts pending") }
            case .committing:
                if tx.messages.isEmpty { problems.append("\(slot): committing without messages") }
            }
            if tx.state != .committing && (tx.replyTo != nil || tx.heuristic) {
                problems.append("\(slot): a commit's reply or heuristic flag outside a commit")
            }
            if let deadline = tx.deadline {
                timed += 1
                if tx.state != .started && tx.state != .inUse { problems.append("\(slot): a timer on a \(tx.state) transaction") }
                let probe = Timer(deadline: deadline, sequence: tx.sequence, slot: slot)
                let index = timerIndex(probe)
                if !(index < timers.count && timers[index] == probe && timers[index].slot == slot) {
                    problems.append("\(slot): its deadline is not in the timer queue")
                }
            }
            if !tx.recovered {
                if tx.messages.count + tx.pendingPuts > settings.maxMessagesPerTransaction {
                    problems.append("\(slot): more than maxMessagesPerTransaction messages")
                }
                if tx.bytes + tx.pendingBytes > settings.maxBytesPerTransaction {
                    problems.append("\(slot): more than maxBytesPerTransaction bytes")
                }
            }
        }
        if total != heldBytes { problems.append("held bytes \(heldBytes) but the transactions hold \(total)") }
        if !anyRecovered {
            if heldBytes > settings.maxHeldBytes { problems.append("held bytes \(heldBytes) above maxHeldBytes") }
            if transactions.count > settings.maxOpenTransactions { problems.append("more than maxOpenTransactions transactions") }
        }
        if timed != timers.count { problems.append("\(timers.count) timers for \(timed) transactions with a deadline") }
        if timers.count > settings.maxTxTimeoutTimerCapacity { problems.append("more timers than maxTxTimeoutTimerCapacity") }
        for i in timers.indices.dropFirst() where !(timers[i - 1] < timers[i]) {
            problems.append("timer queue out of order at \(i)")
        }
        if heuristicRecords.count > settings.maxHeuristicRecords { problems.append("more heuristic records than the bound") }
        if Set(heuristicRecords.map(\.id)).count != heuristicRecords.count { problems.append("a heuristic record twice") }
        for record in heuristicRecords where !record.id.isXA { problems.append("heuristic record \(record.id) is not XA") }
        return problems
    }
}
