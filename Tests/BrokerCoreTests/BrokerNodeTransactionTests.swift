import BrokerCore
import ProtocolCore
import Sim
import StoreCore
import Testing

/// Transactions through the broker node (reference §4.2–§4.5): what is visible when, what a
/// COMMIT waits for, and what recovery does with what a crash or a power loss left — on a
/// `SimDisk`, with the syncs run when the test says.
@Suite("Broker node: transactions")
struct BrokerNodeTransactionTests {
    let c1 = ConnectionID(1)
    let c2 = ConnectionID(2)
    static let xid = "XID:1:0a0b:0c:XAMessageProducer-test"

    /// Loses every byte and entry not synced at a power loss (no lucky survivors).
    static let strictPowerLoss = PowerLossPolicy(keepEntryProbability: 0, keepLengthProbability: 0,
                                                 keepSectorProbability: 0, garbageSectorProbability: 0)

    /// Drives a node like a runtime would, except that journal syncs wait for `runJournalSyncs`.
    final class Driver {
        let node: BrokerNode
        var replies: [Int32: String] = [:]
        var putOffsets: [Int32: Int64] = [:]
        var pendingJournalSyncs: [JournalSyncJob] = []
        var holdJournalSyncs = false
        var ms: Int64 = 0

        init(_ node: BrokerNode) { self.node = node }

        func feed(_ event: BrokerNode.Event) {
            var actions: [BrokerNode.Action] = []
            node.handle(event, clock: BrokerNodeTests.clock(ms), into: &actions)
            var index = 0
            while index < actions.count {
                let action = actions[index]
                index += 1
                switch action {
                case .putAnswer(_, let answer):
                    replies[answer.opaque] = "200"
                    putOffsets[answer.opaque] = answer.offset
                case .reply(_, let response): replies[response.opaque] = "\(response.code) \(response.text)"
                case .startSync(let job):
                    node.handle(.syncFinished(job.partition, id: job.id, job.batch.performed()),
                                clock: BrokerNodeTests.clock(ms), into: &actions)
                case .startJournalSync(let job):
                    if holdJournalSyncs {
                        pendingJournalSyncs.append(job)
                    } else {
                        node.handle(.journalSyncFinished(id: job.id, job.batch.performed()), clock: BrokerNodeTests.clock(ms),
                                    into: &actions)
                    }
                case .endTickNow: node.handle(.tickEnded, clock: BrokerNodeTests.clock(ms), into: &actions)
                default: continue
                }
            }
        }

        func request(_ connection: ConnectionID, _ frame: Frame) {
            feed(.request(connection, frame))
            feed(.tickEnded)
        }

        func transaction(_ connection: ConnectionID, _ key: String, _ type: TransactionType, opaque: Int32,
                         timeout: Int32? = nil, qualifier: String? = nil) {
            request(connection, .transaction(TransactionCommand(transactionKey: key, sessionId: "s", type: type,
                                                                timeoutSeconds: timeout, uniqueQualifier: qualifier,
                                                                opaque: opaque)))
        }

        func put(_ connection: ConnectionID, key: String?, partition: Int32 = 0, opaque: Int32) {
            let body = Array("message \(opaque)".utf8)
            request(connection, .put(PutCommand(topic: "test", partition: partition, flag: 0,
                                                checksum: CRC32.metaqChecksum(body), transactionKey: key, body: body,
                                                opaque: opaque)))
        }

        func runJournalSyncs(_ result: Result<Void, StorageError>? = nil) {
            let jobs = pendingJournalSyncs
            pendingJournalSyncs = []
            for job in jobs { feed(.journalSyncFinished(id: job.id, result ?? job.batch.performed())) }
        }

