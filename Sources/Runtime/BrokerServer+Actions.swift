import Glibc
import NIOCore
import NIOPosix
import ProtocolCore
import StoreCore

/// Carrying out the broker machine's actions against the stores and the sockets.
extension BrokerServer {
    func perform(_ action: BrokerMachine.Action) {
        switch action {
        case .append(let token, let partition, let record): append(token, partition, record)
        case .read(let token, let partition, let offset, let maxBytes):
            let (read, slice) = stores.read(partition, offset: offset, maxBytes: maxBytes)
            guard let slice else { return handle(.read(token: token, read)) }
            readSlice(slice, token: token, read: read)
        case .readBytes(let token, let partition, let offset, let maxBytes):
            handle(.read(token: token, stores.readBytes(partition, offset: offset, maxBytes: maxBytes)))
        case .nearestOffset(let token, let partition, let offset):
            handle(.nearestOffset(token: token, stores.log(partition)?.nearestOffset(offset) ?? 0))
        case .reply(let connection, let response): reply(response, to: connection)
        case .putAnswer(let connection, let answer): reply(answer, to: connection)
        case .sendSlice(let connection, let token, let opaque):
            if let opened = slices.removeValue(forKey: token) { send(opened, opaque: opaque, to: connection) }
        case .sendBytes(let connection, let body, let opaque):
            var bytes: [UInt8] = []
            bytes.reserveCapacity(32 + body.count)
            ValueResponse.appendHeader(to: &bytes, bodyLength: body.count, opaque: opaque)
            bytes.append(contentsOf: body)
            write(bytes, to: connection)
        case .persistIdReservation(let reservationMs):
            do { try IdReservationFile.save(reservationMs, storage: storage, dataPath: stores.defaultDataPath) } catch {
                logger.critical("cannot persist the message-id reservation", metadata: ["error": "\(error)"])
            }
        case .collectStats(let token, _): handle(.statsCollected(token: token, snapshot()))
        case .sendConfigFile(let connection, let opaque): sendConfig(opaque: opaque, to: connection)
        case .close(let id):
            guard let connection = connections[id] else { return }
            flush(connection)
            connection.channel.close(promise: nil)
        }
    }

    /// Stages the record; it is written at the end of the tick and answered then (threshold
    /// policy) or after the sync that covers it (group commit).
    func append(_ token: UInt64, _ partition: TopicPartition, _ record: BrokerMachine.AppendRecord) {
        do {
            let log: PartitionLog
            if let last = lastLog, last.partition == partition {
                log = last.log
            } else if let existing = stores.log(partition) {
                log = existing
                lastLog = (partition, log)
            } else {
                let newTopic = !stores.partitions.contains { $0.topic == partition.topic }
                log = try stores.logCreatingIfNeeded(partition, now: Clocks.monotonic())
                lastLog = (partition, log)
                if newTopic { onTopicCreated?(partition.topic) }
            }
            let outcome = try log.stage(msgId: record.msgId, flag: record.flag, payload: record.payload,
                                    checksum: record.verifiedChecksum, ticket: token)
            if outcome.acknowledged {
                awaitingWrite.append((token, outcome.offset, log))
            } else {
                awaitingSync[token] = outcome.offset
            }
            if !dirtyLogs.contains(where: { $0.log === log }) { dirtyLogs.append((partition, log)) }
        } catch {
            guard let log = stores.log(partition), let failure = log.failure else {
                return handle(.appended(token: token, .failure(.init("\(error)"))))
            }
            // The log failed under this append (a roll's write or sync): the machine learns it
            // first, so this answer and every later one say the partition is out of service.
            reportFailure(partition, log)
            handle(.appended(token: token, .failure(.init(failure.description))))
            if !dirtyLogs.contains(where: { $0.log === log }) { dirtyLogs.append((partition, log)) }
        }
    }

