/// Puts inside a transaction (reference §1.4.1, §4.2): admitted against the transaction's state
/// and the bounds, journaled by the node, then held until COMMIT or ROLLBACK.
extension TransactionMachine {
    /// The texts of a refused put: answered `result 500 … <text>` (§1.4.1). A put answers with
    /// the exception's message only, so XA errors carry no `XAException:` prefix here.
    public enum PutRefusal {
        public static let randomPartition = "Invalid partition for transaction command:-1"
    }

    /// Checks a put that carries a transaction key (`put.transactionKey` must be set): the key,
    /// the transaction (in this connection's scope for a local one; not prepared, not committing),
    /// partition -1 (refused inside a transaction, §1.4.1), and the bounds. An admitted put's
    /// body bytes are reserved until `recordPut` or `putAbandoned`.
    ///
    /// The node checks the topic and partition as for any put (and calls `putAbandoned` when
    /// it refuses), assigns the message id, journals `TxJournalEntry.appendMessage`, answers
    /// `<msgId> <partition> -1` and calls `recordPut`.
    public mutating func admitPut(_ put: PutCommand, from connection: ConnectionID) -> TxPutAdmission {
        func refuse(_ text: String) -> TxPutAdmission { .refused(code: StatusCode.internalServerError, text: text) }
        let key = put.transactionKey ?? "null"
        var slot: TxSlot
        var found: Dictionary<TxSlot, Tx>.Index?
        if let last = lastPutSlot, last.key == key, last.connection == connection {
            // The puts of a transaction come in a row: the key is compared, not parsed again.
            slot = last.slot
            found = transactions.index(forKey: slot)
        } else {
            slot = TxSlot(connection: connection, id: .local(sessionId: "", number: 0))
        }
        if found == nil {
            let parsed: TransactionId?
            do {
                parsed = try TransactionId.parse(key, maxKeyBytes: settings.maxKeyBytes)
            } catch {
                return refuse(error.text)
            }
            switch lookup(parsed, from: connection) {
            case .failure(let error):
                lastPutSlot = nil
                return refuse(error.message)
            case .success(let looked): slot = looked
            }
            lastPutSlot = (key, connection, slot)
            found = transactions.index(forKey: slot)
        }
        // One hash for the lookup; the changes below go through the index, in place.
        guard let index = found else { return refuse("Transaction '\(key)' has not been started.") }
        let tx = transactions.values[index]
        switch tx.state {
        case .prepared:
            return refuse("XA transaction '\(slot.id.key)' is prepared: it takes no more messages.")
        case .committing:
            return refuse("Transaction '\(slot.id.key)' is being committed: it takes no more messages.")
        case .started, .inUse:
            break
        }
        if put.partition == -1 { return refuse(PutRefusal.randomPartition) }
        let size = put.body.count
        if tx.messages.count + tx.pendingPuts >= settings.maxMessagesPerTransaction {
            return refuse("Transaction '\(slot.id.key)' already holds \(settings.maxMessagesPerTransaction) messages "
                          + "(maxMessagesPerTransaction): commit or roll it back.")
        }
        if tx.bytes + tx.pendingBytes + size > settings.maxBytesPerTransaction {
            return refuse("Transaction '\(slot.id.key)' would hold \(tx.bytes + tx.pendingBytes + size) bytes, more than "
                          + "\(settings.maxBytesPerTransaction) (maxBytesPerTransaction): commit or roll it back.")
        }
        if heldBytes + size > settings.maxHeldBytes {
            return refuse("The broker holds \(heldBytes) bytes of uncommitted transactions; \(size) more would exceed "
                          + "\(settings.maxHeldBytes) (maxHeldBytes): try again after some transactions finish.")
        }
        transactions.values[index].state = .inUse
        transactions.values[index].pendingPuts += 1
        transactions.values[index].pendingBytes += size
        heldBytes += size
        return .admitted(TxPutTicket(slot: slot, sequence: tx.sequence, partition: TopicPartition(put.topic, put.partition),
                                     flag: put.flag, body: put.body))
    }

    /// The put's APPEND_MSG entry is in the redo log at `position` with `messageId`: the machine
    /// holds the message for the commit.
    public mutating func recordPut(_ ticket: TxPutTicket, messageId: Int64, journaledAt position: TxJournalPosition) -> TxPutRecorded {
        guard let index = transactions.index(forKey: ticket.slot), transactions.values[index].sequence == ticket.sequence,
              transactions.values[index].pendingPuts > 0 else {
            return .refused(text: ticket.slot.id.isXA ? "XA transaction '\(ticket.slot.id.key)' has not been started."
                                : "Local transaction '\(ticket.slot.id.key)' has not been started.")
        }
        // In place (through the index): a copy of the transaction would copy its messages on
        // every put.
        transactions.values[index].pendingPuts -= 1
        transactions.values[index].pendingBytes -= ticket.body.count
        transactions.values[index].bytes += ticket.body.count
        transactions.values[index].messages.append(
            Held(partition: ticket.partition, message: TxMessage(messageId: messageId, flag: ticket.flag, body: ticket.body,
                                                                 checksum: ticket.checksum)))
        var started: TxJournalPosition?
        if transactions.values[index].firstEntry == nil {
            transactions.values[index].firstEntry = position
            started = position
        }
        return .recorded(started: started)
    }

    /// The admitted put was not stored (refused by the node, or its journal write failed): its
    /// reservation is released. Harmless when the transaction has ended meanwhile.
    public mutating func putAbandoned(_ ticket: TxPutTicket) {
        guard var tx = transactions[ticket.slot], tx.sequence == ticket.sequence, tx.pendingPuts > 0 else { return }
        tx.pendingPuts -= 1
        tx.pendingBytes -= ticket.body.count
        heldBytes -= ticket.body.count
        transactions[ticket.slot] = tx
    }
}
