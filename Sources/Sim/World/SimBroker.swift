import ProtocolCore
import StoreCore

/// One broker process in the simulator: the production `BrokerMachine` and `PartitionStores`
/// over the broker's `SimDisk`, driven the way `BrokerServer` drives them in the runtime —
/// requests of one delivery are one loop tick: their records are staged, each touched log is
/// written once at the end of the tick, threshold-mode puts are answered after that write and
/// group-commit puts after the sync that covers them (one sync per partition at a time, taking
/// the disk's current latency). A crash loses all of this memory; the disk keeps what it keeps.
final class SimBroker {
    let id: Int
    let disk = SimDisk()
    let config: ServerConfig
    unowned let sim: Simulation
    /// Bumped at every start; events of an older incarnation are ignored.
    private(set) var incarnation = 0
    private(set) var process: Process?
    /// Extra sync latency while a slow-disk fault lasts.
    var slowUntilNs: Int64 = 0
    /// The process's registration in ZooKeeper (§3.2) and its session; nil while down.
    var registration: BrokerRegistration?
    var zkSession: SimZKSession?

    /// The memory of one running broker process.
    final class Process {
        var machine: BrokerMachine
        let stores: PartitionStores
        var decoders: [Int: FrameDecoder] = [:]
        var awaitingSync: [UInt64: Int64] = [:]
        var awaitingWrite: [(token: UInt64, log: PartitionLog)] = []
        var dirty: [TopicPartition] = []
        var syncing: [TopicPartition: SyncBatch] = [:]
        var timerArmed: Set<TopicPartition> = []
        var slices: [UInt64: [UInt8]] = [:]
        var out: [Int: [UInt8]] = [:]

        init(machine: BrokerMachine, stores: PartitionStores) {
            self.machine = machine
            self.stores = stores
        }
    }

    init(id: Int, options: SimOptions, sim: Simulation) {
        self.id = id
        self.sim = sim
        // The options build a valid file; a parse failure is a bug in the simulator.
        do {
            config = try ServerConfig(parsing: options.serverIni(brokerId: id), path: "sim/broker\(id).ini")
        } catch {
            preconditionFailure("simulated server.ini does not parse: \(error)")
        }
    }

    var isUp: Bool { process != nil }
    var dataPath: String { "/broker\(id)" }

    /// Starts the process: recovery of every partition, then the machine.
    func start() {
        incarnation += 1
        disk.nowMs = sim.nowMs
        let stores = PartitionStores(storage: disk, config: config, defaultDataPath: dataPath)
        let reports: [TopicPartition: RecoveryReport]
        let reservation: Int64
        do {
            reports = try stores.openAll(now: sim.instant)
            reservation = try IdReservationFile.load(storage: disk, dataPath: dataPath)
        } catch {
            sim.fail("broker \(id) cannot start after recovery: \(error)")
            return
        }
        for (partition, report) in reports.sorted(by: { $0.key < $1.key }) {
            sim.counters.recoveries += 1
            if report.truncatedBytes > 0 { sim.counters.recoveryTruncations += 1 }
            if !report.removedSegments.isEmpty { sim.counters.recoveryRemovedSegments += 1 }
            if !report.newDamagedRanges.isEmpty { sim.counters.recoveryDamage += 1 }
            sim.trace(.brokerRecovered, Int64(id), Int64(report.truncatedBytes), "broker\(id) recovered \(partition): \(report)")
        }
        let settings = BrokerMachine.Settings(
            brokerId: id, brokerURI: uri, port: 8123, version: "metaq-sim",
            maxTransferSize: Int32(clamping: config.maxTransferSize), updateConsumerOffsets: config.updateConsumerOffsets,
            topics: stores.topicRules(), maxAutoCreatedPartitions: config.maxAutoCreatedPartitions)
        let machine = BrokerMachine(settings: settings, partitionsWithData: Set(stores.partitions),
                                    idReservationMs: reservation, seed: sim.rng.next())
        process = Process(machine: machine, stores: stores)
        sim.registerBroker(self)
    }

    /// `meta://broker<N>:8123`: what the broker registers and what members fetch from (§3.4 step 7).
    var uri: String { "meta://broker\(id):8123" }

    /// The process dies: memory gone, open handles dead, page cache kept (a plain crash) or
    /// resolved at random (`powerLoss`).
    func stop(powerLoss: Bool) {
        guard let process else { return }
        process.stores.closeAll()
        self.process = nil
        sim.abandonRegistration(of: self)
        if powerLoss { disk.powerLoss(using: &sim.rng) } else { disk.crash() }
    }

    /// The readable end of each partition, as the running store believes it (synced bytes).
    func syncedEnds() -> [TopicPartition: Int64] {
        guard let process else { return [:] }
        var ends: [TopicPartition: Int64] = [:]
        for partition in process.stores.partitions {
            if let log = process.stores.log(partition) { ends[partition] = log.maxOffset }
        }
        return ends
    }

    func log(_ partition: TopicPartition) -> PartitionLog? { process?.stores.log(partition) }

    // MARK: Connections

