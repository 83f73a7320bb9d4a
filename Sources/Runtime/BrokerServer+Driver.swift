import BrokerCore
import Glibc
import NIOCore
import NIOPosix
import ProtocolCore
import StoreCore

/// Carrying out the node's actions on sockets, sync threads and timers.
extension BrokerServer {
    /// Borrowed, not copied: every put's answer passes through here.
    func perform(_ action: borrowing BrokerNode.Action) {
        switch action {
        case .reply(let connection, let response): reply(response, to: connection)
        case .putAnswer(let connection, let answer): reply(answer, to: connection)
        case .sendValue(let connection, let body, let opaque):
            trafficBytesOut &+= Int64(body.count)
            var bytes: [UInt8] = []
            bytes.reserveCapacity(32 + body.count)
            ValueResponse.appendHeader(to: &bytes, bodyLength: body.count, opaque: opaque)
            bytes.append(contentsOf: body)
            write(bytes, to: connection)
        case .sendFile(let connection, let slice, let opaque):
            trafficBytesOut &+= Int64(slice.count)
            send(slice, opaque: opaque, to: connection)
        case .flush:
            // Swapped with a spare buffer, not copied (a copy makes the next append reallocate).
            var touched: [Connection] = []
            swap(&touched, &spareConnections)
            swap(&touched, &dirtyConnections)
            for connection in touched { flush(connection) }
            touched.removeAll(keepingCapacity: true)
            swap(&touched, &spareConnections)
            dispatchWrites()
            logViolations()
        case .close(let id):
            guard let connection = connections[id] else { return }
            flush(connection, thenClose: true)
            dispatchWrites()
        case .startSync(let job): startSync(job)
        case .startJournalSync(let job):
            // Handed to the data directory's sync thread and back, like a partition's sync.
            let work = SyncWork(batch: job.batch, begunAt: Clocks.monotonic(), firstWriteAt: Clocks.monotonic())
            syncThreads.run(in: job.dataPath) {
                self.post(.journal(id: work.batch.id, work.batch.performed()))
            }
        case .endTickNow:
            if deferringEndOfTick { endOfTickRequested = true } else { handle(.tickEnded) }
        case .armTimer(let timer, let at):
            let delay = max(0, at.nanoseconds - Clocks.monotonic().nanoseconds)
            loop.scheduleTask(in: .nanoseconds(delay)) {
                if case .retention = timer { self.utcOffsetSeconds = Self.currentUTCOffsetSeconds() }
                self.handle(.timerFired(timer))
            }
        case .collectProcessFacts(let token):
            handle(.processFacts(token: token, ProcessFacts(pid: Int(getpid()), threads: Self.threadCount())))
        case .registerTopic(let topic): onRegisterTopic?(topic)
        case .syncAnswered(let partition, let count):
            if let work = syncWork.removeValue(forKey: partition) { record(work, partition: partition, answered: count) }
        case .notice(let notice): log(notice)
        case .stopped(let report):
            closeMasterLinks()
            stopped?.succeed(report)
            stopped = nil
        case .connectToMaster(let link, let uri): openMasterLink(link, uri: uri)
        case .sendToMaster(let link, let frame): masterLinks[link]?.channel?.send(frame)
        case .closeMasterLink(let link): masterLinks.removeValue(forKey: link)?.channel?.close()
        case .publishInSync, .promote, .logsConsistent:
            if let event = ElectionDriver.electionEvent(for: action) { onElectionEvent?(event) }
        case .reloadConfig(let connection, let opaque): reloadOnLoop(replyTo: (connection, opaque))
        }
    }

    /// Logs the node's invariant violations not logged yet (checked once per tick).
    func logViolations() {
        guard violationsLogged < node.violations.count else { return }
        for violation in node.violations[violationsLogged...] { logger.critical("broker invariant violated: \(violation)") }
        violationsLogged = node.violations.count
    }

    /// Runs the sync's fdatasync on its data directory's thread; the result goes back to the node.
    func startSync(_ job: SyncJob) {
        let partition = job.partition
        let begun = SyncWork(batch: job.batch, begunAt: job.begunAt, firstWriteAt: job.firstWriteAt)
        syncThreads.run(in: job.dataPath) {
            var work = begun
            work.startedAt = Clocks.monotonic()
            let result = work.batch.performed()
            work.endedAt = Clocks.monotonic()
            self.post(.partition(partition, work, result))
        }
    }

    /// A sync thread's result: into the inbox, and a drain on the loop if none is pending.
    func post(_ completion: SyncInbox.Completion) {
        guard syncInbox.post(completion) else { return }
        loop.execute { self.drainSyncInbox() }
    }

    /// Feeds the node every sync that ended since the last drain, then ends the tick once if any
    /// of them asked for it (`.endTickNow`): the answers they release go out in one flush.
    func drainSyncInbox() {
        let completions = syncInbox.take()
        deferringEndOfTick = true
        let arrivedAt = Clocks.monotonic()
        for completion in completions {
            switch completion {
            case .partition(let partition, var work, let result):
                work.arrivedAt = arrivedAt
                syncWork[partition] = work
                handle(.syncFinished(partition, id: work.batch.id, result))
            case .journal(let id, let result):
                handle(.journalSyncFinished(id: id, result))
            }
        }
        deferringEndOfTick = false
        if endOfTickRequested {
            endOfTickRequested = false
            handle(.tickEnded)
        }
    }

