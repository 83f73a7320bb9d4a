/// `put`, `get` and `offset` with every outcome and text of reference §1.4.1–§1.4.3.
extension BrokerMachine {
    func putPrefix(_ partition: TopicPartition) -> String {
        "Put message to [broker '\(settings.brokerURI)'] [partition '\(partition)'] failed.Detail:"
    }

    /// `messageId`: the id a samsa master gave the message (`sync`, §6.2) instead of a new one.
    mutating func handlePut(_ put: PutCommand, from connection: ConnectionID, nowMs: Int64, messageId: Int64? = nil,
                            into out: inout [Action]) {
        statsCounters.cmdPut += 1
        func fail(_ code: Int32, _ text: String) {
            statsCounters.putFailed += 1
            recordRealtime(.putFailed, put.topic)
            out.append(.reply(connection, ResultResponse(code: code, text: text, opaque: put.opaque)))
        }
        let requested = TopicPartition(put.topic, put.partition)
        // Inside a transaction: the transaction first (an unknown one, or partition -1, is
        // refused before anything else, §1.4.1, §4.2), then the checks of every put.
        var ticket: TxPutTicket?
        if put.transactionKey != nil {
            switch transactions.admitPut(put, from: connection) {
            case .refused(let code, let text): return fail(code, text)
            case .admitted(let admitted): ticket = admitted
            }
        }
        func refuse(_ code: Int32, _ text: String) {
            if let ticket { transactions.putAbandoned(ticket) }
            fail(code, text)
        }
        // A topic becomes a directory name: one that is not a safe path component (`..`, `a/b`,
        // which a `*` pattern would match) gets the answer of a topic no section accepts (§1.4.1).
        let rule: TopicRules.Rule
        if let last = lastAcceptedTopic, last.name == put.topic {
            rule = last.rule
        } else {
            guard MetaName.isValid(put.topic), let found = settings.topics.rule(for: put.topic) else {
                return refuse(StatusCode.internalServerError, putPrefix(requested) + "The server do not accept topic \(put.topic)")
            }
            rule = found
            lastAcceptedTopic = (put.topic, found)
        }
        let count = rule.numPartitions
        var partition = put.partition
        if partition == -1, count > 0 { partition = randomPartition(of: put.topic, count: count) }
        let target = TopicPartition(put.topic, partition)
        guard partition >= 0 && partition < count else {
            return refuse(StatusCode.internalServerError, putPrefix(target) + "wrong partition \(partition)")
        }
        if !closedPartitions.isEmpty, closedPartitions.contains(target) {
            return refuse(StatusCode.forbidden, putPrefix(target) + "partition[\(settings.brokerId)-\(partition)] has been closed")
        }
        if !failedPartitions.isEmpty, let failure = failedPartitions[target] {
            return refuse(StatusCode.internalServerError, putPrefix(target) + refusal(target, failure))
        }
        if let refusal = sizeRefusal(put.body.count) { return refuse(StatusCode.internalServerError, putPrefix(target) + refusal) }
        var verified: Int32?
        if put.requiresChecksumCheck, let checksum = put.checksum {
            guard (put.bodyChecksum ?? CRC32.metaqChecksum(put.body)) == checksum else {
                return refuse(StatusCode.internalServerError, putPrefix(target)
                            + "Checksum failure,message may be corrupted when transfering on networking.")
            }
            verified = checksum
        }
        if rule.pattern != put.topic, let refusal = autoCreationRefusal(target) {
            return refuse(StatusCode.internalServerError, putPrefix(target) + refusal)
        }
        let issue: (id: Int64, reservationToPersistMs: Int64?)
        if let messageId {
            issue = (messageId, nil)
        } else {
            let next = ids.next(nowMs: nowMs)
            issue = (next.id, next.reservationToPersistMs)
        }
        if let reservation = issue.reservationToPersistMs { out.append(.persistIdReservation(reservation)) }
        if var ticket {
            // Journaled now, stored at commit (§4.2); the id is the message's from here on.
            ticket.checksum = verified
            var logged = put
            if logged.checksum == nil { logged.checksum = -1 }
            out.append(.journalTransactionPut(TransactionPutJournal(
                connection: connection, opaque: put.opaque, ticket: ticket, messageId: issue.id, put: logged)))
            return
        }
        let token = token(for: .put(connection, opaque: put.opaque, msgId: issue.id, target,
                                    payloadBytes: Int64(put.body.count), stat: rule.stat))
        out.append(.append(token: token, target, AppendRecord(msgId: issue.id, flag: put.flag, payload: put.body,
                                                                verifiedChecksum: verified)))
    }