    func accept(_ connection: Int) {
        process?.decoders[connection] = FrameDecoder()
    }

    func closed(_ connection: Int) {
        guard let process, process.decoders.removeValue(forKey: connection) != nil else { return }
        process.out[connection] = nil
        handle(.connectionClosed(ConnectionID(UInt64(connection))))
        endOfTick()
    }

    /// One delivery of bytes on `connection`: decode and handle every whole request, then end the tick.
    func receive(_ bytes: [UInt8], on connection: Int) {
        guard let process, process.decoders[connection] != nil else { return }
        process.decoders[connection]!.feed(bytes)
        do {
            while let frame = try process.decoders[connection]?.next() {
                handle(.request(ConnectionID(UInt64(connection)), frame))
            }
        } catch {
            sim.trace(.brokerFramingError, Int64(id), Int64(connection), "broker\(id) closes conn\(connection): \(error)")
            close(connection)
        }
        endOfTick()
    }

    private func close(_ connection: Int) {
        guard let process else { return }
        flush(connection)
        process.decoders[connection] = nil
        process.out[connection] = nil
        handle(.connectionClosed(ConnectionID(UInt64(connection))))
        sim.network.closedByBroker(connection)
    }

    // MARK: The machine

    private func handle(_ event: BrokerMachine.Event) {
        guard let process else { return }
        let actions = process.machine.handle(event, nowMs: sim.wallMs)
        for action in actions { perform(action) }
    }

    private func perform(_ action: BrokerMachine.Action) {
        guard let process else { return }
        switch action {
        case .append(let token, let partition, let record): append(token, partition, record)
        case .read(let token, let partition, let offset, let maxBytes):
            let (read, slice) = process.stores.read(partition, offset: offset, maxBytes: maxBytes)
            if let slice {
                do {
                    let file = try disk.open(slice.segmentPath, create: false)
                    process.slices[token] = try file.read(at: slice.filePosition, count: slice.count)
                    try file.close()
                } catch {
                    sim.fail("broker \(id): reading a slice the store handed out failed: \(error)")
                    return
                }
            }
            handle(.read(token: token, read))
        case .readBytes(let token, let partition, let offset, let maxBytes):
            handle(.read(token: token, process.stores.readBytes(partition, offset: offset, maxBytes: maxBytes)))
        case .nearestOffset(let token, let partition, let offset):
            handle(.nearestOffset(token: token, process.stores.log(partition)?.nearestOffset(offset) ?? 0))
        case .reply(let connection, let response):
            var bytes: [UInt8] = []
            Frame.result(response).encode(into: &bytes)
            write(bytes, to: Int(connection.raw))
        case .putAnswer(let connection, let answer):
            write(Frame.result(answer.response).encoded(), to: Int(connection.raw))
        case .sendSlice(let connection, let token, let opaque):
            guard let body = process.slices.removeValue(forKey: token) else { return }
            var bytes: [UInt8] = []
            Frame.value(ValueResponse(body: body, opaque: opaque)).encode(into: &bytes)
            write(bytes, to: Int(connection.raw))
        case .sendBytes(let connection, let body, let opaque):
            write(Frame.value(ValueResponse(body: body, opaque: opaque)).encoded(), to: Int(connection.raw))
        case .persistIdReservation(let reservation):
            do { try IdReservationFile.save(reservation, storage: disk, dataPath: dataPath) } catch {
                sim.fail("broker \(id): cannot persist the id reservation: \(error)")
            }
        case .collectStats(let token, _):
            handle(.statsCollected(token: token, StatsSnapshot(pid: 1, uptimeSeconds: sim.nowMs / 1000, threads: 1,
                                                               currentConnections: process.decoders.count,
                                                               configChecksum: 0, isSlave: false)))
        case .sendConfigFile(let connection, let opaque):
            var bytes: [UInt8] = []
            Frame.result(ResultResponse(code: StatusCode.success, body: [], opaque: opaque)).encode(into: &bytes)
            write(bytes, to: Int(connection.raw))
        case .close(let connection):
            close(Int(connection.raw))
        }
    }

    private func write(_ bytes: [UInt8], to connection: Int) {
        guard let process, process.decoders[connection] != nil else { return }
        process.out[connection, default: []].append(contentsOf: bytes)
    }

    private func flush(_ connection: Int) {
        guard let process, let bytes = process.out.removeValue(forKey: connection), !bytes.isEmpty else { return }
        sim.network.sendToClient(connection, bytes)
    }