    func log(_ notice: BrokerNotice) {
        switch notice.level {
        case .info: logger.info("\(notice)")
        case .warning: logger.warning("\(notice)")
        case .error: logger.error("\(notice)")
        case .critical: logger.critical("\(notice)")
        }
    }

    /// Adds a finished sync to `syncStats`; warns about a very slow `fdatasync`.
    func record(_ work: SyncWork, partition: TopicPartition, answered: Int) {
        let flushed = Clocks.monotonic()
        syncStats.waitForSync.record(from: work.firstWriteAt, to: work.begunAt)
        syncStats.handOff.record(from: work.begunAt, to: work.startedAt)
        syncStats.fsync.record(from: work.startedAt, to: work.endedAt)
        syncStats.handBack.record(from: work.endedAt, to: work.arrivedAt)
        if answered > 0 {
            syncStats.answer.record(from: work.arrivedAt, to: flushed)
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
        sealAnswers(connection)
        // `result <code> <length> <opaque>␍␊` (§1.2) straight into the connection's buffer.
        connection.out.writeWithUnsafeMutableBytes(minimumWritableBytes: ResultResponse.maxHeaderBytes) { raw in
            ResultResponse.writeHeader(to: raw.baseAddress!, code: response.code, bodyLength: response.body.count,
                                       opaque: response.opaque)
        }
        connection.out.writeBytes(response.body)
        markDirty(connection)
    }

    /// A put's answer (the hot path of every put): kept as numbers and encoded on the
    /// connection's loop (`ConnectionLoop.encode`), after whatever was buffered before it.
    func reply(_ answer: BrokerMachine.PutAnswer, to id: ConnectionID) {
        guard let connection = connections[id] else { return }
        connection.answers.append(answer)
        markDirty(connection)
    }

    /// Keeps the order of a connection's answers: bytes buffered in `out` go before the put
    /// answers collected since, and those before anything buffered after them.
    func sealAnswers(_ connection: Connection) {
        guard !connection.answers.isEmpty else { return }
        moveOutToChannel(connection)
        connection.pending.append(.answers(connection.answers))
        connection.answers.removeAll(keepingCapacity: true)
    }

    func write(_ bytes: [UInt8], to id: ConnectionID) {
        guard let connection = connections[id] else { return }
        sealAnswers(connection)
        connection.out.writeBytes(bytes)
        markDirty(connection)
    }

    func markDirty(_ connection: Connection) {
        guard !connection.isDirty else { return }
        connection.isDirty = true
        dirtyConnections.append(connection)
        scheduleEndOfTick()
    }

    /// Moves a connection's buffered replies to its connection loop's outbox (keeping their
    /// order with sendfile regions), and with `thenClose` the close after them; `dispatchWrites`
    /// hands them over.
    func flush(_ connection: Connection, thenClose: Bool = false) {
        connection.isDirty = false
        guard connection.isOpen else { return }
        moveOutToChannel(connection)
        sealAnswers(connection)
        if thenClose {
            connection.pending.append(.close)
            connection.isOpen = false
        }
        guard !connection.pending.isEmpty else { return }
        outboxes[connection.handler.home.index].append((connection.channel, connection.pending))
        connection.pending = []
    }

    func moveOutToChannel(_ connection: Connection) {
        guard connection.out.readableBytes > 0 else { return }
        let buffer = connection.out
        // The next buffer starts as large as this one had to grow (a pipelining producer's tick
        // of answers is ~20 KB): growing from 4 KiB again would copy it three times per tick.
        let capacity = min(max(4096, buffer.readableBytes), 1 << 20)
        connection.out = connection.channel.allocator.buffer(capacity: capacity)
        connection.pending.append(.bytes(buffer))
    }

    /// Hands each connection loop the writes collected for it: one task per loop per flush (run
    /// in place when the connections share the node's loop).
    func dispatchWrites() {
        for index in outboxes.indices where !outboxes[index].isEmpty {
            let home = connectionLoops[index]
            if home.loop.inEventLoop {
                // Written before the outbox is emptied, so it keeps its storage (no allocation).
                ConnectionLoop.write(ConnectionLoop.Writes(connections: outboxes[index]))
                outboxes[index].removeAll(keepingCapacity: true)
            } else {
                let writes = ConnectionLoop.Writes(connections: outboxes[index])
                outboxes[index] = []
                home.loop.execute { ConnectionLoop.write(writes) }
            }
        }
    }

    /// `value <n> <opaque>␍␊` and then the bytes straight from the segment file (sendfile). The
    /// node opened the file; its descriptor goes to the region, which closes it once sent.
    func send(_ slice: FileSlice, opaque: Int32, to id: ConnectionID) {
        guard let connection = connections[id], let file = slice.file as? RealFile, let fd = file.takeDescriptor() else {
            try? slice.file.close()
            return
        }
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
        var header: [UInt8] = []
        ValueResponse.appendHeader(to: &header, bodyLength: slice.count, opaque: opaque)
        let region = FileRegion(fileHandle: handle, readerIndex: Int(slice.position), endIndex: Int(slice.position) + slice.count)
        sealAnswers(connection)
        connection.out.writeBytes(header)
        moveOutToChannel(connection)
        connection.pending.append(.file(region, handle))
        markDirty(connection)
    }
}

extension BrokerServer {
    /// The local time zone's offset from UTC now (Quartz evaluates cron in local time).
    static func currentUTCOffsetSeconds() -> Int64 {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        return Int64(parts.tm_gmtoff)
    }

    /// The process's thread count (`ProcFiles.threadCount`).
    static func threadCount() -> Int { ProcFiles.threadCount() }
}
