import Testing
@testable import ProtocolCore

/// The broker machine fed by hand: every outcome and text of reference §1.4.1–§1.4.5.
@Suite("Broker machine (reference §1.4)")
struct BrokerMachineTests {
    let c1 = ConnectionID(1)
    let now: Int64 = 1_795_000_000_000
    static let uri = "meta://127.0.0.1:8123"

    func machine(updateConsumerOffsets: Bool = false, withData: Set<TopicPartition> = [TopicPartition("test", 0)]) -> BrokerMachine {
        let settings = BrokerMachine.Settings(
            brokerId: 3, brokerURI: Self.uri, port: 8123, version: "1.4.6.3-SNAPSHOT", maxTransferSize: 1024,
            updateConsumerOffsets: updateConsumerOffsets,
            topics: TopicRules([.init(pattern: "test", numPartitions: 2), .init(pattern: "meta-*", numPartitions: 4)]))
        return BrokerMachine(settings: settings, partitionsWithData: withData, idReservationMs: 0, seed: 42)
    }

    /// The wire bytes of the only reply among `actions`.
    func replyBytes(_ actions: [BrokerMachine.Action]) -> String? {
        let replies = actions.compactMap { action -> ResultResponse? in
            if case .reply(_, let r) = action { return r }
            if case .putAnswer(_, let a) = action { return a.response }
            return nil
        }
        guard replies.count == 1 else { return nil }
        return String(decoding: Frame.result(replies[0]).encoded(), as: UTF8.self)
    }

    func put(_ line: String, _ body: String) throws -> Frame {
        try #require(decodeAll(bytes(line + "\r\n" + body)).first)
    }

    /// §1.6: `put test 0 5 0 907060870 2␍␊hello` → `result 200 24 2␍␊<msgId> 0 0`.
    @Test func putAppendsThenAnswersWithIdPartitionOffset() throws {
        var broker = machine()
        let actions = broker.handle(.request(c1, try put("put test 0 5 0 907060870 2", "hello")), nowMs: now)
        guard case .append(let token, let target, let record)? = actions.last else { Issue.record("\(actions)"); return }
        let records = record.encoded
        #expect(target == TopicPartition("test", 0))
        #expect(actions.first == .persistIdReservation(now + 60_000), "the first id needs a reservation")
        let header = records.withUnsafeBytes { Record.parse($0, at: 0) }
        guard case .record(let h, _) = header else { Issue.record("not a record"); return }
        #expect(records.suffix(5) == bytes("hello"))
        #expect(MessageIdGenerator.decompose(h.msgId).workerId == 3)
        let reply = broker.handle(.appended(token: token, .success(0)), nowMs: now)
        #expect(replyBytes(reply) == "result 200 \("\(h.msgId) 0 0".utf8.count) 2\r\n\(h.msgId) 0 0")
        #expect(broker.pendingCount == 0)
        #expect(broker.partitionsWithData.contains(TopicPartition("test", 0)))
    }

    /// A checksum the machine verified travels with the record, so the store does not compute it
    /// again; without one (old client, or -1) the store computes it (§1.4.1).
    @Test func aVerifiedChecksumTravelsWithTheRecord() throws {
        var broker = machine()
        let checked = broker.handle(.request(c1, try put("put test 0 5 0 907060870 2", "hello")), nowMs: now)
        guard case .append(_, _, let record)? = checked.last else { Issue.record("\(checked)"); return }
        #expect(record.verifiedChecksum == 907060870)
        #expect(record.verifiedChecksum == CRC32.metaqChecksum(Array("hello".utf8)))
        for line in ["put test 0 5 0 -1 3", "put test 0 5 0 4"] {
            let unchecked = broker.handle(.request(c1, try put(line, "hello")), nowMs: now)
            guard case .append(_, _, let record)? = unchecked.last else { Issue.record("\(unchecked)"); return }
            #expect(record.verifiedChecksum == nil, "\(line)")
        }
    }

