import Testing
@testable import ProtocolCore

/// The transaction machine fed by hand: every row of the reference's §4.2 table, its error
/// texts byte for byte, the XA state rules, scope, timeouts (§4.6), bounds, replay (§4.5) and
/// heuristic completion.
@Suite("Transaction machine (reference §4)")
struct TransactionMachineTests {
    let c1 = ConnectionID(1)
    let c2 = ConnectionID(2)
    let t0 = Instant.milliseconds(1_000_000)
    static let local = "TX:10.0.0.1-1700000000000-1:1"
    static let xa = "XID:1:0a0b:01:XAMessageProducer-host1"
    static let xa2 = "XID:1:0c:02:XAMessageProducer-host2"

    func command(_ key: String, _ type: TransactionType, timeout: Int32? = nil, qualifier: String? = nil,
                 opaque: Int32 = 7) -> TransactionCommand {
        TransactionCommand(transactionKey: key, sessionId: "10.0.0.1-1700000000000-1", type: type,
                           timeoutSeconds: timeout, uniqueQualifier: qualifier, opaque: opaque)
    }

    func wire(_ r: ResultResponse) -> String { String(decoding: Frame.result(r).encoded(), as: UTF8.self) }

    /// The wire bytes of the only answer among `actions` (a reply, or a journal entry's reply).
    func answer(_ actions: [TxAction]) -> String? {
        let replies = actions.compactMap { action -> ResultResponse? in
            switch action {
            case .reply(_, let r): return r
            case .journal(_, _, _, let r): return r
            default: return nil
            }
        }
        guard replies.count == 1 else { return nil }
        return wire(replies[0])
    }

    func journaled(_ actions: [TxAction]) -> [TxJournalEntry] {
        actions.compactMap { if case .journal(let e, _, _, _) = $0 { return e } else { return nil } }
    }

    func plan(_ actions: [TxAction]) -> TxCommitPlan? {
        for case .commit(let p) in actions { return p }
        return nil
    }

    func putCommand(_ key: String, topic: String = "test", partition: Int32 = 0, body: String = "hello") -> PutCommand {
        PutCommand(topic: topic, partition: partition, flag: 0, checksum: CRC32.metaqChecksum(Array(body.utf8)),
                   transactionKey: key, body: Array(body.utf8), opaque: 9)
    }

    /// Admits and records a put; returns the first-entry fact.
    @discardableResult
    func put(_ m: inout TransactionMachine, _ key: String, from c: ConnectionID, partition: Int32 = 0, body: String = "hello",
             id: Int64, at offset: Int64) -> TxJournalPosition? {
        guard case .admitted(let ticket) = m.admitPut(putCommand(key, partition: partition, body: body), from: c) else {
            Issue.record("put refused")
            return nil
        }
        guard case .recorded(let started) = m.recordPut(ticket, messageId: id, journaledAt: TxJournalPosition(file: 1, offset: offset)) else {
            Issue.record("put not recorded")
            return nil
        }
        return started
    }

    func begun(_ keys: [(String, ConnectionID)]) -> TransactionMachine {
        var m = TransactionMachine()
        for (key, c) in keys { _ = m.handle(command(key, .begin), from: c, now: t0) }
        return m
    }

    // MARK: - Ids (§4.1)

    @Test("§4.1 keys round-trip and parse to their parts")
    func idRoundTrips() throws {
        let l = try #require(try TransactionId.parse(Self.local))
        #expect(l == .local(sessionId: "10.0.0.1-1700000000000-1", number: 1))
        #expect(l.key == Self.local)
        let x = try #require(try TransactionId.parse(Self.xa))
        #expect(x == .xa(formatId: 1, globalId: [0x0a, 0x0b], branchQualifier: [0x01], uniqueQualifier: "XAMessageProducer-host1"))
        #expect(x.key == Self.xa)
        #expect(try TransactionId.parse("null") == nil)
        // Integer.parseInt's forms: signs and leading zeros give the canonical key.
        #expect(try TransactionId.parse("TX:s:+7")?.key == "TX:s:7")
        #expect(try TransactionId.parse("TX:s:007")?.key == "TX:s:7")
        #expect(try TransactionId.parse("TX:s:-2147483648")?.key == "TX:s:-2147483648")
        #expect(try TransactionId.parse("TX:s:2147483647")?.key == "TX:s:2147483647")
        #expect(try TransactionId.parse("XID:-5:ABcd::q")?.key == "XID:-5:abcd::q")
        let bytes: [UInt8] = Array(0...255)
        let big = TransactionId.xa(formatId: Int32.min, globalId: Array(bytes[0..<64]), branchQualifier: Array(bytes[192..<256]),
                                   uniqueQualifier: "q")
        #expect(try TransactionId.parse(big.key) == big)
    }

    @Test("hostile keys are refused with a clear text, never a crash", arguments: [
        "", "TX:", "TX:a", "TX:a:", "TX:a:b", "TX:a:1:2", "TX:a:2147483648", "TX:a:-", "TX:a:1x", "TX:a:٣",
        "XID:1:00:00", "XID:1:abc:00:q", "XID:1:zz:00:q", "XID:x:00:00:q", "XID:1:00:00:q:r", "FOO", "tx:a:1", "Null",
    ])
    func hostileKeys(key: String) {
        #expect(throws: TransactionIdError.self) { try TransactionId.parse(key) }
        var m = TransactionMachine()
        let actions = m.handle(command(key, .begin), from: c1, now: t0)
        let text = answer(actions) ?? ""
        #expect(text.hasPrefix("result 500 "))
        #expect(text.contains("Illegal transaction key:\(key) ("))
        #expect(m.openTransactionCount == 0)
    }