        /// The message bodies readable from a partition (synced bytes only, as a consumer sees).
        func bodies(_ partition: Int32 = 0) -> [String] {
            guard let log = node.stores.log(TopicPartition("test", partition)) else { return [] }
            var offset = log.minOffset
            var out: [String] = []
            while case .slice(let slice) = log.read(offset: offset, maxBytes: 1 << 20), let bytes = try? log.bytes(of: slice) {
                var iterator = RecordIterator(bytes, baseOffset: offset)
                while case .message(let message)? = iterator.next() { out.append(String(decoding: message.data, as: UTF8.self)) }
                guard iterator.consumedBytes > 0 else { break }
                offset += Int64(iterator.consumedBytes)
            }
            return out
        }
    }

    static func driver(flush: String = "unflushThreshold=0", disk: SimDisk) throws -> Driver {
        let driver = Driver(try BrokerNodeTests.node(flush: flush, disk: disk))
        driver.feed(.start)
        driver.feed(.connectionOpened(ConnectionID(1)))
        driver.feed(.connectionOpened(ConnectionID(2)))
        return driver
    }

    @Test func aCommittedLocalTransactionBecomesVisibleWholeOnlyAtCommit() throws {
        let disk = SimDisk()
        let d = try Self.driver(disk: disk)
        let key = "TX:s:1"
        d.transaction(c1, key, .begin, opaque: 1)
        #expect(d.replies[1] == "200 ")
        for opaque in Int32(2)...4 { d.put(c1, key: key, opaque: opaque) }
        #expect(d.putOffsets[2] == -1 && d.putOffsets[4] == -1, "a put in a transaction answers offset -1 (§1.4.1)")
        d.put(c1, key: nil, opaque: 5)
        #expect(d.bodies() == ["message 5"], "nothing of the transaction is visible before its commit")
        d.transaction(c1, key, .commitOnePhase, opaque: 6)
        #expect(d.replies[6] == "200 ")
        #expect(d.bodies() == ["message 5", "message 2", "message 3", "message 4"])
        #expect(d.node.commitsInFlight == 0 && d.node.checkInvariants().isEmpty)
        #expect(d.node.machine.statsCounters.txBegin == 1 && d.node.machine.statsCounters.txCommit == 1)
    }

    /// The commit's batch must not reach the partition file before the commit entry is durable
    /// (`flushTxLogAtCommit=1`), and the COMMIT is answered only once both are.
    @Test func aCommitsBatchWaitsForItsEntryAndPutsBehindItWaitToo() throws {
        let disk = SimDisk()
        let d = try Self.driver(flush: "unflushThreshold=1000", disk: disk)
        let key = "TX:s:1"
        d.transaction(c1, key, .begin, opaque: 1)
        d.put(c1, key: key, opaque: 2)
        d.holdJournalSyncs = true
        let segment = "/data/test-0/" + SegmentName.name(forStart: 0)
        d.transaction(c1, key, .commitOnePhase, opaque: 3)
        #expect(d.replies[3] == nil, "no answer before the commit entry is durable")
        #expect((disk.currentBytes(segment) ?? []).isEmpty, "the batch is held out of the file")
        d.put(c2, key: nil, opaque: 4)
        #expect(d.replies[4] == nil, "a put behind the held batch is not written, so not answered")
        #expect(d.node.checkInvariants().isEmpty, "\(d.node.checkInvariants())")
        #expect(d.pendingJournalSyncs.count == 1)
        d.runJournalSyncs()
        #expect(d.replies[3] == "200 " && d.replies[4] == "200")
        #expect((disk.currentBytes(segment) ?? []).count > 0)
        #expect(d.node.unansweredPuts == 0 && d.node.checkInvariants().isEmpty)
    }

