import ProtocolCore
import StoreCore

/// The commit pipeline: the machine's actions carried out against the stores, records staged per
/// put, each touched log written once per tick, puts answered after the write (threshold policy)
/// or after the sync that covers them (group commit), and what a failed log does to its puts.
extension BrokerNode {
    /// Feeds one event to the machine and carries out what it asks for.
    func feed(_ event: consuming BrokerMachine.Event, _ clock: NodeClock, _ actions: inout [Action]) {
        var machineActions = machineActionPool.popLast() ?? []
        machine.handle(event, nowMs: clock.wallMs, into: &machineActions)
        // By index, so each action is borrowed rather than copied out of the array.
        for index in machineActions.indices { perform(machineActions[index], clock, &actions) }
        reservationFailure = nil
        machineActions.removeAll(keepingCapacity: true)
        machineActionPool.append(machineActions)
    }

    func perform(_ action: borrowing BrokerMachine.Action, _ clock: NodeClock, _ actions: inout [Action]) {
        switch action {
        case .append(let token, let partition, let record): append(token, partition, record, clock, &actions)
        case .read(let token, let partition, let offset, let maxBytes): read(token, partition, offset, maxBytes, clock, &actions)
        case .readBytes(let token, let partition, let offset, let maxBytes):
            feed(.read(token: token, stores.readBytes(partition, offset: offset, maxBytes: maxBytes)), clock, &actions)
        case .nearestOffset(let token, let partition, let offset):
            feed(.nearestOffset(token: token, stores.log(partition)?.nearestOffset(offset) ?? 0), clock, &actions)
        case .reply(let connection, let response): actions.append(.reply(connection, response))
        case .putAnswer(let connection, let answer): actions.append(.putAnswer(connection, answer))
        case .sendSlice(let connection, let token, let opaque):
            if let slice = openedSlices.removeValue(forKey: token) { actions.append(.sendFile(connection, slice, opaque: opaque)) }
        case .sendBytes(let connection, let body, let opaque): actions.append(.sendValue(connection, body: body, opaque: opaque))
        case .persistIdReservation(let reservationMs):
            // Before the put that asked for it is appended (it comes next in this batch): a put
            // whose id is not covered by a durable reservation is refused, or a restart could
            // issue its id again.
            do {
                try IdReservationFile.save(reservationMs, storage: storage, dataPath: stores.defaultDataPath)
                feed(.idReservationSaved(reservationMs, succeeded: true), clock, &actions)
            } catch {
                actions.append(.notice(.idReservationNotPersisted("\(error)")))
                feed(.idReservationSaved(reservationMs, succeeded: false), clock, &actions)
                // Set after that feed, which clears it when its own batch ends.
                reservationFailure = "cannot persist the message-id reservation: \(error)"
            }
        case .collectStats(let token, _): actions.append(.collectProcessFacts(token: token))
        case .sendConfigFile(let connection, let opaque):
            actions.append(.reply(connection, ResultResponse(code: StatusCode.success, body: settings.configFile, opaque: opaque)))
        case .close(let connection): actions.append(.close(connection))
        case .journalTransactionPut(let put): journalPut(put, clock, &actions)
        case .transaction(let action):
            performTransaction(action, clock, &actions)
            if case .commit = action { return }
            armTransactionTimer(clock, &actions)
        }
    }

    /// A get: the segment holding the slice is opened now, so one that cannot be opened (removed
    /// under the broker, descriptors exhausted) is a failed read the machine answers with a 500
    /// (reference §1.4.2), not a connection closed without a reply.
    func read(_ token: UInt64, _ partition: TopicPartition, _ offset: Int64, _ maxBytes: Int, _ clock: NodeClock,
              _ actions: inout [Action]) {
        let (read, slice) = stores.read(partition, offset: offset, maxBytes: maxBytes)
        guard let slice else { return feed(.read(token: token, read), clock, &actions) }
        let file: any StorageFile
        do { file = try storage.open(slice.segmentPath, create: false) } catch {
            let detail = "cannot open \(slice.segmentPath): \(error)"
            actions.append(.notice(.segmentUnreadable(detail: detail)))
            return feed(.read(token: token, .failed(detail)), clock, &actions)
        }
        openedSlices[token] = FileSlice(file: file, position: slice.filePosition, count: slice.count)
        feed(.read(token: token, read), clock, &actions)
        // The machine sends the slice while handling the read; one it did not take is closed here.
        if let unsent = openedSlices.removeValue(forKey: token) { try? unsent.file.close() }
    }