    /// Writes each touched log once, answers the appends that needed only the write, starts the
    /// syncs that are due, and flushes every connection that has replies.
    func endOfTick() {
        endOfTickScheduled = false
        while !dirtyLogs.isEmpty || !awaitingWrite.isEmpty {
            let logs = dirtyLogs
            dirtyLogs.removeAll(keepingCapacity: true)
            for (partition, log) in logs {
                if log.stagedByteCount > 0 && !log.hasWritesAwaitingNextSync { unsyncedSince[partition] = Clocks.monotonic() }
                do { try log.flushWrites() } catch { reportFailure(partition, log) }
            }
            let written = awaitingWrite
            awaitingWrite.removeAll(keepingCapacity: true)
            for (token, offset, log) in written {
                handle(.appended(token: token, log.failure.map { .failure(.init($0.description)) } ?? .success(offset)))
            }
            for (partition, log) in logs {
                if log.isFailed { abandon(partition, log) } else { scheduleSync(partition) }
            }
        }
        let touched = dirtyConnections
        dirtyConnections.removeAll(keepingCapacity: true)
        for connection in touched { flush(connection) }
    }

    /// Answers the group-commit appends of a failed log with its cause.
    func abandon(_ partition: TopicPartition, _ log: PartitionLog) {
        reportFailure(partition, log)
        let cause = log.failure?.description ?? "log failed: \(log.directory)"
        for ticket in log.abandonPendingAppends() where awaitingSync.removeValue(forKey: ticket) != nil {
            handle(.appended(token: ticket, .failure(.init(cause))))
        }
    }

    /// Logs a failed log once and tells the machine, which from then on answers every put to the
    /// partition itself: it refuses writes until the broker restarts (DESIGN.md §4).
    func reportFailure(_ partition: TopicPartition, _ log: PartitionLog) {
        guard let failure = log.failure, machine.failedPartitions[partition] == nil else { return }
        logger.critical("\(failure.operation.rawValue) failed: the partition refuses writes until the broker is restarted",
                        metadata: ["partition": "\(partition)", "error": "\(failure.error)"])
        handle(.partitionFailed(partition, cause: failure.description))
    }

    /// Starts a sync when the flush policy says one is due, or arms a timer for its deadline.
    /// One sync per partition at a time; appends arriving meanwhile ride the next one.
    func scheduleSync(_ partition: TopicPartition) {
        guard !isStopping, let log = stores.log(partition), !syncing.contains(partition) else { return }
        let now = Clocks.monotonic()
        if log.syncDue(now: now) {
            guard let batch = log.beginSync() else {
                if log.isFailed { abandon(partition, log) }
                return
            }
            syncing.insert(partition)
            let begun = SyncWork(batch: batch, begunAt: now, firstWriteAt: unsyncedSince.removeValue(forKey: partition) ?? now)
            syncQueue(for: partition).async {
                var work = begun
                work.startedAt = Clocks.monotonic()
                let result = Result { try work.batch.perform() }
                work.endedAt = Clocks.monotonic()
                self.loop.execute { [work] in self.finishSync(partition, work, result) }
            }
        } else if let deadline = log.nextSyncDeadline(), !timerArmed.contains(partition) {
            timerArmed.insert(partition)
            let delay = max(0, deadline.nanoseconds - now.nanoseconds)
            loop.scheduleTask(in: .nanoseconds(delay)) {
                self.timerArmed.remove(partition)
                self.scheduleSync(partition)
                self.scheduleEndOfTick()
            }
        }
    }

