import Glibc
import NIOCore
import NIOPosix
import ProtocolCore
import StoreCore

/// Carrying out the broker machine's actions against the stores and the sockets.
extension BrokerServer {
    func perform(_ action: BrokerMachine.Action) {
        switch action {
        case .append(let token, let partition, let records): append(token, partition, records)
        case .read(let token, let partition, let offset, let maxBytes):
            let (read, slice) = stores.read(partition, offset: offset, maxBytes: maxBytes)
            if let slice { slices[token] = slice }
            handle(.read(token: token, read))
        case .nearestOffset(let token, let partition, let offset):
            handle(.nearestOffset(token: token, stores.log(partition)?.nearestOffset(offset) ?? 0))
        case .reply(let connection, let response): write(Frame.result(response).encoded(), to: connection)
        case .sendSlice(let connection, let token, let opaque):
            if let slice = slices.removeValue(forKey: token) { send(slice, opaque: opaque, to: connection) }
        case .persistIdReservation(let reservationMs):
            do { try IdReservationFile.save(reservationMs, storage: storage, dataPath: stores.defaultDataPath) } catch {
                logger.critical("cannot persist the message-id reservation", metadata: ["error": "\(error)"])
            }
        case .collectStats(let token, _): handle(.statsCollected(token: token, snapshot()))
        case .sendConfigFile(let connection, let opaque): sendConfig(opaque: opaque, to: connection)
        case .close(let connection): channels[connection]?.close(promise: nil)
        }
    }

    func append(_ token: UInt64, _ partition: TopicPartition, _ records: [UInt8]) {
        let now = Clocks.monotonic()
        do {
            let log = try stores.logCreatingIfNeeded(partition, now: now)
            let outcome = try log.append(records: records, ticket: token, now: now)
            if outcome.acknowledged {
                handle(.appended(token: token, .success(outcome.offset)))
            } else {
                awaitingSync[token] = outcome.offset
            }
            scheduleSync(partition)
        } catch {
            handle(.appended(token: token, .failure(.init("\(error)"))))
        }
    }

    /// Starts a sync when the flush policy says one is due, or arms a timer for its deadline.
    /// One sync per partition at a time; appends arriving meanwhile ride the next one.
    func scheduleSync(_ partition: TopicPartition) {
        guard let log = stores.log(partition), !syncing.contains(partition) else { return }
        let now = Clocks.monotonic()
        if log.syncDue(now: now), let batch = log.beginSync() {
            syncing.insert(partition)
            let work = SyncWork(batch: batch)
            syncQueue.async {
                let result = Result { try work.batch.perform() }
                self.loop.execute { self.finishSync(partition, work.batch, result) }
            }
        } else if let deadline = log.nextSyncDeadline(), !timerArmed.contains(partition) {
            timerArmed.insert(partition)
            let delay = max(0, deadline.nanoseconds - now.nanoseconds)
            loop.scheduleTask(in: .nanoseconds(delay)) {
                self.timerArmed.remove(partition)
                self.scheduleSync(partition)
            }
        }
    }

    func finishSync(_ partition: TopicPartition, _ batch: SyncBatch, _ result: Result<Void, any Error>) {
        syncing.remove(partition)
        guard let log = stores.log(partition) else { return }
        switch result {
        case .success:
            for ticket in log.completeSync(batch, now: Clocks.monotonic()) {
                if let offset = awaitingSync.removeValue(forKey: ticket) { handle(.appended(token: ticket, .success(offset))) }
            }
        case .failure(let error):
            let storageError = (error as? StorageError) ?? .io(path: log.directory, detail: "\(error)")
            logger.critical("fdatasync failed: the partition refuses writes until restarted",
                            metadata: ["partition": "\(partition)", "error": "\(storageError)"])
            for ticket in log.failSync(batch, error: storageError) {
                awaitingSync[ticket] = nil
                handle(.appended(token: ticket, .failure(.init("sync failed: \(storageError)"))))
            }
        }
        scheduleSync(partition)
    }

    func write(_ bytes: [UInt8], to connection: ConnectionID) {
        guard let channel = channels[connection] else { return }
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        channel.writeAndFlush(buffer, promise: nil)
    }

    /// `value <n> <opaque>␍␊` and then the bytes straight from the segment file (sendfile).
    func send(_ slice: LogSlice, opaque: Int32, to connection: ConnectionID) {
        guard let channel = channels[connection] else { return }
        var header: [UInt8] = []
        ValueResponse.appendHeader(to: &header, bodyLength: slice.count, opaque: opaque)
        let fd = Glibc.open(slice.segmentPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            logger.error("cannot open segment for a get", metadata: ["path": "\(slice.segmentPath)", "errno": "\(errno)"])
            channel.close(promise: nil)
            return
        }
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
        let region = FileRegion(fileHandle: handle, readerIndex: Int(slice.filePosition),
                                endIndex: Int(slice.filePosition) + slice.count)
        var buffer = channel.allocator.buffer(capacity: header.count)
        buffer.writeBytes(header)
        channel.write(buffer, promise: nil)
        let promise = channel.eventLoop.makePromise(of: Void.self)
        promise.futureResult.assumeIsolated().whenComplete { _ in try? handle.close() }
        channel.writeAndFlush(region, promise: promise)
    }

    func sendConfig(opaque: Int32, to connection: ConnectionID) {
        let bytes = (try? readWholeFile(configPath)) ?? []
        var out: [UInt8] = []
        ResultResponse.appendHeader(to: &out, code: StatusCode.success, bodyLength: bytes.count, opaque: opaque)
        write(out + bytes, to: connection)
    }

    func readWholeFile(_ path: String) throws -> [UInt8] {
        let file = try storage.open(path, create: false)
        defer { try? file.close() }
        return try file.read(at: 0, count: Int(try file.size()))
    }

    func snapshot() -> StatsSnapshot {
        let partitions = stores.partitions.compactMap { partition -> StatsSnapshot.PartitionStats? in
            guard let log = stores.log(partition) else { return nil }
            return .init(partition: partition, minOffset: log.minOffset, maxOffset: log.maxOffset,
                         messageCount: Int64(log.recordCount), bytes: log.maxOffset - log.minOffset)
        }
        let topics = stores.config.topics.map(\.name).filter { !$0.contains("*") }
        let flags = topics.compactMap { topic in
            stores.config.topicConfig(for: topic).map {
                StatsSnapshot.TopicFlags(topic: topic, acceptPublish: $0.acceptPublish, acceptSubscribe: $0.acceptSubscribe)
            }
        }
        return StatsSnapshot(pid: Int(getpid()), uptimeSeconds: Clocks.monotonic().milliseconds(since: startedAt) / 1000,
                             threads: Self.threadCount(), currentConnections: channels.count, configChecksum: configChecksum, isSlave: false,
                             partitions: partitions, configuredTopics: topics, topicFlags: flags)
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

/// Carries a sync batch to the sync thread. `SyncBatch` holds `any StorageFile`, which is not
/// Sendable; here every file is a `RealFile` (Sendable: pread/pwrite/fdatasync on one descriptor
/// are thread-safe) and the loop does not touch the batch until the sync thread hands it back.
struct SyncWork: @unchecked Sendable {
    let batch: SyncBatch
}