    /// Stages the record; it is written at the end of the tick and answered then (threshold
    /// policy) or after the sync that covers it (group commit).
    func append(_ token: UInt64, _ partition: TopicPartition, _ record: BrokerMachine.AppendRecord, _ clock: NodeClock,
                _ actions: inout [Action]) {
        if let reservationFailure { return fail(token, reservationFailure, clock, &actions) }
        do {
            let log = try logForAppend(partition, clock, &actions)
            let outcome = try log.stage(msgId: record.msgId, flag: record.flag, payload: record.payload,
                                        checksum: record.verifiedChecksum, ticket: token)
            observeStaged?(record.msgId)
            if replicas.synchronous {
                // Answered once its copies hold it too; the sync it needs is due at once.
                replicas.recordEnds[token] = outcome.offset + Int64(Record.size(payloadCount: record.payload.count))
                log.requestPromptSync()
            }
            if outcome.acknowledged {
                awaitingWrite.append((token, outcome.offset, partition, log))
            } else if settings.canary == .ackBeforeSync {
                // The canary: a group-commit put answered after the write, before any sync.
                canaryEarlyAcks += 1
                awaitingWrite.append((token, outcome.offset, partition, log))
            } else {
                awaitingSync[token] = outcome.offset
            }
            markDirty(partition, log)
        } catch {
            guard let log = stores.log(partition), let failure = log.failure else {
                return feed(.appended(token: token, .failure(.init("\(error)"))), clock, &actions)
            }
            // The log failed under this append (a roll's write or sync): the machine learns it
            // first, so this answer and every later one say the partition is out of service.
            abandon(partition, log, clock, &actions)
            feed(.appended(token: token, .failure(.init(failure.description))), clock, &actions)
            markDirty(partition, log)
        }
    }

    /// The log of `partition`, created on the first put (a topic's first partition on this
    /// broker is registered, §3.2; a new `deleteWhen` schedule gets its timer).
    func logForAppend(_ partition: TopicPartition, _ clock: NodeClock, _ actions: inout [Action]) throws(StoresError) -> PartitionLog {
        if let last = lastLog, last.partition == partition { return last.log }
        if let existing = stores.log(partition) {
            lastLog = (partition, existing)
            return existing
        }
        let newTopic = !stores.partitions.contains { $0.topic == partition.topic }
        let log = try stores.logCreatingIfNeeded(partition, now: clock.now)
        lastLog = (partition, log)
        // Slaves waiting to hear of new partitions hear of this one now, and may fetch it (a
        // synchronous put's answer, which tells the machine the partition has data, waits for them).
        if !replicas.parkedHellos.isEmpty || replicas.synchronous {
            machine.partitionHasData(partition)
            releaseHellos(clock, &actions)
        }
        if newTopic {
            actions.append(.registerTopic(registration(of: partition.topic)))
            armRetentionTimer(for: partition.topic, clock, &actions)
        }
        return log
    }

    func markDirty(_ partition: TopicPartition, _ log: PartitionLog) {
        if !dirtyLogs.contains(where: { $0.log === log }) { dirtyLogs.append((partition, log)) }
    }

    /// The end of a tick: each touched log written once, the puts that needed only the write
    /// answered, due syncs started (or their deadline armed), then every connection flushed.
    func endOfTick(_ clock: NodeClock, _ actions: inout [Action]) {
        answerDurable(clock, &actions)
        // The redo-log entries staged this tick, before any partition write (with
        // `flushTxLogAtCommit` 0 or 2 a commit's batch is released in the same tick).
        writeJournal(clock, &actions)
        while !dirtyLogs.isEmpty || !awaitingWrite.isEmpty {
            // Swapped with spare buffers rather than copied: a copy would make the next append
            // allocate a new buffer (copy on write) every tick.
            var logs: [(partition: TopicPartition, log: PartitionLog)] = []
            swap(&logs, &spareDirtyLogs)
            swap(&logs, &dirtyLogs)
            for (partition, log) in logs {
                if log.stagedByteCount > 0 && !log.hasWritesAwaitingNextSync { unsyncedSince[partition] = clock.now }
                do { try log.flushWrites() } catch { reportFailure(partition, log, clock, &actions) }
            }
            var written: [(token: UInt64, offset: Int64, partition: TopicPartition, log: PartitionLog)] = []
            swap(&written, &spareAwaitingWrite)
            swap(&written, &awaitingWrite)
            for (token, offset, partition, log) in written {
                if let failure = log.failure {
                    fail(token, failure.description, clock, &actions)
                } else if log.isHoldingWrites {
                    // Staged behind a commit whose entry is not durable yet: not written.
                    awaitingRelease.append((token, offset, partition, log))
                } else {
                    acknowledge(token, offset: offset, partition: partition, clock, &actions)
                }
            }
            for (partition, log) in logs {
                if log.isFailed { abandon(partition, log, clock, &actions) } else { scheduleSync(partition, clock, &actions) }
            }
            written.removeAll(keepingCapacity: true)
            swap(&written, &spareAwaitingWrite)
            logs.removeAll(keepingCapacity: true)
            swap(&logs, &spareDirtyLogs)
        }
        scheduleJournalSync(clock, &actions)
        actions.append(.flush)
    }