    /// A sync finished: the next one starts at once (appends staged while this one ran are
    /// already written), then the appends this one made durable are answered and flushed in the
    /// same task — not in a later end-of-tick behind the next round of reads.
    func finishSync(_ partition: TopicPartition, _ work: SyncWork, _ result: Result<Void, any Error>) {
        let arrived = Clocks.monotonic()
        syncing.remove(partition)
        guard let log = stores.log(partition) else { return scheduleEndOfTick() }
        var answered = 0
        var failed = false
        switch result {
        case .success:
            if let postponed = syncPostponedEpisode.succeeded() {
                logger.info("syncs run again", metadata: ["postponed": "\(postponed)"])
            }
            let tickets = log.completeSync(work.batch, now: arrived)
            scheduleSync(partition)
            for ticket in tickets {
                if let offset = awaitingSync.removeValue(forKey: ticket) { handle(.appended(token: ticket, .success(offset))) }
            }
            answered = tickets.count
        case .failure(let error as StorageError) where error.isRetryable:
            // Out of descriptors: the sync did nothing, its appends wait for the next one, which
            // the log makes due a little later (its deadline arms the timer at the end of the tick).
            log.postponeSync(work.batch, error: error, now: arrived)
            if syncPostponedEpisode.refused() {
                logger.warning("a sync could not start, retrying every \(PartitionLog.syncRetryDelayMs) ms",
                               metadata: ["partition": "\(partition)", "error": "\(error)"])
            }
        case .failure(let error):
            let storageError = (error as? StorageError) ?? .io(path: log.directory, detail: "\(error)")
            failed = true
            let tickets = log.failSync(work.batch, error: storageError)
            reportFailure(partition, log)
            let cause = log.failure?.description ?? "sync failed: \(storageError)"
            for ticket in tickets {
                awaitingSync[ticket] = nil
                handle(.appended(token: ticket, .failure(.init(cause))))
            }
        }
        // Anything still staged is written by the end of the tick, then synced. With answers
        // to send (group commit) that tick runs now; otherwise (threshold policy) it is the
        // usual end of this loop tick, so connections are not flushed more often than needed.
        if !dirtyLogs.contains(where: { $0.log === log }) { dirtyLogs.append((partition, log)) }
        if answered > 0 || failed { endOfTick() } else { scheduleEndOfTick() }
        record(work, partition: partition, arrived: arrived, answered: answered)
    }

    /// Adds a finished sync to `syncStats`; warns about a very slow `fdatasync`.
    func record(_ work: SyncWork, partition: TopicPartition, arrived: Instant, answered: Int) {
        let flushed = Clocks.monotonic()
        syncStats.waitForSync.record(from: work.firstWriteAt, to: work.begunAt)
        syncStats.handOff.record(from: work.begunAt, to: work.startedAt)
        syncStats.fsync.record(from: work.startedAt, to: work.endedAt)
        syncStats.handBack.record(from: work.endedAt, to: arrived)
        if answered > 0 {
            syncStats.answer.record(from: arrived, to: flushed)
            syncStats.batch.record(from: work.firstWriteAt, to: flushed, times: UInt64(answered))
        }
        let took = work.endedAt.nanoseconds - work.startedAt.nanoseconds
        if took > SyncCycleStats.slowSyncWarningNanoseconds {
            logger.warning("slow fdatasync", metadata: ["partition": "\(partition)", "ms": "\(took / 1_000_000)"])
        }
    }

    /// Buffers a reply; the connection is flushed at the end of the tick.
    func reply(_ response: ResultResponse, to id: ConnectionID) {
        guard let connection = connections[id] else { return }
        // `result <code> <length> <opaque>␍␊` (§1.2) straight into the connection's buffer.
        connection.out.writeWithUnsafeMutableBytes(minimumWritableBytes: ResultResponse.maxHeaderBytes) { raw in
            ResultResponse.writeHeader(to: raw.baseAddress!, code: response.code, bodyLength: response.body.count,
                                       opaque: response.opaque)
        }
        connection.out.writeBytes(response.body)
        markDirty(connection)
    }

    /// `result 200 <length> <opaque>␍␊<msgId> <partition> <offset>` encoded from the numbers
    /// straight into the connection's buffer (the hot path of every put).
    func reply(_ answer: BrokerMachine.PutAnswer, to id: ConnectionID) {
        guard let connection = connections[id] else { return }
        connection.out.writeWithUnsafeMutableBytes(
            minimumWritableBytes: ResultResponse.maxHeaderBytes + BrokerMachine.PutAnswer.maxBodyBytes
        ) { raw in
            // The body is written after the longest possible header, then the header in front of
            // it once the body's length is known, and the body moved up against it.
            let base = raw.baseAddress!
            let bodyStart = base + ResultResponse.maxHeaderBytes
            let bodyLength = answer.writeBody(to: bodyStart)
            let headerLength = ResultResponse.writeHeader(to: base, code: StatusCode.success, bodyLength: bodyLength,
                                                          opaque: answer.opaque)
            (base + headerLength).copyMemory(from: bodyStart, byteCount: bodyLength)
            return headerLength + bodyLength
        }
        markDirty(connection)
    }