    /// Found by the simulator's transaction sweep (seed 91 of issue simtx): a partition whose
    /// first messages came by a commit answered GET with 404 "not exists" until the broker
    /// restarted, since only plain puts marked a partition as holding data (§1.4.2).
    @Test func aPartitionFilledOnlyByACommitAnswersGets() throws {
        let d = try Self.driver(disk: SimDisk())
        let key = "TX:s:1"
        d.transaction(c1, key, .begin, opaque: 1)
        d.put(c1, key: key, partition: 1, opaque: 2)
        d.put(c1, key: key, partition: 1, opaque: 3)
        d.transaction(c1, key, .commitOnePhase, opaque: 4)
        #expect(d.replies[4] == "200 ")
        #expect(d.bodies(1) == ["message 2", "message 3"])
        var actions: [BrokerNode.Action] = []
        d.node.handle(.request(c2, .get(GetCommand(topic: "test", group: "g", partition: 1, offset: 0, maxSize: 1024, opaque: 5))),
                      clock: BrokerNodeTests.clock(), into: &actions)
        d.node.handle(.tickEnded, clock: BrokerNodeTests.clock(), into: &actions)
        var served = false
        for action in actions {
            switch action {
            case .reply(_, let response) where response.opaque == 5:
                Issue.record("GET of a partition holding committed messages answered \(response.code) \(response.text)")
            case .sendFile(_, _, let opaque), .sendValue(_, _, let opaque): served = served || opaque == 5
            default: break
            }
        }
        #expect(served, "the GET is answered with the committed messages")
    }

    @Test func aRolledBackTransactionLeavesNothingAndItsKeyIsGone() throws {
        let d = try Self.driver(disk: SimDisk())
        let key = "TX:s:1"
        d.transaction(c1, key, .begin, opaque: 1)
        d.put(c1, key: key, opaque: 2)
        d.transaction(c1, key, .rollback, opaque: 3)
        #expect(d.replies[3] == "200 ")
        d.transaction(c1, key, .commitOnePhase, opaque: 4)
        #expect(d.replies[4] == "500 Local transaction 'TX:s:1' has not been started.")
        d.put(c1, key: key, opaque: 5)
        #expect(d.replies[5] == "500 Local transaction 'TX:s:1' has not been started.")
        #expect(d.bodies().isEmpty)
    }

    /// Unlike the original (§4.6, §11.5), a closed connection's local transactions are rolled back.
    @Test func aClosedConnectionsLocalTransactionIsRolledBack() throws {
        let d = try Self.driver(disk: SimDisk())
        d.transaction(c1, "TX:s:1", .begin, opaque: 1)
        d.put(c1, key: "TX:s:1", opaque: 2)
        #expect(d.node.machine.transactions.openTransactionCount == 1)
        d.feed(.connectionClosed(c1))
        #expect(d.node.machine.transactions.openTransactionCount == 0)
        #expect(d.bodies().isEmpty)
    }

    /// §4.5: a prepared XA transaction survives a crash (SIGKILL: the page cache stays) and a
    /// power loss alike, RECOVER lists it, and COMMIT from another connection makes it visible.
    @Test(arguments: [false, true])
    func aPreparedTransactionSurvivesARestartAndCommitsFromAnotherConnection(powerLoss: Bool) throws {
        let disk = SimDisk(powerLossPolicy: Self.strictPowerLoss)
        let d = try Self.driver(disk: disk)
        d.transaction(c1, Self.xid, .begin, opaque: 1, qualifier: "XAMessageProducer-test")
        d.put(c1, key: Self.xid, opaque: 2)
        d.put(c1, key: Self.xid, partition: 1, opaque: 3)
        d.holdJournalSyncs = true
        d.transaction(c1, Self.xid, .prepare, opaque: 4)
        #expect(d.replies[4] == nil, "prepare answers once its entry is durable")
        d.runJournalSyncs()
        #expect(d.replies[4] == "200 0")
        if powerLoss {
            var rng = SimRandom(seed: 7)
            disk.powerLoss(using: &rng)
        } else {
            disk.crash()
        }
        let again = try Self.driver(disk: disk)
        #expect(again.node.transactionRecovery.prepared == [Self.xid])
        again.transaction(c2, "null", .recover, opaque: 5)
        #expect(again.replies[5] == "200 \(Self.xid)")
        #expect(again.bodies(0).isEmpty && again.bodies(1).isEmpty)
        again.transaction(c2, Self.xid, .commitTwoPhase, opaque: 6)
        #expect(again.replies[6] == "200 ")
        #expect(again.bodies(0) == ["message 2"] && again.bodies(1) == ["message 3"])
        again.transaction(c2, "null", .recover, opaque: 7)
        #expect(again.replies[7] == "200 ")
    }

