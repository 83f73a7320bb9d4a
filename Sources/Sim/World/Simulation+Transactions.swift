import ProtocolCore

/// The transactional producers and transaction managers (reference §4), speaking the
/// `transaction` and `put … <txKey>` commands to the brokers as MetaQ's client does. Each link
/// has one request in flight; a request unanswered within its timeout closes the connection and
/// counts as lost. Everything they decide is drawn from the transactions' own stream.
extension Simulation {
    enum TxEvent {
        case localNext(Int)
        /// The pause between two puts (or before the end) of a local transaction is over.
        case localStep(Int, tx: Int)
        case timeout(client: Int, opaque: Int32)
        case managerNext(Int)
        case managerRestart(Int)
    }

    static let txRequestTimeoutMs: Int64 = 600

    func startTransactions() {
        guard let spec = options.transactions else { return }
        let firstPrefix = options.producers + (options.ordered?.producers ?? 0) + (options.routed?.producers ?? 0)
        for i in 0..<spec.localProducers {
            let link = SimTxLink(client: nextClient, broker: txRng.int(in: 0..<options.brokers))
            txLinks[link.client] = link
            nextClient += 1
            txLocalProducers.append(SimTxLocalProducer(index: i, keyPrefix: firstPrefix + i, total: spec.localTransactions,
                                                       link: link))
            schedule(.transactions(.localNext(i)), afterNs: Int64(txRng.int(in: 0...50)) * 1_000_000)
        }
        for i in 0..<spec.managers {
            var links: [SimTxLink] = []
            for b in 0..<options.brokers {
                let link = SimTxLink(client: nextClient, broker: b)
                txLinks[link.client] = link
                links.append(link)
                nextClient += 1
            }
            txManagers.append(SimTxManager(index: i, keyPrefix: firstPrefix + spec.localProducers + i,
                                           total: spec.globalTransactions, links: links))
            schedule(.transactions(.managerNext(i)), afterNs: Int64(txRng.int(in: 0...50)) * 1_000_000)
        }
    }

    func dispatch(_ event: TxEvent) {
        switch event {
        case .localNext(let p): localNext(txLocalProducers[p])
        case .localStep(let p, let tx): localStep(txLocalProducers[p], tx: tx)
        case .timeout(let client, let opaque):
            guard let link = txLinks[client], link.waiting?.opaque == opaque else { return }
            trace(.transaction, Int64(client), Int64(opaque), "tx client \(client): request \(opaque) timed out")
            txLinkLost(link)
        case .managerNext(let m): managerNext(txManagers[m])
        case .managerRestart(let m): managerRestart(txManagers[m])
        }
    }

    // MARK: Links

    /// Sends the request `make` builds (its opaque given) and calls `then` with its answer, or
    /// with nil when the connection is lost or the answer does not come in time.
    func txRequest(_ link: SimTxLink, _ make: (Int32) -> Frame, then: @escaping (ResultResponse?) -> Void) {
        let opaque = link.nextOpaque
        link.nextOpaque += 1
        let frame = make(opaque)
        link.waiting = (opaque, then)
        schedule(.transactions(.timeout(client: link.client, opaque: opaque)), afterNs: Self.txRequestTimeoutMs * 1_000_000)
        if link.connected, let connection = link.connection {
            network.sendToBroker(connection, frame.encoded())
        } else {
            link.pendingFrame = frame
            if link.connection == nil {
                link.decoder = FrameDecoder()
                link.connection = network.connect(client: link.client, broker: link.broker)
            }
        }
    }

    /// A request without an answer (END): sent only on an open connection.
    func txSendOneWay(_ link: SimTxLink, _ frame: Frame) {
        guard link.connected, let connection = link.connection else { return }
        network.sendToBroker(connection, frame.encoded())
    }

    func txLinkConnected(_ link: SimTxLink) {
        link.connected = true
        if let frame = link.pendingFrame, let connection = link.connection {
            link.pendingFrame = nil
            network.sendToBroker(connection, frame.encoded())
        }
    }

    /// The connection is gone (or given up): the request in flight is lost.
    func txLinkLost(_ link: SimTxLink) {
        txLinkClose(link)
        if let waiting = link.waiting {
            link.waiting = nil
            waiting.then(nil)
        }
    }

    /// Closes the connection, if any (the broker rolls back its local transactions).
    func txLinkClose(_ link: SimTxLink) {
        if let connection = link.connection { network.closedByClient(connection) }
        link.connection = nil
        link.connected = false
        link.pendingFrame = nil
    }