    @Test("an overlong key is refused by its length, shown by its first 64 bytes")
    func overlongKey() {
        let key = "TX:" + String(repeating: "s", count: 600) + ":1"
        do {
            _ = try TransactionId.parse(key)
            Issue.record("accepted")
        } catch {
            #expect(error.text == "Illegal transaction key:TX:\(String(repeating: "s", count: 61))… (605 bytes) (longer than 512 bytes)")
        }
    }

    // MARK: - BEGIN and END (§4.2)

    @Test("§4.2 BEGIN answers result 200 0, is idempotent, and counts tx_begin (XA: also tx_xa_begin)")
    func begin() {
        var m = TransactionMachine()
        #expect(answer(m.handle(command(Self.local, .begin, opaque: -2147483648), from: c1, now: t0)) == "result 200 0 -2147483648\r\n")
        #expect(answer(m.handle(command(Self.local, .begin), from: c1, now: t0)) == "result 200 0 7\r\n")
        #expect(m.openTransactionCount == 1)
        #expect(m.counters.txBegin == 2 && m.counters.txXABegin == 0)
        #expect(answer(m.handle(command(Self.xa, .begin, qualifier: "XAMessageProducer-host1"), from: c1, now: t0)) == "result 200 0 7\r\n")
        #expect(m.counters.txBegin == 3 && m.counters.txXABegin == 1)
        #expect(m.state(of: TxSlot(connection: nil, id: .xa(formatId: 1, globalId: [10, 11], branchQualifier: [1],
                                                           uniqueQualifier: "XAMessageProducer-host1"))) == .started)
    }

    @Test("§4.2 END changes nothing and is not answered, whatever its key")
    func end() {
        var m = begun([(Self.local, c1)])
        #expect(m.handle(command(Self.local, .end), from: c1, now: t0).isEmpty)
        #expect(m.handle(command("garbage", .end), from: c1, now: t0).isEmpty)
        #expect(m.state(of: TxSlot(connection: c1, id: try! TransactionId.parse(Self.local)!)) == .started)
    }

    @Test("BEGIN with the key null is refused")
    func beginNull() {
        var m = TransactionMachine()
        let text = "Illegal transaction key:null (BEGIN needs a TX: or XID: key)"
        #expect(answer(m.handle(command("null", .begin), from: c1, now: t0)) == "result 500 \(text.utf8.count) 7\r\n\(text)")
    }

    // MARK: - PREPARE (§4.2)

    @Test("§4.2 PREPARE of a local transaction is XAER_RMERR (-3)")
    func prepareLocal() {
        var m = begun([(Self.local, c1)])
        let text = "XAException:code=-3,msg=Prepare not implemented on Local Transactions."
        #expect(answer(m.handle(command(Self.local, .prepare), from: c1, now: t0)) == "result 500 \(text.utf8.count) 7\r\n\(text)")
        #expect(m.openTransactionCount == 1)
    }

    @Test("§4.2 unknown transactions: local is a plain 500, XA is XAER_NOTA (-4)")
    func unknown() {
        var m = TransactionMachine()
        for type in [TransactionType.prepare, .commitOnePhase, .commitTwoPhase, .rollback] {
            let local = "Local transaction '\(Self.local)' has not been started."
            #expect(answer(m.handle(command(Self.local, type), from: c1, now: t0)) == "result 500 \(local.utf8.count) 7\r\n\(local)")
            let xa = "XAException:code=-4,msg=XA transaction '\(Self.xa)' has not been started."
            #expect(answer(m.handle(command(Self.xa, type), from: c1, now: t0)) == "result 500 \(xa.utf8.count) 7\r\n\(xa)")
        }
        let null = "Local transaction 'null' has not been started."
        #expect(answer(m.handle(command("null", .commitOnePhase), from: c1, now: t0)) == "result 500 \(null.utf8.count) 7\r\n\(null)")
        // COMMIT and ROLLBACK are counted before the lookup, as in MetaQ.
        #expect(m.counters.txCommit == 5 && m.counters.txRollback == 2)
    }

    @Test("§4.2 PREPARE of an XA transaction without work answers 3 (XA_RDONLY) and forgets it")
    func prepareReadOnly() {
        var m = begun([(Self.xa, c1)])
        let actions = m.handle(command(Self.xa, .prepare), from: c1, now: t0)
        #expect(answer(actions) == "result 200 1 7\r\n3")
        #expect(journaled(actions).isEmpty)
        #expect(m.openTransactionCount == 0)
        #expect(answer(m.handle(command(Self.xa, .commitTwoPhase), from: c1, now: t0))?.contains("code=-4") == true)
    }

    @Test("§4.2 PREPARE with work journals a forced XA_PREPARE and then answers 0; a second PREPARE is XAER_PROTO")
    func prepareWithWork() {
        var m = begun([(Self.xa, c1)])
        put(&m, Self.xa, from: c1, id: 11, at: 0)
        let actions = m.handle(command(Self.xa, .prepare), from: c2, now: t0)
        #expect(actions == [.journal(.operation(type: .xaPrepare, wasPrepared: false, transactionId: Self.xa, locations: []),
                                     force: true, reply: c2, ResultResponse(code: 200, text: "0", opaque: 7))])
        #expect(answer(actions) == "result 200 1 7\r\n0")
        let again = "XAException:code=-6,msg=Cannot call prepare now."
        #expect(answer(m.handle(command(Self.xa, .prepare), from: c1, now: t0)) == "result 500 \(again.utf8.count) 7\r\n\(again)")
        #expect(m.checkInvariants().isEmpty)
    }

    // MARK: - COMMIT (§4.2)

    @Test("§4.2 COMMIT_TWO_PHASE of an unprepared XA transaction is XAER_PROTO (-6) and leaves it open")
    func twoPhaseUnprepared() {
        var m = begun([(Self.xa, c1)])
        let text = "XAException:code=-6,msg=Cannot do 2 phase commit if the transaction has not been prepared."
        #expect(answer(m.handle(command(Self.xa, .commitTwoPhase), from: c1, now: t0)) == "result 500 \(text.utf8.count) 7\r\n\(text)")
        put(&m, Self.xa, from: c1, id: 1, at: 0)
        #expect(answer(m.handle(command(Self.xa, .commitTwoPhase), from: c1, now: t0)) == "result 500 \(text.utf8.count) 7\r\n\(text)")
        #expect(m.state(of: TxSlot(connection: nil, id: try! TransactionId.parse(Self.xa)!)) == .inUse)
    }

    @Test("§4.2 COMMIT_ONE_PHASE of an XA transaction: without work 200 and gone, with work a plan (was_prepared false)")
    func onePhase() throws {
        var m = begun([(Self.xa, c1)])
        #expect(answer(m.handle(command(Self.xa, .commitOnePhase), from: c1, now: t0)) == "result 200 0 7\r\n")
        #expect(m.openTransactionCount == 0)
        _ = m.handle(command(Self.xa, .begin), from: c1, now: t0)
        put(&m, Self.xa, from: c1, id: 1, at: 0)
        let p = try #require(plan(m.handle(command(Self.xa, .commitOnePhase), from: c1, now: t0)))
        #expect(p.operation == .xaCommit && !p.wasPrepared && !p.heuristic)
    }

    @Test("§4.2 commit of a prepared XA transaction, one-phase or two-phase, from any connection: was_prepared true",
          arguments: [TransactionType.commitOnePhase, .commitTwoPhase])
    func preparedCommit(type: TransactionType) throws {
        var m = begun([(Self.xa, c1)])
        put(&m, Self.xa, from: c1, id: 1, at: 0)
        _ = m.handle(command(Self.xa, .prepare), from: c1, now: t0)
        let p = try #require(plan(m.handle(command(Self.xa, type), from: c2, now: t0)))
        #expect(p.operation == .xaCommit && p.wasPrepared)
        #expect(p.entry(locations: []) == .operation(type: .xaCommit, wasPrepared: true, transactionId: Self.xa, locations: []))
        let done = m.commitFinished(p.slot)
        #expect(done == [.reply(c2, ResultResponse(code: 200, body: [], opaque: 7)),
                         .ended(p.transactionId, firstEntry: TxJournalPosition(file: 1, offset: 0))])
        #expect(m.openTransactionCount == 0)
    }

    @Test("a commit plan groups messages per partition in put order, partitions sorted; the commit ends with 200 0")
    func commitPlan() throws {
        var m = begun([(Self.local, c1)])
        #expect(put(&m, Self.local, from: c1, partition: 1, body: "a", id: 1, at: 100) == TxJournalPosition(file: 1, offset: 100))
        #expect(put(&m, Self.local, from: c1, partition: 0, body: "b", id: 2, at: 200) == nil)
        put(&m, Self.local, from: c1, partition: 1, body: "c", id: 3, at: 300)
        let actions = m.handle(command(Self.local, .commitTwoPhase), from: c1, now: t0)
        let p = try #require(plan(actions))
        #expect(actions.count == 1)
        #expect(p.operation == .localCommit && !p.wasPrepared)
        #expect(p.batches == [
            TxBatch(partition: TopicPartition("test", 0), messages: [TxMessage(messageId: 2, flag: 0, body: Array("b".utf8))]),
            TxBatch(partition: TopicPartition("test", 1), messages: [TxMessage(messageId: 1, flag: 0, body: Array("a".utf8)),
                                                                    TxMessage(messageId: 3, flag: 0, body: Array("c".utf8))]),
        ])
        // While committing: no second commit, no rollback, no put.
        let busy = "Local transaction '\(Self.local)' is being committed."
        #expect(answer(m.handle(command(Self.local, .commitOnePhase), from: c1, now: t0)) == "result 500 \(busy.utf8.count) 7\r\n\(busy)")
        #expect(answer(m.handle(command(Self.local, .rollback), from: c1, now: t0)) == "result 500 \(busy.utf8.count) 7\r\n\(busy)")
        #expect(m.admitPut(putCommand(Self.local), from: c1)
                == .refused(code: 500, text: "Transaction '\(Self.local)' is being committed: it takes no more messages."))
        let done = m.commitFinished(p.slot)
        #expect(answer(done) == "result 200 0 7\r\n")
        #expect(done.last == .ended(p.transactionId, firstEntry: TxJournalPosition(file: 1, offset: 100)))
        #expect(m.heldBytes == 0 && m.checkInvariants().isEmpty)
        let gone = "Local transaction '\(Self.local)' has not been started."
        #expect(answer(m.handle(command(Self.local, .commitOnePhase), from: c1, now: t0)) == "result 500 \(gone.utf8.count) 7\r\n\(gone)")
    }

    @Test("a local commit without messages answers 200 at once and journals nothing (MetaQ's store skips it)")
    func emptyLocalCommit() {
        var m = begun([(Self.local, c1)])
        let actions = m.handle(command(Self.local, .commitOnePhase), from: c1, now: t0)
        #expect(actions == [.reply(c1, ResultResponse(code: 200, body: [], opaque: 7))])
        #expect(m.openTransactionCount == 0 && m.counters.txCommit == 1)
    }

    @Test("a failed commit: rolled back (XA_RBOTHER) unless its entry was written (XA_HEURHAZ); never committed twice")
    func commitFailure() throws {
        var m = begun([(Self.local, c1)])
        put(&m, Self.local, from: c1, id: 1, at: 40)
        let p = try #require(plan(m.handle(command(Self.local, .commitOnePhase), from: c1, now: t0)))
        let failed = m.commitFailed(p.slot, reason: "disk full", commitEntryWritten: false)
        #expect(journaled(failed) == [.operation(type: .localRollback, wasPrepared: false, transactionId: Self.local, locations: [])])
        let text = "XAException:code=104,msg=STORE COMMIT FAILED: Transaction rolled back."
        #expect(answer(failed) == "result 500 \(text.utf8.count) 7\r\n\(text)")
        #expect(failed.last == .ended(p.transactionId, firstEntry: TxJournalPosition(file: 1, offset: 40)))
        #expect(m.openTransactionCount == 0 && m.heldBytes == 0)

        _ = m.handle(command(Self.local, .begin), from: c1, now: t0)
        put(&m, Self.local, from: c1, id: 2, at: 80)
        let p2 = try #require(plan(m.handle(command(Self.local, .commitOnePhase), from: c1, now: t0)))
        let unsure = m.commitFailed(p2.slot, reason: "fsync failed", commitEntryWritten: true)
        #expect(journaled(unsure).isEmpty)
        #expect(answer(unsure)?.contains("XAException:code=8,msg=") == true)
        #expect(!unsure.contains { if case .ended = $0 { return true } else { return false } })
        #expect(m.openTransactionCount == 0 && m.checkInvariants().isEmpty)
        #expect(m.commitFinished(p2.slot).count == 1)  // only a notice: nothing to finish twice
    }

    /// A prepared branch whose commit fails in the store is not rolled back by the broker (MetaQ
    /// answers XA_RBOTHER and rolls it back, breaking the global transaction's atomicity): it stays
    /// prepared, nothing is journaled, the manager is told to retry (XAER_RMFAIL), RECOVER lists
    /// it, and a later commit goes ahead.
    @Test func aPreparedBranchWhoseCommitFailsStaysPrepared() throws {
        var m = begun([(Self.xa, c1)])
        put(&m, Self.xa, from: c1, id: 1, at: 40)
        _ = m.handle(command(Self.xa, .prepare), from: c1, now: t0)
        for entryWritten in [false, true] {
            let p = try #require(plan(m.handle(command(Self.xa, .commitTwoPhase), from: c2, now: t0)))
            #expect(p.wasPrepared)
            let failed = m.commitFailed(p.slot, reason: "disk full", commitEntryWritten: entryWritten)
            #expect(journaled(failed).isEmpty, "nothing decided: no entry")
            #expect(answer(failed)?.contains("XAException:code=-7,msg=Commit of prepared transaction") == true, "\(failed)")
            #expect(!failed.contains { if case .ended = $0 { return true } else { return false } })
            #expect(m.state(of: p.slot) == .prepared)
            #expect(m.recoverList(uniqueQualifier: nil).map(\.key) == [Self.xa])
            #expect(m.checkInvariants().isEmpty)
        }
        let retried = try #require(plan(m.handle(command(Self.xa, .commitTwoPhase), from: c2, now: t0)))
        #expect(m.commitFinished(retried.slot).contains { if case .ended = $0 { return true } else { return false } })
        #expect(m.openTransactionCount == 0)
    }

    // MARK: - ROLLBACK, FORGET, RECOVER (§4.2)

    @Test("§4.2 ROLLBACK journals the rollback (when there was work) before answering 200 0")
    func rollback() {
        var m = begun([(Self.local, c1), (Self.xa, c1)])
        #expect(m.handle(command(Self.local, .rollback), from: c1, now: t0) == [.reply(c1, ResultResponse(code: 200, body: [], opaque: 7))])
        put(&m, Self.xa, from: c1, id: 5, at: 10)
        _ = m.handle(command(Self.xa, .prepare), from: c1, now: t0)
        let actions = m.handle(command(Self.xa, .rollback), from: c2, now: t0)
        #expect(actions == [
            .journal(.operation(type: .xaRollback, wasPrepared: false, transactionId: Self.xa, locations: []), force: true,
                     reply: c2, ResultResponse(code: 200, body: [], opaque: 7)),
            .ended(try! TransactionId.parse(Self.xa)!, firstEntry: TxJournalPosition(file: 1, offset: 10)),
        ])
        #expect(m.openTransactionCount == 0 && m.counters.txRollback == 2)
    }

    @Test("§4.2 FORGET: XA answers 200 0; a local key or null is XAER_NOTA")
    func forget() {
        var m = TransactionMachine()
        #expect(answer(m.handle(command(Self.xa, .forget), from: c1, now: t0)) == "result 200 0 7\r\n")
        let local = "XAException:code=-4,msg=\(Self.local) is not a valid xid"
        #expect(answer(m.handle(command(Self.local, .forget), from: c1, now: t0)) == "result 500 \(local.utf8.count) 7\r\n\(local)")
        let null = "XAException:code=-4,msg=null is not a valid xid"
        #expect(answer(m.handle(command("null", .forget), from: c1, now: t0)) == "result 500 \(null.utf8.count) 7\r\n\(null)")
    }

    @Test("§4.2 RECOVER lists prepared XA transactions (filtered by unique qualifier), keys joined by CRLF")
    func recover() {
        var m = begun([(Self.xa, c1), (Self.xa2, c2), ("XID:1:0d:03:XAMessageProducer-host1", c1)])
        #expect(answer(m.handle(command("null", .recover), from: c1, now: t0)) == "result 200 0 7\r\n")
        put(&m, Self.xa2, from: c2, id: 1, at: 0)
        put(&m, Self.xa, from: c1, id: 2, at: 50)
        _ = m.handle(command(Self.xa2, .prepare), from: c2, now: t0)
        _ = m.handle(command(Self.xa, .prepare), from: c1, now: t0)
        let all = "\(Self.xa)\r\n\(Self.xa2)"  // creation order
        #expect(answer(m.handle(command("null", .recover), from: c1, now: t0)) == "result 200 \(all.utf8.count) 7\r\n\(all)")
        #expect(answer(m.handle(command("null", .recover, qualifier: "XAMessageProducer-host2"), from: c1, now: t0))
                == "result 200 \(Self.xa2.utf8.count) 7\r\n\(Self.xa2)")
        #expect(answer(m.handle(command("null", .recover, qualifier: "nobody"), from: c1, now: t0)) == "result 200 0 7\r\n")
    }

    // MARK: - Scope (§4.1, §4.6)

    @Test("local transactions belong to their connection; XA transactions to the broker")
    func scope() throws {
        var m = begun([(Self.local, c1), (Self.xa, c1)])
        let gone = "Local transaction '\(Self.local)' has not been started."
        #expect(m.admitPut(putCommand(Self.local), from: c2) == .refused(code: 500, text: gone))
        #expect(answer(m.handle(command(Self.local, .commitOnePhase), from: c2, now: t0)) == "result 500 \(gone.utf8.count) 7\r\n\(gone)")
        // c2 may begin its own transaction with the same key.
        _ = m.handle(command(Self.local, .begin), from: c2, now: t0)
        #expect(m.openTransactionCount == 3)
        put(&m, Self.xa, from: c2, id: 1, at: 0)
        #expect(plan(m.handle(command(Self.xa, .commitOnePhase), from: c2, now: t0)) != nil)
    }

    @Test("unlike MetaQ (§4.6, §11.5), a closed connection's unfinished local transactions are rolled back")
    func connectionClose() throws {
        var m = begun([(Self.local, c1), ("TX:s:2", c1), (Self.local, c2), (Self.xa, c1)])
        put(&m, Self.local, from: c1, id: 1, at: 0)
        put(&m, Self.xa, from: c1, id: 2, at: 30)
        let actions = m.connectionClosed(c1)
        #expect(actions == [
            .journal(.operation(type: .localRollback, wasPrepared: false, transactionId: Self.local, locations: []), force: true,
                     reply: nil, nil),
            .ended(try! TransactionId.parse(Self.local)!, firstEntry: TxJournalPosition(file: 1, offset: 0)),
        ])
        #expect(m.slots.map(\.description) == ["conn#2:\(Self.local)", "broker:\(Self.xa)"])
        #expect(m.counters.txRollback == 0)
        #expect(m.checkInvariants().isEmpty)
    }

    @Test("a commit in progress survives its connection's close, and its answer is dropped")
    func closeWhileCommitting() throws {
        var m = begun([(Self.local, c1)])
        put(&m, Self.local, from: c1, id: 1, at: 0)
        let p = try #require(plan(m.handle(command(Self.local, .commitOnePhase), from: c1, now: t0)))
        #expect(m.connectionClosed(c1).isEmpty)
        #expect(m.commitFinished(p.slot) == [.ended(p.transactionId, firstEntry: TxJournalPosition(file: 1, offset: 0))])
    }

    // MARK: - Timeouts (§4.6)

    @Test("§4.6 BEGIN's timeout (capped at maxTxTimeoutInSeconds) rolls back an unprepared transaction; a prepared one stays")
    func timeouts() throws {
        var m = TransactionMachine(settings: .init(maxTxTimeoutInSeconds: 60))
        _ = m.handle(command(Self.local, .begin, timeout: 5), from: c1, now: t0)
        _ = m.handle(command(Self.xa, .begin, timeout: 3600), from: c1, now: t0)
        _ = m.handle(command(Self.xa2, .begin, timeout: 1), from: c1, now: t0)
        _ = m.handle(command("TX:s:9", .begin, timeout: 0), from: c1, now: t0)
        #expect(m.armedTimerCount == 3)
        #expect(m.nextDeadline == t0.adding(milliseconds: 1000))
        put(&m, Self.xa2, from: c1, id: 1, at: 0)
        _ = m.handle(command(Self.xa2, .prepare), from: c1, now: t0)
        #expect(m.nextDeadline == t0.adding(milliseconds: 5000))
        #expect(m.timerFired(now: t0.adding(milliseconds: 4999)).isEmpty)
        put(&m, Self.local, from: c1, id: 2, at: 40)
        let fired = m.timerFired(now: t0.adding(milliseconds: 5000))
        #expect(journaled(fired) == [.operation(type: .localRollback, wasPrepared: false, transactionId: Self.local, locations: [])])
        #expect(m.nextDeadline == t0.adding(milliseconds: 60_000))
        let xaFired = m.timerFired(now: t0.adding(milliseconds: 3_600_000))
        #expect(journaled(xaFired).isEmpty)  // no work: nothing to journal
        #expect(m.slots.map(\.id.key).sorted() == [Self.xa2, "TX:s:9"].sorted())
        #expect(m.state(of: TxSlot(connection: nil, id: try! TransactionId.parse(Self.xa2)!)) == .prepared)
        #expect(m.armedTimerCount == 0 && m.checkInvariants().isEmpty)
    }

    @Test("at maxTxTimeoutTimerCapacity a BEGIN with a timeout is refused with the timer's text and not created")
    func timerCapacity() {
        var m = TransactionMachine(settings: .init(maxTxTimeoutTimerCapacity: 2))
        _ = m.handle(command("TX:s:1", .begin, timeout: 5), from: c1, now: t0)
        _ = m.handle(command("TX:s:2", .begin, timeout: 5), from: c1, now: t0)
        let text = "Timer size 2 is great than maxTimerCapacity 2"
        #expect(answer(m.handle(command("TX:s:3", .begin, timeout: 5), from: c1, now: t0)) == "result 500 \(text.utf8.count) 7\r\n\(text)")
        #expect(m.openTransactionCount == 2)
        #expect(answer(m.handle(command("TX:s:3", .begin), from: c1, now: t0)) == "result 200 0 7\r\n")
    }

    // MARK: - Puts and bounds (§1.4.1)

    @Test("§1.4.1 partition -1 inside a transaction is refused; a prepared transaction takes no puts")
    func putRules() {
        var m = begun([(Self.xa, c1)])
        #expect(m.admitPut(putCommand(Self.xa, partition: -1), from: c1)
                == .refused(code: 500, text: "Invalid partition for transaction command:-1"))
        put(&m, Self.xa, from: c1, id: 1, at: 0)
        _ = m.handle(command(Self.xa, .prepare), from: c1, now: t0)
        #expect(m.admitPut(putCommand(Self.xa), from: c1)
                == .refused(code: 500, text: "XA transaction '\(Self.xa)' is prepared: it takes no more messages."))
        #expect(m.admitPut(putCommand(Self.xa2), from: c1)
                == .refused(code: 500, text: "XA transaction '\(Self.xa2)' has not been started."))
        #expect(m.admitPut(putCommand("TX:bad"), from: c1)
                == .refused(code: 500, text: "Illegal transaction key:TX:bad (a local key has 3 parts separated by ':')"))
    }

    @Test("bounds: messages and bytes per transaction, bytes held by all, open transactions")
    func bounds() {
        var m = TransactionMachine(settings: .init(maxOpenTransactions: 2, maxMessagesPerTransaction: 2,
                                                   maxBytesPerTransaction: 10, maxHeldBytes: 15))
        _ = m.handle(command("TX:s:1", .begin), from: c1, now: t0)
        _ = m.handle(command("TX:s:2", .begin), from: c1, now: t0)
        #expect(answer(m.handle(command("TX:s:3", .begin), from: c1, now: t0))?.contains("already holds 2 open transactions") == true)
        put(&m, "TX:s:1", from: c1, body: "12345", id: 1, at: 0)
        guard case .refused(_, let tooBig) = m.admitPut(putCommand("TX:s:1", body: "123456"), from: c1) else { Issue.record(); return }
        #expect(tooBig.contains("would hold 11 bytes, more than 10 (maxBytesPerTransaction)"))
        put(&m, "TX:s:1", from: c1, body: "1", id: 2, at: 10)
        guard case .refused(_, let tooMany) = m.admitPut(putCommand("TX:s:1", body: ""), from: c1) else { Issue.record(); return }
        #expect(tooMany.contains("already holds 2 messages"))
        put(&m, "TX:s:2", from: c1, body: "123456789", id: 3, at: 20)
        guard case .refused(_, let held) = m.admitPut(putCommand("TX:s:2", body: "1"), from: c1) else { Issue.record(); return }
        #expect(held.contains("holds 15 bytes of uncommitted transactions; 1 more would exceed 15"))
        #expect(m.heldBytes == 15 && m.checkInvariants().isEmpty)
    }

    @Test("an admitted put reserves its bytes; abandoned it releases them; recorded after a rollback it is refused")
    func putLifecycle() {
        var m = begun([(Self.local, c1)])
        guard case .admitted(let t1) = m.admitPut(putCommand(Self.local, body: "abc"), from: c1) else { Issue.record(); return }
        #expect(m.heldBytes == 3)
        // PREPARE/COMMIT wait for the put's answer.
        #expect(answer(m.handle(command(Self.local, .commitOnePhase), from: c1, now: t0))?.contains("put(s) not yet stored") == true)
        m.putAbandoned(t1)
        #expect(m.heldBytes == 0 && m.checkInvariants().isEmpty)
        guard case .admitted(let t2) = m.admitPut(putCommand(Self.local, body: "abc"), from: c1) else { Issue.record(); return }
        _ = m.handle(command(Self.local, .rollback), from: c1, now: t0)
        #expect(m.recordPut(t2, messageId: 1, journaledAt: TxJournalPosition(file: 1, offset: 0))
                == .refused(text: "Local transaction '\(Self.local)' has not been started."))
        #expect(m.heldBytes == 0 && m.checkInvariants().isEmpty)
    }

    // MARK: - Replay (§4.5)

    func append(_ key: String, id: Int64, partition: Int32 = 0, body: String = "m") -> TxJournalEntry {
        let put = PutCommand(topic: "test", partition: partition, flag: 0, checksum: -1, transactionKey: key,
                             body: Array(body.utf8), opaque: 0)
        return .appendMessage(messageId: id, putCommand: Frame.put(put).encoded())
    }

    @Test("§4.5 replay: in flight → rolled back, prepared → restored (RECOVER lists it), committed and rolled back → gone")
    func replay() throws {
        var m = TransactionMachine()
        let committed = "TX:s:1", inFlight = "TX:s:2", rolledBack = "TX:s:3"
        let p = { (o: Int64) in TxJournalPosition(file: 1, offset: o) }
        var out: [TxAction] = []
        out += m.replay(append(committed, id: 1, partition: 1, body: "a"), at: p(0))
        out += m.replay(append(inFlight, id: 2), at: p(100))
        out += m.replay(append(Self.xa, id: 3), at: p(200))
        out += m.replay(append(committed, id: 4, partition: 0, body: "b"), at: p(300))
        out += m.replay(append(rolledBack, id: 5), at: p(400))
        out += m.replay(append(Self.xa2, id: 6), at: p(500))
        out += m.replay(.operation(type: .xaPrepare, wasPrepared: false, transactionId: Self.xa, locations: []), at: p(600))
        out += m.replay(.operation(type: .xaPrepare, wasPrepared: false, transactionId: Self.xa2, locations: []), at: p(650))
        let location = TxPartitionLocation(offset: 50, length: 21, checksum: 1, topic: "test", partition: 0)
        let commit = m.replay(.operation(type: .localCommit, wasPrepared: false, transactionId: committed, locations: [location]), at: p(700))
        out += m.replay(.operation(type: .localRollback, wasPrepared: false, transactionId: rolledBack, locations: []), at: p(800))
        out += m.replay(.appendMessage(messageId: 9, putCommand: Array("garbage\r\n".utf8)), at: p(900))
        #expect(out.filter { if case .started = $0 { return true } else { return false } }.count == 5)
        #expect(out.contains { if case .notice(let t) = $0 { return t.contains("APPEND_MSG of message 9") } else { return false } })

        guard case .verifyCommit(let verify) = commit.first else { Issue.record("no verifyCommit"); return }
        #expect(verify.locations == [location] && verify.position == p(700))
        #expect(verify.plan?.batches.map(\.partition) == [TopicPartition("test", 0), TopicPartition("test", 1)])
        #expect(commit.last == .ended(try #require(try TransactionId.parse(committed)), firstEntry: p(0)))
        #expect(m.oldestOpenPosition == p(100))

        let finish = m.finishReplay()
        #expect(journaled(finish) == [.operation(type: .localRollback, wasPrepared: false, transactionId: inFlight, locations: [])])
        #expect(m.oldestOpenPosition == p(200))
        #expect(m.recoverList(uniqueQualifier: nil).map(\.key) == [Self.xa, Self.xa2])
        #expect(answer(m.handle(command("null", .recover, qualifier: "XAMessageProducer-host2"), from: c1, now: t0))
                == "result 200 \(Self.xa2.utf8.count) 7\r\n\(Self.xa2)")
        // A transaction manager finishes the prepared ones from any connection.
        let p2 = try #require(plan(m.handle(command(Self.xa, .commitTwoPhase), from: c2, now: t0)))
        #expect(p2.wasPrepared && p2.messageCount == 1)
        #expect(journaled(m.handle(command(Self.xa2, .rollback), from: c1, now: t0)).count == 1)
        #expect(m.checkInvariants().isEmpty)
    }

    @Test("replay of a commit whose messages precede the replayed log has no plan; unknown rollbacks are ignored")
    func replayOrphans() {
        var m = TransactionMachine()
        let a = m.replay(.operation(type: .xaCommit, wasPrepared: true, transactionId: Self.xa, locations: []),
                         at: TxJournalPosition(file: 2, offset: 0))
        #expect(a == [.verifyCommit(TxReplayedCommit(transactionId: Self.xa, operation: .xaCommit, wasPrepared: true,
                                                      locations: [], position: TxJournalPosition(file: 2, offset: 0), plan: nil))])
        #expect(m.replay(.operation(type: .localRollback, wasPrepared: false, transactionId: "TX:s:1", locations: []),
                         at: TxJournalPosition(file: 2, offset: 10)).isEmpty)
        #expect(m.finishReplay().isEmpty)
    }

    // MARK: - Heuristic completion (§4.5)

    @Test("heuristic commit/rollback of prepared XA transactions: listed by RECOVER, answered XA_HEUR*, until FORGET")
    func heuristics() throws {
        var m = begun([(Self.xa, c1), (Self.xa2, c1)])
        put(&m, Self.xa, from: c1, id: 1, at: 0)
        put(&m, Self.xa2, from: c1, id: 2, at: 10)
        #expect(throws: TxOperatorError.self) { try m.heuristicCommit(Self.xa) }  // not prepared yet
        _ = m.handle(command(Self.xa, .prepare), from: c1, now: t0)
        _ = m.handle(command(Self.xa2, .prepare), from: c1, now: t0)
        let p = try #require(plan(try m.heuristicCommit(Self.xa)))
        #expect(p.heuristic && p.wasPrepared)
        #expect(m.commitFinished(p.slot) == [.ended(p.transactionId, firstEntry: TxJournalPosition(file: 1, offset: 0))])
        let rb = try m.heuristicRollback(Self.xa2)
        #expect(journaled(rb) == [.operation(type: .xaRollback, wasPrepared: false, transactionId: Self.xa2, locations: [])])
        #expect(m.counters.txCommit == 1 && m.counters.txRollback == 1)

        let all = "\(Self.xa)\r\n\(Self.xa2)"
        #expect(answer(m.handle(command("null", .recover), from: c1, now: t0)) == "result 200 \(all.utf8.count) 7\r\n\(all)")
        let heurCom = "XAException:code=7,msg=XA transaction '\(Self.xa)' has been heuristically committed."
        #expect(answer(m.handle(command(Self.xa, .commitTwoPhase), from: c1, now: t0)) == "result 500 \(heurCom.utf8.count) 7\r\n\(heurCom)")
        let heurRb = "XAException:code=6,msg=XA transaction '\(Self.xa2)' has been heuristically rolled back."
        #expect(answer(m.handle(command(Self.xa2, .rollback), from: c1, now: t0)) == "result 500 \(heurRb.utf8.count) 7\r\n\(heurRb)")

        // The list is exported and imported as plain values.
        let saved = m.heuristicRecords
        var restarted = TransactionMachine()
        #expect(restarted.importHeuristicRecords(saved + [TxHeuristicRecord(id: .local(sessionId: "s", number: 1), outcome: .committed)]).count == 1)
        #expect(restarted.heuristicRecords == saved)
        #expect(answer(restarted.handle(command(Self.xa, .forget), from: c1, now: t0)) == "result 200 0 7\r\n")
        #expect(restarted.recoverList(uniqueQualifier: nil).map(\.key) == [Self.xa2])
        #expect(restarted.checkInvariants().isEmpty)
    }

    // MARK: - Random operations

    @Test("a seeded random mix of every operation keeps the invariants after every step", arguments: [1, 2, 3, 4, 5] as [UInt64])
    func randomOperations(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var m = TransactionMachine(settings: .init(maxTxTimeoutInSeconds: 3, maxTxTimeoutTimerCapacity: 4, maxOpenTransactions: 6,
                                                   maxMessagesPerTransaction: 4, maxBytesPerTransaction: 40, maxHeldBytes: 100,
                                                   maxHeuristicRecords: 2))
        let keys = ["TX:s:1", "TX:s:2", "TX:t:1", "XID:1:01:01:q1", "XID:1:02:02:q2", "XID:2:03:03:q1"]
        let types: [TransactionType] = [.begin, .prepare, .commitOnePhase, .commitTwoPhase, .rollback, .recover, .forget, .end]
        var tickets: [TxPutTicket] = []
        var plans: [TxCommitPlan] = []
        var now = t0
        var offset: Int64 = 0
        var plansSeen = 0, recorded = 0, prepared = 0
        func pick<T>(_ xs: [T]) -> T { xs[Int(rng.next() % UInt64(xs.count))] }
        for step in 0..<3000 {
            let c = ConnectionID(rng.next() % 2)
            let key = pick(keys)
            switch rng.next() % 12 {
            case 0, 1, 2:
                // BEGIN half the time, the other commands share the rest.
                let type = rng.next() % 2 == 0 ? .begin : pick(types)
                let timeout: Int32? = type == .begin && rng.next() % 2 == 0 ? Int32(rng.next() % 5) : nil
                for action in m.handle(command(key, type, timeout: timeout), from: c, now: now) {
                    if case .commit(let p) = action { plans.append(p); plansSeen += 1 }
                    if case .journal(.operation(.xaPrepare, _, _, _), _, _, _) = action { prepared += 1 }
                }
            case 3, 4, 5:
                if case .admitted(let t) = m.admitPut(putCommand(key, partition: Int32(rng.next() % 7) - 1,
                                                                 body: String(repeating: "x", count: Int(rng.next() % 15))), from: c) {
                    // Most puts are journaled at once; some stay pending across other operations.
                    if rng.next() % 4 == 0 {
                        tickets.append(t)
                    } else {
                        offset += 50
                        if case .recorded = m.recordPut(t, messageId: Int64(step), journaledAt: TxJournalPosition(file: 1, offset: offset)) {
                            recorded += 1
                        }
                    }
                }
            case 6:
                guard !tickets.isEmpty else { continue }
                let t = tickets.remove(at: Int(rng.next() % UInt64(tickets.count)))
                if rng.next() % 4 == 0 {
                    m.putAbandoned(t)
                } else {
                    offset += 50
                    if case .recorded = m.recordPut(t, messageId: Int64(step), journaledAt: TxJournalPosition(file: 1, offset: offset)) {
                        recorded += 1
                    }
                }
            case 7:
                guard !plans.isEmpty else { continue }
                let p = plans.remove(at: Int(rng.next() % UInt64(plans.count)))
                switch rng.next() % 3 {
                case 0: _ = m.commitFailed(p.slot, reason: "x", commitEntryWritten: rng.next() % 2 == 0)
                default: _ = m.commitFinished(p.slot)
                }
            case 8:
                if rng.next() % 8 == 0 { _ = m.connectionClosed(c) }
            case 9:
                now = now.adding(milliseconds: Int64(rng.next() % 2000))
                _ = m.timerFired(now: now)
            case 10:
                if let p = try? m.heuristicCommit(key), case .commit(let plan)? = p.first { plans.append(plan) }
            default:
                _ = try? m.heuristicRollback(key)
            }
            let problems = m.checkInvariants()
            #expect(problems.isEmpty, "seed \(seed) step \(step): \(problems)")
            if !problems.isEmpty { return }
        }
        // The mix reached the interesting paths.
        #expect(plansSeen > 10 && recorded > 50 && prepared > 5, "\(plansSeen) plans, \(recorded) puts, \(prepared) prepares")
    }
}
