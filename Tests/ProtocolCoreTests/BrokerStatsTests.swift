import Testing
@testable import ProtocolCore

/// `stats [item]` on the broker machine: reference §1.4.6 (parsing, framing) and §9 (items, keys).
@Suite("Broker machine stats (reference §9)")
struct BrokerStatsTests {
    let c1 = ConnectionID(1)
    let now: Int64 = 1_795_000_000_000

    func machine(stat: Bool = false) -> BrokerMachine {
        let settings = BrokerMachine.Settings(
            brokerId: 0, brokerURI: "meta://127.0.0.1:8123", port: 8123, version: "1.4.6.3-SNAPSHOT",
            maxTransferSize: 1024, updateConsumerOffsets: false,
            topics: TopicRules([.init(pattern: "test", numPartitions: 2, stat: stat),
                                .init(pattern: "idle", numPartitions: 1, stat: stat)]))
        return BrokerMachine(settings: settings, partitionsWithData: [TopicPartition("test", 0)], idReservationMs: 0, seed: 1)
    }

    /// A snapshot shaped like §9's example: one topic with data, one configured without.
    func snapshot() -> StatsSnapshot {
        StatsSnapshot(
            pid: 19721, uptimeSeconds: 16, threads: 41, currentConnections: 1, configChecksum: 1230062599, isSlave: false,
            partitions: [.init(partition: TopicPartition("test", 1), minOffset: 0, maxOffset: 40, messageCount: 1, bytes: 40),
                         .init(partition: TopicPartition("test", 0), minOffset: 0, maxOffset: 75, messageCount: 3, bytes: 75)],
            configuredTopics: ["test", "idle"],
            topicFlags: [.init(topic: "test", acceptPublish: true, acceptSubscribe: false)])
    }

    func replyBytes(_ actions: [BrokerMachine.Action]) -> String? {
        guard actions.count == 1, case .reply(_, let r) = actions[0] else { return nil }
        return String(decoding: Frame.result(r).encoded(), as: UTF8.self)
    }

    func frame(_ line: String) throws -> Frame {
        try #require(decodeAll(bytes(line + "\r\n")).first)
    }

    /// The STATS body for `lines` with its `result 200 <len> <opaque>` header (§1.4.6).
    func expected(_ lines: [String], opaque: Int32) -> String {
        let body = "STATS\r\n" + lines.map { $0 + "\r\n" }.joined() + "END\r\n"
        return "result 200 \(body.utf8.count) \(opaque)\r\n" + body
    }

    /// Sends a stats request, answers its `.collectStats` with `snapshot` and returns the reply.
    func stats(_ broker: inout BrokerMachine, _ line: String, _ snapshot: StatsSnapshot) throws -> String? {
        let actions = broker.handle(.request(c1, try frame(line)), nowMs: now)
        guard case .collectStats(let token, _)? = actions.first, actions.count == 1 else {
            Issue.record("\(actions)")
            return nil
        }
        return replyBytes(broker.handle(.statsCollected(token: token, snapshot), nowMs: now))
    }