    private func append(_ token: UInt64, _ partition: TopicPartition, _ record: BrokerMachine.AppendRecord) {
        guard let process else { return }
        do {
            let log = try process.stores.logCreatingIfNeeded(partition, now: sim.instant)
            let outcome = try log.stage(msgId: record.msgId, flag: record.flag, payload: record.payload,
                                        checksum: record.verifiedChecksum, ticket: token)
            sim.stored(broker: id, msgId: record.msgId, incarnation: incarnation)
            // token → offset until answered: after the tick's write (threshold policy) or after
            // the sync that covers it (group commit).
            process.awaitingSync[token] = outcome.offset
            if outcome.acknowledged || sim.options.canaryAckBeforeSync {
                // The canary answers group-commit puts here too, before any sync.
                process.awaitingWrite.append((token, log))
                if !outcome.acknowledged { sim.counters.canaryEarlyAcks += 1 }
            }
            if !process.dirty.contains(partition) { process.dirty.append(partition) }
        } catch {
            guard let log = process.stores.log(partition), let failure = log.failure else {
                return handle(.appended(token: token, .failure(.init("\(error)"))))
            }
            reportFailure(partition, log)
            handle(.appended(token: token, .failure(.init(failure.description))))
            if !process.dirty.contains(partition) { process.dirty.append(partition) }
        }
    }

    /// As `BrokerServer.reportFailure`: the machine learns once that the partition refuses writes.
    private func reportFailure(_ partition: TopicPartition, _ log: PartitionLog) {
        guard let process, let failure = log.failure, process.machine.failedPartitions[partition] == nil else { return }
        sim.trace(.brokerWriteFailed, Int64(id), 0, "broker\(id) \(partition) refuses writes: \(failure)")
        handle(.partitionFailed(partition, cause: failure.description))
    }

    /// As `BrokerServer.abandon`: the group-commit appends of a failed log are answered with its cause.
    private func abandon(_ partition: TopicPartition, _ log: PartitionLog) {
        guard let process else { return }
        reportFailure(partition, log)
        let cause = log.failure?.description ?? "log failed"
        for ticket in log.abandonPendingAppends() where process.awaitingSync.removeValue(forKey: ticket) != nil {
            handle(.appended(token: ticket, .failure(.init(cause))))
        }
    }

    /// Writes each touched log once, answers what needed only the write, starts due syncs,
    /// flushes every connection.
    func endOfTick() {
        guard let process else { return }
        while !process.dirty.isEmpty || !process.awaitingWrite.isEmpty {
            let partitions = process.dirty
            process.dirty.removeAll()
            for partition in partitions {
                guard let log = process.stores.log(partition) else { continue }
                do { try log.flushWrites() } catch { reportFailure(partition, log) }
            }
            let written = process.awaitingWrite
            process.awaitingWrite.removeAll()
            for (token, log) in written {
                guard let offset = process.awaitingSync.removeValue(forKey: token) else { continue }
                handle(.appended(token: token, log.failure.map { .failure(.init($0.description)) } ?? .success(offset)))
            }
            for partition in partitions { scheduleSync(partition) }
        }
        for connection in process.out.keys.sorted() { flush(connection) }
    }

    private func scheduleSync(_ partition: TopicPartition) {
        guard let process, let log = process.stores.log(partition), process.syncing[partition] == nil else { return }
        if log.syncDue(now: sim.instant) {
            guard let batch = log.beginSync() else {
                if log.isFailed { abandon(partition, log) }
                return
            }
            process.syncing[partition] = batch
            var latency = Int64(sim.rng.int(in: sim.options.syncLatencyMs)) * 1_000_000 + Int64(sim.rng.int(in: 0...300_000))
            if sim.nowNs < slowUntilNs { latency += Int64(sim.rng.int(in: 20...200)) * 1_000_000 }
            sim.schedule(.syncDone(broker: id, incarnation: incarnation, partition), afterNs: latency)
        } else if let deadline = log.nextSyncDeadline(), !process.timerArmed.contains(partition) {
            process.timerArmed.insert(partition)
            sim.schedule(.syncTimer(broker: id, incarnation: incarnation, partition),
                         afterNs: max(0, deadline.nanoseconds - sim.nowNs))
        }
    }

    func syncTimer(_ partition: TopicPartition, incarnation: Int) {
        guard incarnation == self.incarnation, let process else { return }
        process.timerArmed.remove(partition)
        scheduleSync(partition)
        endOfTick()
    }

    /// The sync started for `partition` finishes now: its bytes become durable at this instant.
    func syncDone(_ partition: TopicPartition, incarnation: Int) {
        guard incarnation == self.incarnation, let process, let batch = process.syncing.removeValue(forKey: partition),
              let log = process.stores.log(partition) else { return }
        sim.counters.syncs += 1
        do {
            try batch.perform()
            for ticket in log.completeSync(batch, now: sim.instant) {
                guard let offset = process.awaitingSync.removeValue(forKey: ticket) else { continue }
                handle(.appended(token: ticket, .success(offset)))
            }
        } catch where error.isRetryable {
            // As in BrokerServer: a sync that could not open its files did nothing; retried later.
            log.postponeSync(batch, error: error, now: sim.instant)
        } catch {
            let tickets = log.failSync(batch, error: error)
            reportFailure(partition, log)
            let cause = log.failure?.description ?? "sync failed: \(error)"
            for ticket in tickets where process.awaitingSync.removeValue(forKey: ticket) != nil {
                handle(.appended(token: ticket, .failure(.init(cause))))
            }
        }
        if !process.dirty.contains(partition) { process.dirty.append(partition) }
        endOfTick()
    }
}