    /// The partition a put with partition `-1` goes to (§1.4.1): uniform over the topic's
    /// partitions, as in MetaQ — but over those that take writes when some are closed or failed,
    /// so a client in direct mode is not sent into a partition that must refuse it.
    mutating func randomPartition(of topic: String, count: Int32) -> Int32 {
        let pick = Int32(random.next() % UInt64(count))
        guard !failedPartitions.isEmpty || !closedPartitions.isEmpty else { return pick }
        let usable = (0..<count).filter { p in
            let target = TopicPartition(topic, p)
            return failedPartitions[target] == nil && !closedPartitions.contains(target)
        }
        guard !usable.isEmpty, usable.count < Int(count) else { return pick }
        return usable[Int(random.next() % UInt64(usable.count))]
    }

    /// Why a body of `bodyBytes` cannot be stored, or nil. A record larger than `maxTransferSize`
    /// could never be returned whole by a `get` (§1.4.2 caps every answer at it): stored, it would
    /// block its partition for every consumer (the Java client grows its fetch size forever).
    func sizeRefusal(_ bodyBytes: Int) -> String? {
        let recordBytes = Record.headerSize + bodyBytes
        guard recordBytes > Int(settings.maxTransferSize) else { return nil }
        return "message of \(recordBytes) bytes (with its \(Record.headerSize)-byte header) is larger than "
            + "maxTransferSize \(settings.maxTransferSize): no get could ever return it"
    }

    /// Takes a place among the auto-created partitions for `target` (a partition of a topic that
    /// only a pattern accepts), or says why there is none. Partitions with data or already
    /// counted pass; recent puts' partitions are checked without hashing.
    mutating func autoCreationRefusal(_ target: TopicPartition) -> String? {
        if recentStoredPartitions.value(for: target) != nil || autoCreatedPartitions.contains(target) { return nil }
        let limit = settings.maxAutoCreatedPartitions
        guard autoCreatedPartitions.count < limit else {
            return "too many auto-created partitions: \(autoCreatedPartitions.count) partitions of topics without "
                + "their own [topic=...] section exist, the limit is maxAutoCreatedPartitions=\(limit); "
                + "add a [topic=\(target.topic)] section or raise maxAutoCreatedPartitions"
        }
        autoCreatedPartitions.insert(target)
        return nil
    }

    mutating func completePut(_ token: UInt64, _ result: Result<Int64, StoreFailure>, into out: inout [Action]) {
        if let target = orphanedPuts.removeValue(forKey: token) {
            if case .success = result { partitionsWithData.insert(target) }
            return
        }
        guard case .put(let connection, let opaque, let msgId, let target, let bytes, let stat)? = pending.removeValue(forKey: token) else { return }
        switch result {
        case .success(let offset):
            if stat {
                realtime.recordPut(topic: target.topic, bytes: bytes, nowMs: clockMs)
            }
            // Most puts go to a partition a recent put went to: skip hashing its name then.
            if recentStoredPartitions.value(for: target) == nil {
                if !partitionsWithData.contains(target) { partitionsWithData.insert(target) }
                recentStoredPartitions.remember(target, ())
            }
            out.append(.putAnswer(connection, PutAnswer(opaque: opaque, msgId: msgId, partition: target.partition,
                                                         offset: offset)))
        case .failure(let failure):
            statsCounters.putFailed += 1
            recordRealtime(.putFailed, target.topic)
            out.append(.reply(connection, ResultResponse(code: StatusCode.internalServerError,
                                                         text: putPrefix(target) + storeFailureDetail(target, failure),
                                                         opaque: opaque)))
        }
    }