    /// Drives puts (two stored, a checksum failure, a store failure) and gets (a missing
    /// partition, a read at the end, a read below the minimum) and one offset command.
    func exercise(_ broker: inout BrokerMachine) throws {
        for (i, result) in [Result<Int64, BrokerMachine.StoreFailure>.success(0), .success(25), .failure(.init("disk"))].enumerated() {
            let put = try #require(decodeAll(bytes("put test 0 1 0 -1 \(i)\r\nx")).first)
            guard case .append(let token, _, _)? = broker.handle(.request(c1, put), nowMs: now).last else { Issue.record("put"); return }
            _ = broker.handle(.appended(token: token, result), nowMs: now)
        }
        _ = broker.handle(.request(c1, try #require(decodeAll(bytes("put test 0 1 0 12345 9\r\nx")).first)), nowMs: now)
        _ = broker.handle(.request(c1, try frame("get test g 1 0 100 10")), nowMs: now) // 404: no log
        for (offset, read) in [(Int64(75), PartitionRead.atOrBeyondEnd(maxOffset: 75)), (0, .belowMinimum(minOffset: 25))] {
            guard case .read(let token, _, _, _)? = broker.handle(.request(c1, try frame("get test g 0 \(offset) 100 11")), nowMs: now).first
            else { Issue.record("get"); return }
            _ = broker.handle(.read(token: token, read), nowMs: now)
        }
        guard case .nearestOffset(let token, _, _)? = broker.handle(.request(c1, try frame("offset test g 0 0 12")), nowMs: now).first
        else { Issue.record("offset"); return }
        _ = broker.handle(.nearestOffset(token: token, 0), nowMs: now)
    }

    /// §9: system stats, every key in the example's order; §1.4.6: no opaque → 2147483647.
    @Test func systemStatsByteExact() throws {
        var broker = machine()
        try exercise(&broker)
        #expect(broker.statsCounters.cmdPut == 4 && broker.statsCounters.putFailed == 2)
        #expect(broker.statsCounters.cmdGet == 3 && broker.statsCounters.getMiss == 2 && broker.statsCounters.cmdOffset == 2)
        let lines = ["pid 19721", "broker_id 0", "port 8123", "uptime 16", "version 1.4.6.3-SNAPSHOT", "slave false",
                     "curr_connections 1", "threads 41", "cmd_put 4", "cmd_get 3", "cmd_offset 2", "tx_begin 0",
                     "tx_xa_begin 0", "tx_commit 0", "tx_rollback 0", "get_miss 2", "put_failed 2", "total_messages 4",
                     "topics 2", "config_checksum 1230062599", "failed_partitions 0"]
        #expect(try stats(&broker, "stats", snapshot()) == expected(lines, opaque: 2147483647))
        // The Java client's form: `stats  5` is an empty item (system stats) with opaque 5 (§1.4.6).
        #expect(try stats(&broker, "stats  5", snapshot()) == expected(lines, opaque: 5))
        #expect(broker.pendingCount == 0)
    }

    /// §9 `topics`: topics with data sorted, then configured topics without data as `*Empty*`.
    @Test func topicsItem() throws {
        var broker = machine()
        let lines = ["test partitions 2 message_count 4 message_bytes 115 accept_publish true accept_subscribe false",
                     "idle *Empty*"]
        #expect(try stats(&broker, "stats topics 3", snapshot()) == expected(lines, opaque: 3))
        var bare = snapshot()
        bare.partitions = []
        #expect(try stats(&broker, "stats topics 4", bare) == expected(["idle *Empty*", "test *Empty*"], opaque: 4))
    }

    /// §9 `offsets`: one line per partition, sorted by topic then partition.
    @Test func offsetsItem() throws {
        var broker = machine()
        let lines = ["test part 0 min_offset 0 max_offset 75", "test part 1 min_offset 0 max_offset 40"]
        #expect(try stats(&broker, "stats offsets -7", snapshot()) == expected(lines, opaque: -7))
    }

    /// §9 `<topic>`: the first line is the bare topic name (as the original's StatsManager
    /// prints it; the Java client reads it as a key without a value), then resultCode 0 (data),
    /// 1 (unknown), 2 (configured, no data); §1.4.6: a lone token is the item, so `stats 1` asks
    /// for topic "1".
    @Test func topicItemResultCodes() throws {
        var broker = machine()
        let realtime = ["put", "get", "offset", "get_miss", "put_failed", "message_size"].map { "topic_realtime_\($0) null" }
        #expect(try stats(&broker, "stats test 1", snapshot())
                == expected(["test", "resultCode 0", "partitions 2", "message_count 4", "bytes 115"] + realtime, opaque: 1))
        #expect(try stats(&broker, "stats 1", snapshot())
                == expected(["1", "resultCode 1", "partitions 0", "message_count 0", "bytes 0"] + realtime, opaque: .max))
        #expect(try stats(&broker, "stats idle 2", snapshot())
                == expected(["idle", "resultCode 2", "partitions 0", "message_count 0", "bytes 0"] + realtime, opaque: 2))
    }

    /// §9 `help`, `reset` (`reset ok`) and `realtime` (`null`: nothing recorded) need no snapshot.
    @Test func helpResetRealtimeAnswerAtOnce() throws {
        var broker = machine()
        let help = try #require(replyBytes(broker.handle(.request(c1, try frame("stats help 1")), nowMs: now)))
        for key in ["*EMPTY* ", "help ", "topics ", "offsets ", "realtime ", "config Returns broker's config file content.",
                    "failed_partitions "] {
            #expect(help.contains("\r\n" + key), "help mentions \(key)")
        }
        #expect(help.hasPrefix("result 200 ") && help.hasSuffix("END\r\n"))
        #expect(replyBytes(broker.handle(.request(c1, try frame("stats reset 2")), nowMs: now)) == expected(["reset ok"], opaque: 2))
        let realtime = ["realtime_put", "realtime_get", "realtime_offset", "realtime_get_miss", "realtime_put_failed",
                        "realtime_message_size"].map { "\($0) null" }
        #expect(replyBytes(broker.handle(.request(c1, try frame("stats realtime")), nowMs: now)) == expected(realtime, opaque: .max))
        #expect(broker.pendingCount == 0)
    }

    /// §9 `realtime` for a `stat=true` topic: puts (2 stored), failed puts (a store failure and a
    /// checksum failure), message sizes (1 byte each), gets (3), get misses (2 × 404), offsets
    /// (a 301 and an offset command), over the 10 s since the first event.
    @Test func realtimeCountsStatTopics() throws {
        var broker = machine(stat: true)
        try exercise(&broker)
        let later = now + 10_000
        func line(_ count: Int) -> String {
            "Count=\(count),Value=\(count),Value/Count=1,Count/Duration=\(RealtimeStats.format(Double(count) / 10)),Duration=10"
        }
        let values = [("put", line(2)), ("get", line(3)), ("offset", line(2)), ("get_miss", line(2)),
                      ("put_failed", line(2)), ("message_size", line(2))]
        #expect(replyBytes(broker.handle(.request(c1, try frame("stats realtime 4")), nowMs: later))
                == expected(values.map { "realtime_\($0.0) \($0.1)" }, opaque: 4))
        let topic = broker.handle(.request(c1, try frame("stats test 5")), nowMs: later)
        guard case .collectStats(let token, _)? = topic.first else { Issue.record("\(topic)"); return }
        let text = try #require(replyBytes(broker.handle(.statsCollected(token: token, snapshot()), nowMs: later)))
        for (key, value) in values { #expect(text.contains("\r\ntopic_realtime_\(key) \(value)\r\n"), "\(key)") }
        let idle = broker.handle(.request(c1, try frame("stats idle 6")), nowMs: later)
        guard case .collectStats(let idleToken, _)? = idle.first else { Issue.record("\(idle)"); return }
        let idleText = try #require(replyBytes(broker.handle(.statsCollected(token: idleToken, snapshot()), nowMs: later)))
        #expect(idleText.contains("\r\ntopic_realtime_put Invalid keyTwo:idle\r\n"))
        // `stats reset` clears them; so does the 30-minute roll.
        _ = broker.handle(.request(c1, try frame("stats reset")), nowMs: later)
        #expect(replyBytes(broker.handle(.request(c1, try frame("stats realtime 7")), nowMs: later))?.contains("realtime_put null") == true)
        try exercise(&broker)
        let afterRoll = broker.handle(.request(c1, try frame("stats realtime 8")), nowMs: later + RealtimeStats.intervalMs)
        #expect(replyBytes(afterRoll) == expected(values.map { "realtime_\($0.0) null" }, opaque: 8))
    }

    /// Topics without `stat=true` are not counted (§9).
    @Test func realtimeIgnoresTopicsWithoutStat() throws {
        var broker = machine(stat: false)
        try exercise(&broker)
        let text = try #require(replyBytes(broker.handle(.request(c1, try frame("stats realtime 4")), nowMs: now + 1000)))
        #expect(!text.contains("Count="), "\(text)")
    }

    /// Topic names come from the wire: a `stat=true` wildcard must not let gets of ever new names
    /// grow the table without bound. Past `maxTopics`, new topics are dropped; known ones count on.
    @Test func realtimeTableIsBounded() {
        var stats = RealtimeStats(startedMs: 0)
        for i in 0..<(RealtimeStats.maxTopics + 500) { stats.record(.get, topic: "w-\(i)", nowMs: 1) }
        #expect(stats.topics.count == RealtimeStats.maxTopics)
        #expect(stats.droppedEvents == 500)
        stats.record(.get, topic: "w-0", nowMs: 2)
        #expect(stats.sample(.get, topic: "w-0")?.count == 2, "a counted topic keeps counting")
        #expect(stats.sample(.get, topic: "w-\(RealtimeStats.maxTopics + 1)") == nil)
        stats.reset(nowMs: 3)
        #expect(stats.topics.isEmpty && stats.droppedEvents == 0)
    }

    /// The last topic's slot is remembered (puts of one topic come in runs): interleaved topics,
    /// a reset and a roll must still count every event against its own topic.
    @Test func realtimeCountsInterleavedTopicsAcrossResets() {
        var stats = RealtimeStats(startedMs: 0)
        for i in 0..<30 {
            let topic = i % 3 == 0 ? "a" : "b"
            stats.recordPut(topic: topic, bytes: 10, nowMs: 1)
            stats.record(.get, topic: "c", nowMs: 1)
        }
        #expect(stats.sample(.put, topic: "a") == RealtimeStats.Sample(count: 10, value: 10))
        #expect(stats.sample(.messageSize, topic: "b") == RealtimeStats.Sample(count: 20, value: 200))
        #expect(stats.sample(.get, topic: "c")?.count == 30)
        #expect(stats.total(.put)?.count == 30)
        stats.reset(nowMs: 2)
        stats.recordPut(topic: "b", bytes: 7, nowMs: 3)
        #expect(stats.sample(.put, topic: "a") == nil, "a reset forgets the remembered topic too")
        #expect(stats.sample(.messageSize, topic: "b") == RealtimeStats.Sample(count: 1, value: 7))
        stats.recordPut(topic: "b", bytes: 5, nowMs: 3 + RealtimeStats.intervalMs)
        #expect(stats.sample(.messageSize, topic: "b") == RealtimeStats.Sample(count: 1, value: 5), "rolled")
    }

    /// Java's `#.##`: at most two decimals, half-even, no trailing zeros.
    @Test func realtimeNumberFormat() {
        #expect(RealtimeStats.format(100) == "100")
        #expect(RealtimeStats.format(0.2) == "0.2")
        #expect(RealtimeStats.format(1.0 / 3) == "0.33")
        #expect(RealtimeStats.format(2.0 / 3) == "0.67")
        #expect(RealtimeStats.format(0.125) == "0.12")
        #expect(RealtimeStats.format(0.05) == "0.05")
        #expect(RealtimeStats.format(12.5) == "12.5")
    }

    /// `stats reset` leaves the system counters alone (only realtime statistics reset, §9).
    @Test func resetKeepsSystemCounters() throws {
        var broker = machine()
        try exercise(&broker)
        let before = broker.statsCounters
        _ = broker.handle(.request(c1, try frame("stats reset")), nowMs: now)
        #expect(broker.statsCounters == before)
    }

    /// §1.4.6: `stats config` is framed by the runtime (file size, raw bytes); nothing is collected.
    @Test func configIsSentByTheRuntime() throws {
        var broker = machine()
        #expect(broker.handle(.request(c1, try frame("stats config 9")), nowMs: now) == [.sendConfigFile(c1, opaque: 9)])
        #expect(broker.handle(.request(c1, try frame("stats config")), nowMs: now) == [.sendConfigFile(c1, opaque: .max)])
        #expect(broker.pendingCount == 0)
    }

    @Test func collectStatsCarriesTheItem() throws {
        var broker = machine()
        #expect(broker.handle(.request(c1, try frame("stats")), nowMs: now) == [.collectStats(token: 1, item: nil)])
        #expect(broker.handle(.request(c1, try frame("stats offsets 3")), nowMs: now) == [.collectStats(token: 2, item: "offsets")])
    }

    /// A snapshot for a token nobody waits for is ignored; a closed connection loses its answer.
    @Test func unknownTokenAndClosedConnection() throws {
        var broker = machine()
        #expect(broker.handle(.statsCollected(token: 99, snapshot()), nowMs: now).isEmpty)
        guard case .collectStats(let token, _)? = broker.handle(.request(c1, try frame("stats")), nowMs: now).first else {
            Issue.record("no collection")
            return
        }
        #expect(broker.handle(.connectionClosed(c1), nowMs: now).isEmpty)
        #expect(broker.pendingCount == 0)
        #expect(broker.handle(.statsCollected(token: token, snapshot()), nowMs: now).isEmpty)
    }

    /// `sync` and `transaction` keep the 503 of a command without a processor (§1.1).
    @Test func transactionStillUnhandled() throws {
        var broker = machine()
        let tx = broker.handle(.request(c1, try frame("transaction TX:s:1 s BEGIN 4")), nowMs: now)
        #expect(replyBytes(tx)?.hasPrefix("result 503 ") == true)
        #expect(replyBytes(tx)?.hasSuffix("TransactionCommand") == true)
    }
}
