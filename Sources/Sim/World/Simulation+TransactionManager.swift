import ProtocolCore

/// The transaction manager of the XA worlds (reference §4.2, §4.5): BEGIN, puts and END on
/// each branch, PREPARE of every branch, a decision written to its durable log, then
/// COMMIT_TWO_PHASE or ROLLBACK of each branch. It may crash between prepare and commit (before
/// or after logging its decision, or halfway through the branches); back up, it asks every broker
/// RECOVER from new connections and finishes each listed branch as its log says (no decision:
/// rollback). A finish whose answer is lost makes it ask again. Checked on the way: a prepared
/// branch is listed until it is finished, never after a finish answered 200, and never finished
/// twice.
extension Simulation {
    func managerNext(_ m: SimTxManager) {
        guard m.up, !m.busy else { return }
        if m.recoveryOwed { return managerRecover(m) }
        if m.started < m.total { return managerBegin(m) }
        // Its work is done: once the faults stop, rounds of RECOVER until one finds nothing.
        if inLiveness, !managerCleanRoundHolds(m) { return managerRecover(m) }
        if !inLiveness { schedule(.transactions(.managerNext(m.index)), afterNs: 200_000_000) }
    }

    func managerRestart(_ m: SimTxManager) {
        guard !m.up else { return }
        m.up = true
        m.recoveryOwed = true
        trace(.transactionManager, Int64(m.index), 0, "\(m.name) restarts and recovers")
        managerNext(m)
    }

    /// What keeps the manager from being settled after the faults stopped; nil when settled.
    func managerUnsettled(_ m: SimTxManager) -> String? {
        if !m.up { return "down" }
        if m.started < m.total { return "\(m.started)/\(m.total) global transactions begun" }
        if m.busy { return "busy" }
        if m.recoveryOwed { return "a RECOVER round owed" }
        if !managerCleanRoundHolds(m) { return "no RECOVER round since the faults stopped found every broker clean" }
        return nil
    }

    /// A round that found nothing to finish began at least a second into the liveness phase (every
    /// request stalled by a partition has arrived by then) and no broker restarted since.
    func managerCleanRoundHolds(_ m: SimTxManager) -> Bool {
        guard inLiveness, let at = m.cleanRoundAtNs, at >= livenessStartNs + 1_000_000_000 else { return false }
        return brokers.allSatisfy(\.isUp) && m.cleanRoundIncarnations == brokers.map(\.incarnation)
    }

    // MARK: One global transaction

    private func managerBegin(_ m: SimTxManager) {
        guard let spec = options.transactions else { return }
        m.busy = true
        m.started += 1
        let g = m.globals.count
        var gtrid = String(UInt64(m.index + 1) << 32 | UInt64(m.started), radix: 16)
        if gtrid.count % 2 == 1 { gtrid = "0" + gtrid }
        var brokerIds = [txRng.int(in: 0..<options.brokers)]
        if options.brokers > 1 && txRng.chance(0.5) {
            brokerIds.append((brokerIds[0] + 1 + txRng.int(in: 0..<(options.brokers - 1))) % options.brokers)
        }
        var branches: [SimTxRecord] = []
        for (i, b) in brokerIds.enumerated() {
            let tx = SimTxRecord(kind: .branch(global: g), key: "XID:1:\(gtrid):0\(i):\(m.qualifier)", broker: b, owner: m.name)
            tx.planned = txRng.int(in: 1...spec.maxMessages)
            txRecords.append(tx)
            txByKey[tx.key] = tx
            branches.append(tx)
        }
        m.globals.append(.init(gtrid: gtrid, branches: branches))
        counters.txBegun += 1
        trace(.transactionManager, Int64(m.index), Int64(g), "\(m.name) begins \(gtrid) on broker(s) \(brokerIds)")
        managerBranch(m, g, 0, m.incarnation)
    }

    /// BEGIN, the puts and END of branch `i`, then the next branch; after the last, the prepares.
    private func managerBranch(_ m: SimTxManager, _ g: Int, _ i: Int, _ incarnation: Int) {
        let branches = m.globals[g].branches
        guard i < branches.count else { return managerPrepare(m, g, 0, incarnation) }
        let tx = branches[i]
        let link = m.links[tx.broker]
        let timeout: Int32? = txRng.chance(options.transactions?.timeoutChance ?? 0) ? Int32(txRng.int(in: 1...2)) : nil
        func putNext() {
            guard tx.puts.count < tx.planned else {
                txSendOneWay(link, .transaction(TransactionCommand(transactionKey: tx.key, sessionId: "sim", type: .end, opaque: 0)))
                return managerBranch(m, g, i + 1, incarnation)
            }
            m.sequence += 1
            txPut(tx, link, keyPrefix: m.keyPrefix, sequence: m.sequence) { [unowned self] ok, why in
                guard m.incarnation == incarnation else { return }
                ok ? putNext() : managerAbort(m, g, incarnation, why)
            }
        }
        txRequest(link, Self.txCommand(tx.key, .begin, timeout: timeout)) { [unowned self] response in
            guard m.incarnation == incarnation else { return }
            guard response?.code == 200 else { return managerAbort(m, g, incarnation, "BEGIN: \(response.map(Self.text) ?? "lost")") }
            putNext()
        }
    }