    func write(_ bytes: [UInt8], to id: ConnectionID) {
        guard let connection = connections[id] else { return }
        connection.out.writeBytes(bytes)
        markDirty(connection)
    }

    func markDirty(_ connection: Connection) {
        guard !connection.isDirty else { return }
        connection.isDirty = true
        dirtyConnections.append(connection)
        scheduleEndOfTick()
    }

    /// Hands buffered replies to the channel (keeping their order with sendfile regions) and flushes.
    func flush(_ connection: Connection) {
        connection.isDirty = false
        guard connection.isOpen else { return }
        moveOutToChannel(connection)
        connection.channel.flush()
    }

    func moveOutToChannel(_ connection: Connection) {
        guard connection.out.readableBytes > 0 else { return }
        let buffer = connection.out
        connection.out = connection.channel.allocator.buffer(capacity: 4096)
        connection.channel.write(buffer, promise: nil)
    }

    /// Opens the slice's segment for sendfile while the read is performed, so a segment that
    /// cannot be opened (removed under the broker, descriptors exhausted) is a failed read the
    /// machine answers with a 500 (reference §1.4.2), not a connection closed without a reply.
    func readSlice(_ slice: LogSlice, token: UInt64, read: PartitionRead) {
        let fd = Glibc.open(slice.segmentPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let detail = "cannot open \(slice.segmentPath): \(String(cString: strerror(errno)))"
            logger.error("a get failed: cannot open its segment", metadata: ["detail": "\(detail)"])
            return handle(.read(token: token, .failed(detail)))
        }
        slices[token] = OpenedSlice(slice: slice, file: NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd))
        handle(.read(token: token, read))
        // The machine sends the slice while handling the read; one it did not take is closed here.
        if let unsent = slices.removeValue(forKey: token) { try? unsent.file.close() }
    }

    /// `value <n> <opaque>␍␊` and then the bytes straight from the segment file (sendfile).
    func send(_ opened: OpenedSlice, opaque: Int32, to id: ConnectionID) {
        let handle = opened.file
        guard let connection = connections[id] else {
            try? handle.close()
            return
        }
        let slice = opened.slice
        var header: [UInt8] = []
        ValueResponse.appendHeader(to: &header, bodyLength: slice.count, opaque: opaque)
        let region = FileRegion(fileHandle: handle, readerIndex: Int(slice.filePosition),
                                endIndex: Int(slice.filePosition) + slice.count)
        connection.out.writeBytes(header)
        moveOutToChannel(connection)
        let promise = connection.channel.eventLoop.makePromise(of: Void.self)
        promise.futureResult.assumeIsolated().whenComplete { _ in try? handle.close() }
        connection.channel.write(region, promise: promise)
        markDirty(connection)
    }

    func sendConfig(opaque: Int32, to connection: ConnectionID) {
        let bytes = (try? ConfigFile.read(configPath)) ?? []
        var out: [UInt8] = []
        ResultResponse.appendHeader(to: &out, code: StatusCode.success, bodyLength: bytes.count, opaque: opaque)
        write(out + bytes, to: connection)
    }

    func snapshot() -> StatsSnapshot {
        stores.statsSnapshot(pid: Int(getpid()), uptimeSeconds: Clocks.monotonic().milliseconds(since: startedAt) / 1000,
                             threads: Self.threadCount(), currentConnections: connections.count, configChecksum: configChecksum)
    }
}

extension BrokerServer {
    /// The process's thread count from `/proc/self/status` (`Threads:` line), 0 if unreadable.
    static func threadCount() -> Int {
        let fd = Glibc.open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { Glibc.close(fd) }
        var bytes = [UInt8](repeating: 0, count: 8192)
        let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return 0 }
        let text = String(decoding: bytes[0..<n], as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.hasPrefix("Threads:") }
        return line.flatMap { Int($0.dropFirst("Threads:".count).trimmingPrefix(while: { $0 == " " || $0 == "\t" })) } ?? 0
    }
}