    /// Found by the simulator's transaction sweep (seed 39 of issue simtx): a committed batch that
    /// retention later removed (its segment expired) counted as missing at the next start, and
    /// recovery appended it again — its messages were delivered a second time (§2.7, §4.5).
    @Test func aCommittedBatchRemovedByRetentionIsNotAppendedAgain() throws {
        let disk = SimDisk()
        func open() throws -> Driver {
            let d = Driver(try BrokerNodeTests.node(flush: "unflushThreshold=0", extra: "deletePolicy=delete,1h\n", disk: disk))
            d.feed(.start)
            d.feed(.connectionOpened(c1))
            d.feed(.connectionOpened(c2))
            return d
        }
        let d = try open()
        d.transaction(c1, "TX:s:1", .begin, opaque: 1)
        d.put(c1, key: "TX:s:1", opaque: 2)
        d.transaction(c1, "TX:s:1", .commitOnePhase, opaque: 3)
        #expect(d.replies[3] == "200 ")
        for opaque in Int32(10)...40 { d.put(c2, key: nil, opaque: opaque) }
        let log = try #require(d.node.stores.log(TopicPartition("test", 0)))
        #expect(log.segmentCount > 2)
        d.feed(.retentionRequested(asOfWallMs: BrokerNodeTests.wallMs + 2 * 3_600_000))
        #expect(log.minOffset > 0 && !d.bodies().contains("message 2"), "retention removed the committed batch's segment")
        let kept = d.bodies()
        disk.crash()

        let again = try open()
        #expect(again.node.transactionRecovery.batchesAppended == 0, "\(again.node.transactionRecovery)")
        #expect(again.bodies() == kept, "the removed batch does not come back")
    }