    private func managerPrepare(_ m: SimTxManager, _ g: Int, _ i: Int, _ incarnation: Int) {
        let branches = m.globals[g].branches
        guard i < branches.count else { return managerDecide(m, g, incarnation) }
        let tx = branches[i]
        txRequest(m.links[tx.broker], Self.txCommand(tx.key, .prepare)) { [unowned self] response in
            guard m.incarnation == incarnation else { return }
            guard let response else {
                tx.prepareUnknown = true
                return managerAbort(m, g, incarnation, "PREPARE of \(tx.key) lost")
            }
            guard response.code == 200, response.body == Array("0".utf8) else {
                return managerAbort(m, g, incarnation, "PREPARE: \(Self.text(response))")
            }
            tx.prepared = true
            counters.txPrepared += 1
            managerPrepare(m, g, i + 1, incarnation)
        }
    }

    /// Every branch prepared: the decision (logged durably), sometimes a crash, then the finishes.
    private func managerDecide(_ m: SimTxManager, _ g: Int, _ incarnation: Int) {
        guard let spec = options.transactions else { return }
        let global = m.globals[g]
        let commit = !txRng.chance(spec.rollbackChance)
        let crash = inLiveness ? 0 : spec.managerCrashChance / 3
        if txRng.chance(crash) { return managerCrash(m, "with \(global.gtrid) prepared, before logging a decision") }
        m.log[global.gtrid] = commit
        trace(.transactionManager, Int64(m.index), commit ? 1 : 0, "\(m.name) logs \(commit ? "commit" : "rollback") of \(global.gtrid)")
        if txRng.chance(crash) { return managerCrash(m, "after logging its decision on \(global.gtrid)") }
        func finish(_ i: Int) {
            guard i < global.branches.count else {
                if commit { counters.txCommitted += 1 } else { counters.txRolledBack += 1 }
                return managerIdle(m, after: Int64(txRng.int(in: options.produceIntervalMs)) * 1_000_000 + 1)
            }
            if i > 0 && txRng.chance(crash) { return managerCrash(m, "after finishing \(i) of the branches of \(global.gtrid)") }
            managerFinish(m, global.branches[i], commit: commit, incarnation) { finish(i + 1) }
        }
        finish(0)
    }

    /// Something failed before a decision: no decision is logged (that is rollback); each branch
    /// is rolled back now, as far as it goes (what stays prepared, RECOVER lists later).
    private func managerAbort(_ m: SimTxManager, _ g: Int, _ incarnation: Int, _ why: String) {
        let branches = m.globals[g].branches
        trace(.transactionManager, Int64(m.index), Int64(g), "\(m.name) aborts \(m.globals[g].gtrid): \(why)")
        counters.txRefused += 1
        func rollback(_ i: Int) {
            guard i < branches.count else { return managerIdle(m, after: 1_000_000) }
            managerFinish(m, branches[i], commit: false, incarnation) { rollback(i + 1) }
        }
        rollback(0)
    }

    private func managerIdle(_ m: SimTxManager, after delay: Int64) {
        m.busy = false
        schedule(.transactions(.managerNext(m.index)), afterNs: delay)
    }

    /// COMMIT_TWO_PHASE or ROLLBACK of one branch; `then` runs after its answer (not after a crash).
    private func managerFinish(_ m: SimTxManager, _ tx: SimTxRecord, commit: Bool, _ incarnation: Int,
                               recovered: Bool = false, then: @escaping () -> Void) {
        if commit { tx.commitSent = true }
        txRequest(m.links[tx.broker], Self.txCommand(tx.key, commit ? .commitTwoPhase : .rollback)) { [unowned self] response in
            guard m.incarnation == incarnation else { return }
            settleFinish(m, tx, commit: commit, response)
            if recovered && response?.code == 200 { counters.tmRecoveredFinished += 1 }
            then()
        }
    }