    /// Answers the puts finished syncs made durable.
    func answerDurable(_ clock: NodeClock, _ actions: inout [Action]) {
        while !durable.isEmpty {
            var batches: [(partition: TopicPartition, tickets: [UInt64])] = []
            swap(&batches, &durable)
            for (partition, tickets) in batches {
                for ticket in tickets {
                    if Self.isCommitToken(ticket) {
                        commitBatchStored(ticket, clock, &actions)
                        continue
                    }
                    guard let offset = awaitingSync.removeValue(forKey: ticket) else {
                        if settings.canary != .ackBeforeSync { violated("a sync of \(partition) acknowledged an unknown put \(ticket)") }
                        continue
                    }
                    acknowledge(ticket, offset: offset, partition: partition, clock, &actions)
                }
            }
        }
    }

    /// Answers one put as stored at `offset` of `partition`.
    func acknowledge(_ token: UInt64, offset: Int64, partition: TopicPartition, _ clock: NodeClock, _ actions: inout [Action]) {
        if Self.isCommitToken(token) { return commitBatchStored(token, clock, &actions) }
        if !machine.failedPartitions.isEmpty && machine.failedPartitions[partition] != nil {
            violated("a put to \(partition) was acknowledged after its log failed")
        }
        if replicas.synchronous, awaitReplication(token, offset: offset, partition: partition, clock, &actions) { return }
        feed(.appended(token: token, .success(offset)), clock, &actions)
    }

    /// Answers one put with the failure that keeps it from being stored.
    func fail(_ token: UInt64, _ cause: String, _ clock: NodeClock, _ actions: inout [Action]) {
        if Self.isCommitToken(token) { return commitBatchFailed(token, cause, clock, &actions) }
        if replicas.synchronous { replicas.recordEnds[token] = nil }
        feed(.appended(token: token, .failure(.init(cause))), clock, &actions)
    }

    /// Answers the group-commit puts of a failed log with its cause.
    func abandon(_ partition: TopicPartition, _ log: PartitionLog, _ clock: NodeClock, _ actions: inout [Action]) {
        reportFailure(partition, log, clock, &actions)
        answerAbandoned(log.abandonPendingAppends(), of: partition, log, clock, &actions)
    }

    func answerAbandoned(_ tickets: [UInt64], of partition: TopicPartition, _ log: PartitionLog, _ clock: NodeClock,
                         _ actions: inout [Action]) {
        if settings.canary == .forgetFailedLogPuts { return }
        let cause = log.failure?.description ?? "log failed: \(log.directory)"
        for ticket in tickets {
            if Self.isCommitToken(ticket) {
                commitBatchFailed(ticket, cause, clock, &actions)
                continue
            }
            guard let offset = awaitingSync.removeValue(forKey: ticket) else {
                if settings.canary != .ackBeforeSync { violated("the log of \(log.directory) abandoned an unknown put \(ticket)") }
                continue
            }
            if settings.canary == .acknowledgeFailedLogPuts {
                acknowledge(ticket, offset: offset, partition: partition, clock, &actions)
            } else {
                fail(ticket, cause, clock, &actions)
            }
        }
    }

    /// Tells the machine once that the partition's log failed: from then on it answers every put
    /// to the partition itself, refusing writes until the broker restarts (DESIGN.md §4).
    func reportFailure(_ partition: TopicPartition, _ log: PartitionLog, _ clock: NodeClock, _ actions: inout [Action]) {
        guard let failure = log.failure, machine.failedPartitions[partition] == nil else { return }
        actions.append(.notice(.partitionFailed(partition, failure)))
        feed(.partitionFailed(partition, cause: failure.description), clock, &actions)
    }
}