    /// Found by the simulator's sweep (seed 6111 of issue simtx): a committed batch damaged in the
    /// middle of the log — recovery kept the records after the damage and skips it — was "torn"
    /// to recovery, which cut the log back to the batch before appending it again: the records
    /// after it were lost and every offset a reader held past it pointed into the new bytes
    /// (§2.6, §4.5). Only a batch at the very end is cut off now; of this one only the records not
    /// intact are appended again (seeds 2108, 3594: appending it whole repeated its intact ones).
    @Test func aCommittedBatchDamagedBeforeLaterRecordsIsAppendedWithoutCuttingThem() throws {
        let disk = SimDisk()
        let d = try Self.driver(disk: disk)
        d.put(c2, key: nil, opaque: 1)
        d.transaction(c1, "TX:s:1", .begin, opaque: 2)
        d.put(c1, key: "TX:s:1", opaque: 3)
        d.put(c1, key: "TX:s:1", opaque: 4)
        d.transaction(c1, "TX:s:1", .commitOnePhase, opaque: 5)
        #expect(d.replies[5] == "200 ")
        d.put(c2, key: nil, opaque: 6)
        d.put(c2, key: nil, opaque: 7)
        #expect(d.bodies() == ["message 1", "message 3", "message 4", "message 6", "message 7"])
        let log = try #require(d.node.stores.log(TopicPartition("test", 0)))
        let end = log.maxOffset
        let batchOffset = Int64(Record.size(payloadCount: "message 1".utf8.count))
        let laterOffset = batchOffset + 2 * Int64(Record.size(payloadCount: "message 3".utf8.count))
        // Bit rot inside the batch's first record, in the synced bytes.
        let segment = try #require(disk.filePaths().first { $0.hasPrefix("/data/test-0/") && $0.hasSuffix(".meta") })
        let file = try disk.open(segment, create: false)
        try file.write(Array("XX".utf8), at: batchOffset + Int64(Record.headerSize) + 1)
        try file.sync()
        try file.close()
        disk.crash()

        let again = try Self.driver(disk: disk)
        #expect(again.node.transactionRecovery.batchesAppended == 1, "\(again.node.transactionRecovery)")
        let recovered = try #require(again.node.stores.log(TopicPartition("test", 0)))
        #expect(recovered.maxOffset == end + Int64(Record.size(payloadCount: "message 3".utf8.count)),
                "only the damaged record is appended, after what was there; nothing is cut off")
        guard case .slice(let slice) = recovered.read(offset: laterOffset, maxBytes: 1 << 16) else {
            Issue.record("the record after the damaged batch is no longer readable at \(laterOffset)")
            return
        }
        let records = RecordIterator(try recovered.bytes(of: slice), baseOffset: laterOffset)
        let bodies = Array(records.prefix(4)).compactMap { element -> String? in
            if case .message(let message) = element { return String(decoding: message.data, as: UTF8.self) } else { return nil }
        }
        // Later records stay where readers found them; the intact "message 4" stays in place, not appended twice.
        #expect(bodies == ["message 6", "message 7", "message 3"])
    }

    /// A power loss after the commit entry is durable but before its batch reached the disk:
    /// recovery appends the batch — once, however often the broker restarts (§4.5).
    @Test func aCommitWhoseBatchWasLostIsAppendedAgainExactlyOnce() throws {
        let disk = SimDisk(powerLossPolicy: Self.strictPowerLoss)
        let d = try Self.driver(disk: disk)
        d.transaction(c1, "TX:s:1", .begin, opaque: 1)
        for opaque in Int32(2)...3 { d.put(c1, key: "TX:s:1", opaque: opaque) }
        d.put(c2, key: nil, opaque: 4)
        #expect(d.bodies() == ["message 4"])
        // The journal sync completes; the batch is then staged and its partition sync begun, but
        // the power goes before that sync runs: the driver below never performs it.
        d.holdJournalSyncs = true
        d.transaction(c1, "TX:s:1", .commitOnePhase, opaque: 5)
        let jobs = d.pendingJournalSyncs
        d.pendingJournalSyncs = []
        var actions: [BrokerNode.Action] = []
        for job in jobs { d.node.handle(.journalSyncFinished(id: job.id, job.batch.performed()), clock: BrokerNodeTests.clock(), into: &actions) }
        d.node.handle(.tickEnded, clock: BrokerNodeTests.clock(), into: &actions)
        #expect(d.replies[5] == nil, "not answered: its batch is not durable")
        var rng = SimRandom(seed: 1)
        disk.powerLoss(using: &rng)

        let first = try Self.driver(disk: disk)
        #expect(first.node.transactionRecovery.batchesAppended == 1, "\(first.node.transactionRecovery)")
        #expect(first.bodies() == ["message 4", "message 2", "message 3"])
        disk.crash()
        let second = try Self.driver(disk: disk)
        #expect(second.node.transactionRecovery.batchesAppended == 0, "\(second.node.transactionRecovery)")
        #expect(second.bodies() == ["message 4", "message 2", "message 3"], "never twice")
    }

    /// A power loss before the commit entry is durable: the transaction never happened.
    @Test func aCommitWhoseEntryWasLostIsRolledBackAndLeavesNothing() throws {
        let disk = SimDisk(powerLossPolicy: Self.strictPowerLoss)
        let d = try Self.driver(disk: disk)
        d.transaction(c1, "TX:s:1", .begin, opaque: 1)
        d.put(c1, key: "TX:s:1", opaque: 2)
        d.holdJournalSyncs = true
        d.transaction(c1, "TX:s:1", .commitOnePhase, opaque: 3)
        var rng = SimRandom(seed: 1)
        disk.powerLoss(using: &rng)
        let again = try Self.driver(disk: disk)
        #expect(again.bodies().isEmpty)
        #expect(again.node.machine.transactions.openTransactionCount == 0)
    }

    /// A failed journal sync: the prepare is refused with XAER_RMERR, a commit waiting on it
    /// drops its held batch with the log (the next start decides from what reached the disk).
    @Test func aFailedJournalSyncRefusesWhatWaitedForIt() throws {
        let disk = SimDisk()
        let d = try Self.driver(disk: disk)
        d.transaction(c1, Self.xid, .begin, opaque: 1)
        d.put(c1, key: Self.xid, opaque: 2)
        d.transaction(c2, "TX:s:1", .begin, opaque: 3)
        d.put(c2, key: "TX:s:1", opaque: 4)
        d.holdJournalSyncs = true
        d.transaction(c1, Self.xid, .prepare, opaque: 5)
        d.transaction(c2, "TX:s:1", .commitOnePhase, opaque: 6)
        d.runJournalSyncs(.failure(.io(path: "/data/transactions/redo.1", detail: "EIO")))
        #expect(d.replies[5]?.hasPrefix("500 XAException:code=-3,msg=the transaction journal could not be synced") == true,
                "\(d.replies[5] ?? "none")")
        #expect(d.replies[6]?.hasPrefix("500 XAException:code=8,") == true, "\(d.replies[6] ?? "none")")
        #expect(d.node.commitsInFlight == 0 && d.node.checkInvariants().isEmpty, "\(d.node.checkInvariants())")
        d.transaction(c2, "TX:s:2", .begin, opaque: 7)
        d.put(c2, key: "TX:s:2", opaque: 8)
        #expect(d.replies[8]?.contains("transaction journal") == true, "\(d.replies[8] ?? "none")")
    }

    @Test func aGracefulStopFinishesACommitInFlight() throws {
        let disk = SimDisk(powerLossPolicy: Self.strictPowerLoss)
        let d = try Self.driver(disk: disk)
        d.transaction(c1, "TX:s:1", .begin, opaque: 1)
        d.put(c1, key: "TX:s:1", opaque: 2)
        d.holdJournalSyncs = true
        d.transaction(c1, "TX:s:1", .commitOnePhase, opaque: 3)
        // The journal sync in flight ends during the stop.
        d.feed(.stopRequested)
        #expect(!d.node.isStopped, "the stop waits for the journal sync in flight")
        d.runJournalSyncs()
        #expect(d.node.isStopped)
        #expect(d.replies[3] == "200 ")
        #expect(d.node.checkInvariants().isEmpty, "\(d.node.checkInvariants())")
        var rng = SimRandom(seed: 3)
        disk.powerLoss(using: &rng)
        let again = try Self.driver(disk: disk)
        #expect(again.bodies() == ["message 2"])
    }

    /// A checkpoint (§4.4) never passes what recovery may still need: the first entry of a
    /// prepared transaction, nor that of a commit answered after the write of a batch whose log
    /// has not synced it (`unflushThreshold > 0`) — a power loss can take that batch back.
    @Test func aCheckpointKeepsWhatRecoveryStillNeeds() throws {
        let disk = SimDisk(powerLossPolicy: Self.strictPowerLoss)
        let d = try Self.driver(flush: "unflushThreshold=1000\nunflushInterval=3600000", disk: disk)
        d.transaction(c1, "TX:s:1", .begin, opaque: 1)
        d.put(c1, key: "TX:s:1", opaque: 2)
        d.transaction(c1, "TX:s:1", .commitOnePhase, opaque: 3)
        #expect(d.replies[3] == "200 ", "answered after the write: the batch is not synced")
        d.transaction(c2, Self.xid, .begin, opaque: 4)
        d.put(c2, key: Self.xid, opaque: 5)
        d.transaction(c2, Self.xid, .prepare, opaque: 6)
        #expect(d.replies[6] == "200 0")
        for round in Int32(0)..<5 {
            let key = "TX:s:\(round + 10)"
            d.transaction(c1, key, .begin, opaque: 100 + round * 4)
            d.put(c1, key: key, partition: 1, opaque: 101 + round * 4)
            d.transaction(c1, key, .rollback, opaque: 102 + round * 4)
        }
        d.feed(.timerFired(.transactionCheckpoint))
        d.feed(.timerFired(.transactionCheckpoint))
        #expect(d.node.journal.lastCheckpoint == TxJournalPosition(file: 1, offset: 0),
                "the unsynced commit's first entry bounds the checkpoint: \(String(describing: d.node.journal.lastCheckpoint))")
        var rng = SimRandom(seed: 5)
        disk.powerLoss(using: &rng)
        let again = try Self.driver(disk: disk)
        #expect(again.bodies() == ["message 2"], "the commit's lost batch is appended again")
        #expect(again.node.transactionRecovery.prepared == [Self.xid])
    }

    /// A client may pipeline a whole transaction (the broker handles a connection's requests in
    /// order): the puts' entries are staged and written together, and a COMMIT behind them in
    /// the same read finds them recorded.
    @Test func aPipelinedTransactionCommitsWhole() throws {
        let disk = SimDisk()
        let d = try Self.driver(disk: disk)
        func command(_ type: TransactionType, _ opaque: Int32) -> Frame {
            .transaction(TransactionCommand(transactionKey: "TX:s:1", sessionId: "s", type: type, opaque: opaque))
        }
        d.feed(.request(c1, command(.begin, 1)))
        for opaque in Int32(2)...6 {
            let body = Array("message \(opaque)".utf8)
            d.feed(.request(c1, .put(PutCommand(topic: "test", partition: 0, flag: 0, checksum: CRC32.metaqChecksum(body),
                                                transactionKey: "TX:s:1", body: body, opaque: opaque))))
        }
        #expect(d.replies[2] == nil, "a staged entry is not written yet, so its put is not answered")
        d.feed(.request(c1, command(.commitOnePhase, 7)))
        d.feed(.tickEnded)
        #expect((2...6).allSatisfy { d.putOffsets[$0] == -1 })
        #expect(d.replies[7] == "200 ")
        #expect(d.bodies() == (2...6).map { "message \($0)" })
    }

    /// `flushTxLogAtCommit=2` (§4.3): a COMMIT does not wait for the journal — its batch is
    /// written and synced like a put and answered then — and a timer syncs the journal once a
    /// second. `0`: the broker never syncs the journal for a commit, and arms no such timer.
    @Test(arguments: [2, 0])
    func aCommitWithoutTheJournalSyncWhenTheConfigurationSaysSo(mode: Int) throws {
        let disk = SimDisk()
        let d = Driver(try BrokerNodeTests.node(flush: "unflushThreshold=0\nflushTxLogAtCommit=\(mode)", disk: disk))
        var started: [BrokerNode.Action] = []
        d.node.handle(.start, clock: BrokerNodeTests.clock(), into: &started)
        let flushTimer = started.contains { if case .armTimer(.transactionJournalFlush, _) = $0 { return true } else { return false } }
        #expect(flushTimer == (mode == 2))
        d.feed(.connectionOpened(c1))
        d.holdJournalSyncs = true
        d.transaction(c1, "TX:s:1", .begin, opaque: 1)
        d.put(c1, key: "TX:s:1", opaque: 2)
        d.transaction(c1, "TX:s:1", .commitOnePhase, opaque: 3)
        #expect(d.replies[3] == "200 ", "answered once the batch is synced")
        #expect(d.pendingJournalSyncs.isEmpty, "no journal sync for the commit")
        #expect(d.bodies() == ["message 2"])
        #expect(d.node.journal.hasUnsyncedData, "the commit entry is written, not synced")
        #expect(d.node.checkInvariants().isEmpty, "\(d.node.checkInvariants())")
        if mode == 2 {
            d.feed(.timerFired(.transactionJournalFlush))
            #expect(d.pendingJournalSyncs.count == 1, "the once-a-second timer syncs the journal")
            d.runJournalSyncs()
            #expect(!d.node.journal.hasUnsyncedData)
        }
    }
}