    private func settleFinish(_ m: SimTxManager, _ tx: SimTxRecord, commit: Bool, _ response: ResultResponse?) {
        let what = commit ? "COMMIT_TWO_PHASE" : "ROLLBACK"
        guard let response else {
            tx.finishUnresolved = true
            m.recoveryOwed = true
            return
        }
        if response.code == 200 {
            tx.finishes += 1
            tx.finished = true
            tx.finishUnresolved = false
            tx.outcome = commit ? .committed : .notCommitted("rolled back")
            if tx.finishes > 1 { fail("\(tx.key) on broker\(tx.broker) was finished twice (a second \(what) answered 200)") }
            return
        }
        let text = Self.text(response)
        if commit && text.contains("code=104,") {
            // XA_RBOTHER: the broker rolled a prepared branch back on its own. MetaQ does that
            // when the store fails the commit; it breaks the global transaction (the other
            // branches commit), so ours keeps the branch prepared and answers XAER_RMFAIL.
            return fail("\(tx.key) on broker\(tx.broker) was prepared, yet the broker rolled it back: \(text)")
        }
        if text.contains("code=-4,") {
            // XAER_NOTA: unknown to the broker — fine when it never prepared or an earlier finish
            // (whose answer was lost) took effect; a prepared branch must not vanish otherwise.
            if tx.finishUnresolved || !tx.prepared {
                tx.finished = true
                tx.finishUnresolved = false
                return
            }
            return fail("\(tx.key) was prepared on broker\(tx.broker) and never finished, yet \(what) answered \(text)")
        }
        // Refused for now (a failed journal, a heuristic hazard, a commit in progress): the next
        // RECOVER round decides.
        tx.finishUnresolved = true
        m.recoveryOwed = true
    }

    private func managerCrash(_ m: SimTxManager, _ why: String) {
        counters.tmCrashes += 1
        trace(.transactionManager, Int64(m.index), -1, "\(m.name) crashes \(why)")
        m.up = false
        m.busy = false
        m.incarnation += 1
        for link in m.links {
            link.waiting = nil
            txLinkClose(link)
        }
        schedule(.transactions(.managerRestart(m.index)), afterNs: Int64(txRng.int(in: 5...300)) * 1_000_000)
    }

    // MARK: Recovery

    /// RECOVER on every broker in turn (new connections after a crash), each listed branch finished
    /// as the log says. A round where every broker answered and listed nothing is clean.
    private func managerRecover(_ m: SimTxManager) {
        m.busy = true
        m.recoveryOwed = false
        let incarnation = m.incarnation
        let roundStart = nowNs
        var clean = true
        var incarnations: [Int] = []
        func ask(_ b: Int) {
            guard b < brokers.count else {
                if clean && inLiveness {
                    m.cleanRoundAtNs = roundStart
                    m.cleanRoundIncarnations = incarnations
                } else {
                    m.cleanRoundAtNs = nil
                }
                return managerIdle(m, after: clean ? 50_000_000 : 30_000_000)
            }
            incarnations.append(brokers[b].incarnation)
            txRequest(m.links[b], Self.txCommand("null", .recover, qualifier: m.qualifier)) { [unowned self] response in
                guard m.incarnation == incarnation else { return }
                guard let response, response.code == 200 else {
                    clean = false
                    m.recoveryOwed = true
                    return ask(b + 1)
                }
                let keys = String(decoding: response.body, as: UTF8.self).split(separator: "\r\n").map(String.init)
                let listed = checkRecoverList(m, broker: b, keys)
                if !listed.isEmpty { clean = false }
                func finish(_ i: Int) {
                    guard i < listed.count else { return ask(b + 1) }
                    let tx = listed[i]
                    guard case .branch(let g) = tx.kind else { return finish(i + 1) }
                    let commit = m.log[m.globals[g].gtrid] ?? false
                    trace(.transactionManager, Int64(m.index), commit ? 1 : 0,
                          "\(m.name) finishes recovered \(tx.key) on broker\(b): \(commit ? "commit" : "rollback")")
                    managerFinish(m, tx, commit: commit, incarnation, recovered: true) { finish(i + 1) }
                }
                finish(0)
            }
        }
        ask(0)
    }

    /// What RECOVER of broker `b` listed, checked against what the manager did there: every
    /// listed key is one of its branches on that broker not finished with a 200; every branch
    /// prepared there and not finished is listed; an unresolved finish not listed took effect.
    private func checkRecoverList(_ m: SimTxManager, broker b: Int, _ keys: [String]) -> [SimTxRecord] {
        var listed: [SimTxRecord] = []
        var listedKeys: Set<String> = []
        for key in keys {
            guard let tx = txByKey[key], tx.owner == m.name, tx.broker == b else {
                fail("RECOVER of broker\(b) for \(m.qualifier) listed \(key), which is no branch of \(m.name) there")
                continue
            }
            if tx.finishes > 0 {
                fail("RECOVER of broker\(b) lists \(key), whose finish was answered 200 (a prepared branch must be finished exactly once)")
                continue
            }
            tx.finished = false
            listed.append(tx)
            listedKeys.insert(key)
        }
        for tx in txRecords where tx.owner == m.name && tx.broker == b && !listedKeys.contains(tx.key) {
            if tx.finishUnresolved {
                tx.finishUnresolved = false
                tx.finished = true
            } else if tx.prepared && !tx.finished {
                fail("\(tx.key) was prepared on broker\(b) and not finished, yet RECOVER does not list it")
            }
        }
        return listed
    }
}