    func txLinkReceive(_ link: SimTxLink, _ connection: Int, _ bytes: [UInt8]) {
        guard link.connection == connection else { return }
        link.decoder.feed(bytes)
        do {
            while let frame = try link.decoder.next() {
                guard case .result(let response) = frame else {
                    return fail("tx client \(link.client) got a frame that is no answer: \(frame)")
                }
                guard let waiting = link.waiting, waiting.opaque == response.opaque else { continue }
                link.waiting = nil
                waiting.then(response)
                if link.connection != connection { return }
            }
        } catch {
            fail("tx client \(link.client) cannot decode broker\(link.broker)'s bytes: \(error)")
        }
    }

    static func txCommand(_ key: String, _ type: TransactionType, timeout: Int32? = nil, qualifier: String? = nil)
        -> (Int32) -> Frame {
        { opaque in
            .transaction(TransactionCommand(transactionKey: key, sessionId: "sim", type: type, timeoutSeconds: timeout,
                                            uniqueQualifier: qualifier, opaque: opaque))
        }
    }

    static func text(_ response: ResultResponse) -> String { "\(response.code) \(String(decoding: response.body, as: UTF8.self))" }

    // MARK: Puts

    /// One put of `tx` (a new message of `keyPrefix`, to a random partition of the transaction's
    /// broker); `then` gets true when it was answered 200 with `<msgId> <partition> -1`.
    func txPut(_ tx: SimTxRecord, _ link: SimTxLink, keyPrefix: Int, sequence: Int, then: @escaping (Bool, String) -> Void) {
        let payload = SimPayload.make(producer: keyPrefix, sequence: sequence, size: txRng.int(in: options.messageSizes),
                                      rng: &txRng)
        let topic = txRng.pick(options.topics)
        let partition = Int32(txRng.int(in: 0..<topic.partitions))
        let key = SimPayload.key(producer: keyPrefix, sequence: sequence)
        ledger[key] = Sent(producer: keyPrefix, broker: tx.broker, topic: topic.name, payload: payload, outcome: .unknown)
        txOfMessage[key] = tx
        let index = tx.puts.count
        tx.puts.append(.init(key: key, partition: partition, topic: topic.name))
        txRequest(link, { opaque in
            .put(PutCommand(topic: topic.name, partition: partition, flag: 0, checksum: CRC32.metaqChecksum(payload),
                            transactionKey: tx.key, body: payload, opaque: opaque))
        }) { [unowned self] response in
            guard let response else { return then(false, "put lost") }
            guard response.code == 200 else { return then(false, "put answered \(Self.text(response))") }
            let parts = String(decoding: response.body, as: UTF8.self).split(separator: " ")
            guard parts.count == 3, let msgId = Int64(parts[0]), let answered = Int32(parts[1]), let offset = Int64(parts[2]) else {
                fail("\(tx.owner): a put in \(tx.key) answered \(Self.text(response)), not '<msgId> <partition> -1'")
                return then(false, "bad answer")
            }
            // §4.2: a put inside a transaction is not in a partition yet: offset -1.
            guard offset == -1, answered == partition else {
                fail("\(tx.owner): a put in \(tx.key) to partition \(partition) answered partition \(answered) offset \(offset), not -1")
                return then(false, "bad answer")
            }
            tx.puts[index].msgId = msgId
            then(true, "")
        }
    }

    // MARK: Local transactions

    private func localNext(_ producer: SimTxLocalProducer) {
        guard producer.current == nil, producer.started < producer.total, let spec = options.transactions else { return }
        producer.started += 1
        let tx = SimTxRecord(kind: .local, key: "TX:sim-l\(producer.index):\(producer.started)", broker: producer.link.broker,
                             owner: producer.name)
        tx.planned = txRng.int(in: 1...spec.maxMessages)
        let roll = txRng.unit()
        tx.plan = roll < spec.abandonChance ? .abandon : roll < spec.abandonChance + spec.rollbackChance ? .rollback : .commit
        let timeout: Int32? = txRng.chance(spec.timeoutChance) ? Int32(txRng.int(in: 1...2)) : nil
        producer.current = tx
        txRecords.append(tx)
        txByKey[tx.key] = tx
        counters.txBegun += 1
        let serial = txRecords.count
        trace(.transaction, Int64(producer.index), Int64(serial), "\(producer.name) BEGIN \(tx.key) on broker\(tx.broker)"
              + (timeout.map { " timeout \($0)s" } ?? ""))
        txRequest(producer.link, Self.txCommand(tx.key, .begin, timeout: timeout)) { [unowned self] response in
            guard response?.code == 200 else {
                return endLocal(producer, tx, .notCommitted("BEGIN: \(response.map(Self.text) ?? "lost")"))
            }
            localStep(producer, tx: serial)
        }
    }