    /// Issue 18: the decoder computes a checked put's body checksum where it runs (a connection
    /// loop), and the machine compares that instead of computing it on the node's thread. The
    /// machine still decides: a stale or wrong `bodyChecksum` is a checksum failure, a body set
    /// after decoding forgets it, and a put nobody decoded is still checked.
    @Test func theDecodersBodyChecksumIsWhatTheMachineCompares() throws {
        guard case .put(let decoded) = try put("put test 0 5 0 907060870 2", "hello") else { Issue.record("not a put"); return }
        #expect(decoded.bodyChecksum == CRC32.metaqChecksum(Array("hello".utf8)))
        guard case .put(let unchecked) = try put("put test 0 5 0 -1 3", "hello") else { Issue.record("not a put"); return }
        #expect(unchecked.bodyChecksum == nil, "no check asked, none computed")
        var wrong = decoded
        wrong.bodyChecksum = 12345
        var broker = machine()
        let refused = replyBytes(broker.handle(.request(c1, .put(wrong)), nowMs: now)) ?? ""
        #expect(refused.hasPrefix("result 500 ") && refused.contains("Checksum failure"))
        var changed = decoded
        changed.body = Array("jello".utf8)
        #expect(changed.bodyChecksum == nil, "a new body forgets the old checksum")
        #expect(replyBytes(broker.handle(.request(c1, .put(changed)), nowMs: now))?.contains("Checksum failure") == true,
                "computed again by the machine, and it does not match")
        let built = PutCommand(topic: "test", partition: 0, flag: 0, checksum: 907060870, body: Array("hello".utf8), opaque: 9)
        guard case .append(_, _, let record)? = broker.handle(.request(c1, .put(built)), nowMs: now).last else {
            Issue.record("a put built by hand with the right checksum is stored"); return
        }
        #expect(record.verifiedChecksum == 907060870)
    }

    @Test func putErrorsCarryTheOriginalTexts() throws {
        var broker = machine()
        let prefix = "Put message to [broker '\(Self.uri)'] [partition 'test-0'] failed.Detail:"
        #expect(replyBytes(broker.handle(.request(c1, try put("put test 0 5 0 12345 7", "hello")), nowMs: now))
                == "result 500 \((prefix + "Checksum failure,message may be corrupted when transfering on networking.").utf8.count) 7\r\n"
                + prefix + "Checksum failure,message may be corrupted when transfering on networking.")
        let unknown = broker.handle(.request(c1, try put("put other 0 1 0 -1 8", "x")), nowMs: now)
        #expect(replyBytes(unknown)?.hasSuffix("[partition 'other-0'] failed.Detail:The server do not accept topic other") == true)
        let wrong = broker.handle(.request(c1, try put("put test 7 1 0 -1 9", "x")), nowMs: now)
        #expect(replyBytes(wrong)?.hasSuffix("[partition 'test-7'] failed.Detail:wrong partition 7") == true)
        _ = broker.handle(.partitionClosed(TopicPartition("test", 1)), nowMs: now)
        let closed = broker.handle(.request(c1, try put("put test 1 1 0 -1 10", "x")), nowMs: now)
        #expect(replyBytes(closed)?.hasPrefix("result 403 ") == true)
        #expect(replyBytes(closed)?.hasSuffix("[partition 'test-1'] failed.Detail:partition[3-1] has been closed") == true)
        let tx = broker.handle(.request(c1, try put("put test 0 1 0 -1 TX:s:1 11", "x")), nowMs: now)
        #expect(replyBytes(tx)?.hasSuffix("\r\nLocal transaction 'TX:s:1' has not been started.") == true)
        #expect(broker.pendingCount == 0)
    }

    /// Old 6-token puts and checksum -1 are not checked; wildcard topics are accepted (§1.4.1, §2.8).
    @Test func uncheckedFormsAndWildcards() throws {
        var broker = machine()
        for line in ["put test 1 1 0 5", "put test 1 1 0 -1 6", "put meta-orders 3 1 0 -1 7"] {
            guard case .append? = broker.handle(.request(c1, try put(line, "x")), nowMs: now).last else {
                Issue.record("\(line) was refused")
                continue
            }
        }
    }

    /// Partition -1: the broker picks one uniformly in [0, numPartitions) (§1.4.1).
    @Test func randomPartition() throws {
        var broker = machine()
        var seen = Set<Int32>()
        for i in 0..<200 {
            let actions = broker.handle(.request(c1, try put("put meta-x -1 1 0 -1 \(i)", "x")), nowMs: now)
            guard case .append(_, let target, _)? = actions.last else { Issue.record("\(actions)"); return }
            seen.insert(target.partition)
        }
        #expect(seen == [0, 1, 2, 3])
    }

    @Test func failedAppendAnswers500WithTheCause() throws {
        var broker = machine()
        let actions = broker.handle(.request(c1, try put("put test 0 1 0 -1 -5", "x")), nowMs: now)
        guard case .append(let token, _, _)? = actions.last else { Issue.record("\(actions)"); return }
        let reply = broker.handle(.appended(token: token, .failure(.init("disk full"))), nowMs: now)
        #expect(replyBytes(reply)?.hasSuffix("[partition 'test-0'] failed.Detail:disk full") == true)
        #expect(replyBytes(reply)?.hasPrefix("result 500 ") == true)
        #expect(replyBytes(reply)?.contains(" -5\r\n") == true)
    }

    /// §1.6: `get test group1 7 0 1024 12` → 404 and `get test group1 0 0 0 13` → 400, byte for byte.
    @Test func getRefusals() throws {
        var broker = machine()
        let missing = broker.handle(.request(c1, try #require(decodeAll(bytes("get test group1 7 0 1024 12\r\n")).first)), nowMs: now)
        #expect(replyBytes(missing) == "result 404 47 12\r\nThe topic `test` in partition `7` is not exists")
        let zero = broker.handle(.request(c1, try #require(decodeAll(bytes("get test group1 0 0 0 13\r\n")).first)), nowMs: now)
        #expect(replyBytes(zero) == "result 400 30 13\r\nBad request,invalid max size:0")
        _ = broker.handle(.partitionClosed(TopicPartition("test", 0)), nowMs: now)
        let closed = broker.handle(.request(c1, .get(GetCommand(topic: "test", group: "g", partition: 0, offset: 0, maxSize: 10, opaque: 14))), nowMs: now)
        #expect(replyBytes(closed) == "result 403 30 14\r\nPartition[3-0] has been closed")
        _ = broker.handle(.partitionReopened(TopicPartition("test", 0)), nowMs: now)
        let reopened = broker.handle(.request(c1, .get(GetCommand(topic: "test", group: "g", partition: 0, offset: 0, maxSize: 10, opaque: 15))), nowMs: now)
        #expect(replyBytes(reopened).map { !$0.hasPrefix("result 403") } ?? true, "open again")
        #expect(reopened.contains { if case .read = $0 { return true } else { return false } }, "served again")
    }

    /// §1.4.2: maxTransferSize caps the read; every read outcome maps to the original's answer.
    @Test func getOutcomes() {
        var broker = machine()
        func get(_ offset: Int64, _ opaque: Int32) -> UInt64? {
            let actions = broker.handle(.request(c1, .get(GetCommand(topic: "test", group: "g", partition: 0, offset: offset, maxSize: 4096, opaque: opaque))), nowMs: now)
            guard case .read(let token, _, let at, let maxBytes)? = actions.first else { return nil }
            #expect(at == offset && maxBytes == 1024, "capped by maxTransferSize")
            return token
        }
        let t1 = get(0, 1)!
        #expect(broker.handle(.read(token: t1, .slice(count: 50)), nowMs: now) == [.sendSlice(c1, token: t1, opaque: 1)])
        #expect(replyBytes(broker.handle(.read(token: get(0, 2)!, .belowMinimum(minOffset: 100)), nowMs: now)) == "result 301 3 2\r\n100")
        #expect(replyBytes(broker.handle(.read(token: get(50, 3)!, .atOrBeyondEnd(maxOffset: 50)), nowMs: now))
                == "result 404 37 3\r\nCould not find message at position 50")
        #expect(replyBytes(broker.handle(.read(token: get(90, 4)!, .atOrBeyondEnd(maxOffset: 50)), nowMs: now))
                == "result 404 37 4\r\nCould not find message at position 90", "past the end without updateConsumerOffsets")
        #expect(replyBytes(broker.handle(.read(token: get(.max, 5)!, .atOrBeyondEnd(maxOffset: 50)), nowMs: now)) == "result 301 2 5\r\n50")
        #expect(replyBytes(broker.handle(.read(token: get(30, 6)!, .damaged(resumeAt: 75)), nowMs: now)) == "result 301 2 6\r\n75")
        var telling = machine(updateConsumerOffsets: true)
        let actions = telling.handle(.request(c1, .get(GetCommand(topic: "test", group: "g", partition: 0, offset: 90, maxSize: 10, opaque: 7))), nowMs: now)
        guard case .read(let token, _, _, _)? = actions.first else { Issue.record("\(actions)"); return }
        #expect(replyBytes(telling.handle(.read(token: token, .atOrBeyondEnd(maxOffset: 50)), nowMs: now)) == "result 301 2 7\r\n50")
    }

    /// §1.4.3: the nearest offset, or 404 without a log.
    @Test func offsetCommand() {
        var broker = machine()
        let missing = broker.handle(.request(c1, .offset(OffsetCommand(topic: "test", group: "g", partition: 1, offset: 0, opaque: 8))), nowMs: now)
        #expect(replyBytes(missing) == "result 404 47 8\r\nThe topic `test` in partition `1` is not exists")
        let actions = broker.handle(.request(c1, .offset(OffsetCommand(topic: "test", group: "g", partition: 0, offset: 30, opaque: 9))), nowMs: now)
        guard case .nearestOffset(let token, let target, let offset)? = actions.first else { Issue.record("\(actions)"); return }
        #expect(target == TopicPartition("test", 0) && offset == 30)
        #expect(replyBytes(broker.handle(.nearestOffset(token: token, 0), nowMs: now)) == "result 200 1 9\r\n0")
    }

    /// §1.6: `version 1` → `result 200 16 1␍␊1.4.6.3-SNAPSHOT`; no opaque → 2147483647 (§1.4.4).
    @Test func versionQuitAndUnhandled() {
        var broker = machine()
        #expect(replyBytes(broker.handle(.request(c1, .version(VersionCommand(opaque: 1))), nowMs: now)) == "result 200 16 1\r\n1.4.6.3-SNAPSHOT")
        #expect(replyBytes(broker.handle(.request(c1, .version(VersionCommand(opaque: nil))), nowMs: now)) == "result 200 16 2147483647\r\n1.4.6.3-SNAPSHOT")
        #expect(broker.handle(.request(c1, .quit), nowMs: now) == [.close(c1)])
        let sync = broker.handle(.request(c1, .sync(SyncCommand(topic: "t", partition: 0, flag: 0, msgId: 1, checksum: nil, body: [], opaque: 5))), nowMs: now)
        #expect(replyBytes(sync)?.hasPrefix("result 503 ") == true)
        #expect(replyBytes(sync)?.hasSuffix("com.taobao.metamorphosis.network.SyncCommand") == true)
        #expect(broker.handle(.request(c1, .result(ResultResponse(code: 200, body: [], opaque: 1))), nowMs: now).isEmpty)
    }

    /// Answers owed to a closed connection are dropped; the append's completion then does nothing.
    @Test func closedConnectionsLoseTheirPendingAnswers() throws {
        var broker = machine()
        let actions = broker.handle(.request(c1, try put("put test 0 1 0 -1 1", "x")), nowMs: now)
        guard case .append(let token, _, _)? = actions.last else { Issue.record("\(actions)"); return }
        _ = broker.handle(.request(ConnectionID(2), try put("put test 0 1 0 -1 2", "y")), nowMs: now)
        #expect(broker.handle(.connectionClosed(c1), nowMs: now).isEmpty)
        #expect(broker.pendingCount == 1)
        #expect(broker.handle(.appended(token: token, .success(0)), nowMs: now).isEmpty)
    }

    /// Found by the simulator: the first puts to a partition whose connections all closed before
    /// the appends completed (clients timed out) still created its log — a get there must read
    /// it, not answer 404 "not exists" until the broker restarts.
    @Test func aPutStoredAfterItsConnectionClosedMakesThePartitionReadable() throws {
        var broker = machine()
        let actions = broker.handle(.request(c1, try put("put test 1 1 0 -1 1", "x")), nowMs: now)
        guard case .append(let token, _, _)? = actions.last else { Issue.record("\(actions)"); return }
        #expect(broker.handle(.connectionClosed(c1), nowMs: now).isEmpty)
        #expect(broker.pendingCount == 0, "no answer is owed")
        #expect(broker.handle(.appended(token: token, .success(0)), nowMs: now).isEmpty)
        #expect(broker.partitionsWithData.contains(TopicPartition("test", 1)))
        let get = broker.handle(.request(ConnectionID(2), .get(GetCommand(topic: "test", group: "g", partition: 1, offset: 0,
                                                                          maxSize: 100, opaque: 3))), nowMs: now)
        guard case .read? = get.first else { Issue.record("a get is answered \(get)"); return }
    }

    @Test func topicRules() {
        let rules = TopicRules([.init(pattern: "a*", numPartitions: 1), .init(pattern: "abc", numPartitions: 5),
                                .init(pattern: "*-log-*", numPartitions: 2)])
        #expect(rules.numPartitions(of: "abc") == 5, "exact name first")
        #expect(rules.numPartitions(of: "ab") == 1)
        #expect(rules.numPartitions(of: "web-log-1") == 2)
        #expect(rules.numPartitions(of: "web-log") == nil)
        #expect(rules.numPartitions(of: "b") == nil)
    }
}