    /// §1.4.2 in the original's order: closed → 403, no log → 404, bad maxSize → 400, then read.
    mutating func handleGet(_ get: GetCommand, from connection: ConnectionID, into out: inout [Action]) {
        statsCounters.cmdGet += 1
        recordRealtime(.get, get.topic)
        let target = TopicPartition(get.topic, get.partition)
        if closedPartitions.contains(target) {
            return out.append(reply(connection, StatusCode.forbidden,
                                    "Partition[\(settings.brokerId)-\(get.partition)] has been closed", get.opaque))
        }
        guard partitionsWithData.contains(target) else {
            statsCounters.getMiss += 1
            recordRealtime(.getMiss, get.topic)
            return out.append(notExists(target, connection, get.opaque))
        }
        guard get.maxSize > 0 else {
            return out.append(reply(connection, StatusCode.badRequest, "Bad request,invalid max size:\(get.maxSize)", get.opaque))
        }
        let maxBytes = Int(min(get.maxSize, settings.maxTransferSize))
        // Unfiltered gets (nearly all) keep the zero-copy slice path; only a filtered one is read
        // into memory, bounded by `maxBytes`.
        if settings.topics.hasFilters, let filter = settings.topics.filter(for: get.topic, group: get.group) {
            let token = token(for: .get(connection, opaque: get.opaque, offset: get.offset, target, filter: filter))
            return out.append(.readBytes(token: token, target, offset: get.offset, maxBytes: maxBytes))
        }
        let token = token(for: .get(connection, opaque: get.opaque, offset: get.offset, target, filter: nil))
        out.append(.read(token: token, target, offset: get.offset, maxBytes: maxBytes))
    }

    mutating func completeGet(_ token: UInt64, _ read: PartitionRead, into out: inout [Action]) {
        guard case .get(let connection, let opaque, let offset, let target, let filter)? = pending.removeValue(forKey: token) else { return }
        let topic = target.topic
        // §9: a 301 answer counts as `cmd_offset`, a 404 as `get_miss`.
        func moved(_ to: Int64) {
            statsCounters.cmdOffset += 1
            recordRealtime(.offset, topic)
            out.append(reply(connection, StatusCode.moved, "\(to)", opaque))
        }
        switch read {
        case .slice: out.append(.sendSlice(connection, token: token, opaque: opaque))
        case .bytes(let bytes):
            guard let filter else { return out.append(.sendBytes(connection, body: bytes, opaque: opaque)) }
            switch FilteredGet.decide(bytes, filter: filter) {
            case .deliver(let count):
                out.append(.sendBytes(connection, body: count == bytes.count ? bytes : Array(bytes[..<count]), opaque: opaque))
            // §11.1 fixed: past the rejected run, so a client at `offset` moves forward.
            case .skip(let skipped): moved(offset + Int64(skipped))
            }
        case .failed(let detail):
            // §1.4.2: any other failure is a 500 with the original's (reused) put wording.
            out.append(reply(connection, StatusCode.internalServerError,
                             putPrefix(target) + detail, opaque))
        case .belowMinimum(let minOffset): moved(minOffset)
        // Our extension: a read inside an isolated damaged range moves the consumer past it.
        case .damaged(let resumeAt): moved(resumeAt)
        case .atOrBeyondEnd(let maxOffset):
            if offset > maxOffset && (settings.updateConsumerOffsets || offset == Int64.max) { return moved(maxOffset) }
            statsCounters.getMiss += 1
            recordRealtime(.getMiss, topic)
            out.append(reply(connection, StatusCode.notFound, "Could not find message at position \(offset)", opaque))
        }
    }

    mutating func handleOffset(_ command: OffsetCommand, from connection: ConnectionID) -> [Action] {
        statsCounters.cmdOffset += 1
        recordRealtime(.offset, command.topic)
        let target = TopicPartition(command.topic, command.partition)
        guard partitionsWithData.contains(target) else { return [notExists(target, connection, command.opaque)] }
        let token = token(for: .offset(connection, opaque: command.opaque))
        return [.nearestOffset(token: token, target, offset: command.offset)]
    }

    mutating func completeOffset(_ token: UInt64, _ offset: Int64) -> [Action] {
        guard case .offset(let connection, let opaque)? = pending.removeValue(forKey: token) else { return [] }
        return [reply(connection, StatusCode.success, "\(offset)", opaque)]
    }

    func notExists(_ target: TopicPartition, _ connection: ConnectionID, _ opaque: Int32) -> Action {
        reply(connection, StatusCode.notFound, "The topic `\(target.topic)` in partition `\(target.partition)` is not exists", opaque)
    }

    func reply(_ connection: ConnectionID, _ code: Int32, _ text: String, _ opaque: Int32) -> Action {
        .reply(connection, ResultResponse(code: code, text: text, opaque: opaque))
    }
}