    /// The next put of the current transaction, or its end once every put is answered.
    private func localStep(_ producer: SimTxLocalProducer, tx serial: Int) {
        guard let tx = producer.current, txRecords.count >= serial, txRecords[serial - 1] === tx else { return }
        if tx.puts.count < tx.planned {
            producer.sequence += 1
            txPut(tx, producer.link, keyPrefix: producer.keyPrefix, sequence: producer.sequence) { [unowned self] ok, why in
                guard ok else { return abortLocal(producer, tx, why) }
                schedule(.transactions(.localStep(producer.index, tx: serial)), afterNs: pauseNs())
            }
            return
        }
        switch tx.plan {
        case .abandon:
            // The producer closes its connection (or dies): the broker rolls the transaction back.
            txLinkClose(producer.link)
            counters.txAbandoned += 1
            endLocal(producer, tx, .notCommitted("abandoned"))
        case .rollback:
            txRequest(producer.link, Self.txCommand(tx.key, .rollback)) { [unowned self] response in
                if response?.code == 200 { counters.txRolledBack += 1 }
                endLocal(producer, tx, .notCommitted("ROLLBACK: \(response.map(Self.text) ?? "lost")"))
            }
        case .commit:
            tx.commitSent = true
            txRequest(producer.link, Self.txCommand(tx.key, .commitOnePhase)) { [unowned self] response in
                guard let response else { return endLocal(producer, tx, .unknown("COMMIT answer lost")) }
                if response.code == 200 { return endLocal(producer, tx, .committed) }
                let text = Self.text(response)
                // XA_HEURHAZ: the commit entry was written, its sync failed — the next start decides.
                endLocal(producer, tx, text.contains("code=8,") ? .unknown(text) : .notCommitted("COMMIT: \(text)"))
            }
        }
    }

    /// A put was refused or lost: the transaction cannot commit; it is rolled back (best effort).
    private func abortLocal(_ producer: SimTxLocalProducer, _ tx: SimTxRecord, _ why: String) {
        guard producer.link.connection != nil else { return endLocal(producer, tx, .notCommitted(why)) }
        txRequest(producer.link, Self.txCommand(tx.key, .rollback)) { [unowned self] _ in
            endLocal(producer, tx, .notCommitted(why))
        }
    }

    private func endLocal(_ producer: SimTxLocalProducer, _ tx: SimTxRecord, _ outcome: SimTxRecord.Outcome) {
        guard producer.current === tx else { return }
        tx.outcome = outcome
        producer.current = nil
        switch outcome {
        case .committed: counters.txCommitted += 1
        case .unknown: counters.txUnknown += 1
        case .notCommitted(let why): if why != "abandoned" && !why.hasPrefix("ROLLBACK") { counters.txRefused += 1 }
        case .open: break
        }
        trace(.transaction, Int64(producer.index), 0, "\(producer.name) \(tx.key) ends: \(outcome)")
        schedule(.transactions(.localNext(producer.index)), afterNs: Int64(txRng.int(in: options.produceIntervalMs)) * 1_000_000 + 1)
    }

    /// A pause between two steps of a transaction: mostly short; sometimes long enough for a
    /// BEGIN timeout to fire.
    private func pauseNs() -> Int64 {
        let long = txRng.chance(options.transactions?.longPauseChance ?? 0)
        return Int64(long ? txRng.int(in: 300...1500) : txRng.int(in: 0...5)) * 1_000_000 + Int64(txRng.int(in: 1...100_000))
    }

    // MARK: Convergence and counters

    func transactionsWaiting() -> [String] {
        var waiting: [String] = []
        for producer in txLocalProducers where !producer.isDone {
            waiting.append("\(producer.name): \(producer.started)/\(producer.total) transactions begun")
        }
        for manager in txManagers {
            if let why = managerUnsettled(manager) { waiting.append("\(manager.name): \(why)") }
        }
        return waiting
    }
}
