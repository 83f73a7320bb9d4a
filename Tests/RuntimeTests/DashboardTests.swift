import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ProtocolCore
@testable import Runtime
import StoreCore
import Testing

/// Consumer lag (#113), routing, JSON keys and bad requests of the dashboard (reference §7.2).
@Suite("Dashboard pieces (reference §7.2)")
struct DashboardTests {
    static func stats(_ topic: String, _ partition: Int32, min: Int64, max: Int64, count: Int64) -> StatsSnapshot.PartitionStats {
        .init(partition: TopicPartition(topic, partition), minOffset: min, maxOffset: max, messageCount: count, bytes: max - min)
    }

    // MARK: lag

    @Test func lagIsMaxMinusOffsetAndMessagesAreEstimated() {
        let p = Self.stats("t", 0, min: 0, max: 1000, count: 10)
        let key = BrokerPartition(brokerId: 2, partition: 0)
        let lag = ConsumerLag.lag(of: p, key: key, stored: 300, owner: "c1")
        #expect(lag.pendingBytes == 700 && lag.pendingMessages == 7)
        #expect(lag.consumedBytes == 300 && lag.consumedMessages == 3)
        #expect(lag.clamped == nil && lag.owner == "c1" && lag.consumerOffset == 300)
    }

    /// MetaQ issue #113: deletion moved the minimum offset past the consumer's; the original
    /// showed negative consumed messages. Clamped at the minimum and flagged.
    @Test func offsetBelowMinimumIsClampedAndFlagged() {
        let p = Self.stats("t", 1, min: 5000, max: 6000, count: 4)
        let lag = ConsumerLag.lag(of: p, key: BrokerPartition(brokerId: 0, partition: 1), stored: 100, owner: nil)
        #expect(lag.clamped == .belowMinimum)
        #expect(lag.consumedBytes == 0 && lag.consumedMessages == 0)
        #expect(lag.pendingBytes == 1000 && lag.pendingMessages == 4)
        #expect(lag.consumerOffset == 100, "the stored offset is shown as read")
    }

    @Test func offsetBeyondMaximumIsClampedAndFlagged() {
        let p = Self.stats("t", 0, min: 0, max: 200, count: 2)
        let lag = ConsumerLag.lag(of: p, key: BrokerPartition(brokerId: 0, partition: 0), stored: 999, owner: nil)
        #expect(lag.clamped == .aboveMaximum && lag.pendingBytes == 0 && lag.pendingMessages == 0)
        #expect(lag.consumedBytes == 200 && lag.consumedMessages == 2)
    }

    @Test func noCommittedOffsetMeansNothingConsumedAndNoFlag() {
        let p = Self.stats("t", 0, min: 100, max: 400, count: 3)
        let lag = ConsumerLag.lag(of: p, key: BrokerPartition(brokerId: 0, partition: 0), stored: nil, owner: nil)
        #expect(lag.clamped == nil && lag.pendingBytes == 300 && lag.consumedBytes == 0 && lag.pendingMessages == 3)
    }

    @Test func computeTakesThisBrokersPartitionsInOrder() {
        let partitions = [Self.stats("t", 1, min: 0, max: 50, count: 1), Self.stats("t", 0, min: 0, max: 100, count: 2)]
        let state = GroupTopicState(offsets: [BrokerPartition(brokerId: 4, partition: 0): StoredOffset(msgId: 9, offset: 50),
                                              BrokerPartition(brokerId: 5, partition: 1): StoredOffset(msgId: 9, offset: 50)],
                                    owners: [BrokerPartition(brokerId: 4, partition: 1): "g-c2"])
        let lags = ConsumerLag.compute(brokerId: 4, partitions: partitions, state: state)
        #expect(lags.map(\.partition.description) == ["4-0", "4-1"])
        #expect(lags[0].pendingBytes == 50 && lags[0].pendingMessages == 1)
        #expect(lags[1].consumerOffset == nil && lags[1].owner == "g-c2" && lags[1].pendingBytes == 50)
    }

    @Test func readTakesOffsetsAndOwnersFromTheGroupsZnodes() async throws {
        let layout = MetaZooKeeperLayout()
        let nodes: [String: CoordinationReply] = [
            "/meta/consumers/g/offsets/t": .children(["1-0", "2-0", "1-1", "junk"]),
            "/meta/consumers/g/offsets/t/1-0": .data(Array("77-120".utf8)),
            "/meta/consumers/g/offsets/t/1-1": .data(Array("5".utf8)),
            "/meta/consumers/g/owners/t": .children(["1-1"]),
            "/meta/consumers/g/owners/t/1-1": .data(Array("g_host-1".utf8)),
            "/meta/consumers": .children(["g", "other"]),
        ]
        let perform: ConsumerLag.Perform = { request in nodes[request.path] ?? .failed(.noNode) }
        let state = try await ConsumerLag.read(group: "g", topic: "t", brokerId: 1, layout: layout, perform: perform)
        #expect(state.offsets == [BrokerPartition(brokerId: 1, partition: 0): StoredOffset(msgId: 77, offset: 120),
                                  BrokerPartition(brokerId: 1, partition: 1): StoredOffset(msgId: -1, offset: 5)])
        #expect(state.owners == [BrokerPartition(brokerId: 1, partition: 1): "g_host-1"])
        #expect(try await ConsumerLag.groups(of: "t", layout: layout, perform: perform) == ["g"])
        let failing: ConsumerLag.Perform = { _ in .failed(.connectionLoss) }
        await #expect(throws: CoordinationError.connectionLoss) {
            try await ConsumerLag.read(group: "g", topic: "t", brokerId: 1, layout: layout, perform: failing)
        }
    }

    // MARK: routing

    @Test func routes() {
        func route(_ method: HTTPMethod, _ target: String) -> Result<DashboardRoute, DashboardRoute.Refusal> {
            DashboardRoute.resolve(method: method, query: HTTPQuery(target: target))
        }
        #expect(route(.GET, "/") == .success(.overview))
        #expect(route(.GET, "/dashboard") == .success(.overview))
        #expect(route(.GET, "/topics/") == .success(.topics))
        #expect(route(.GET, "/topics/a.b?group=g1") == .success(.topic("a.b", group: "g1")))
        #expect(route(.GET, "/topics/a?group=") == .success(.topic("a", group: nil)))
        #expect(route(.GET, "/topics/a?group=..%2Fx") == .failure(.notFound), "a group name is one znode name")
        #expect(route(.POST, "/topics/a/groups/g/partitions/3/skip") == .success(.skip(topic: "a", group: "g", partition: 3)))
        #expect(route(.GET, "/topics/a/groups/g/partitions/3/skip") == .failure(.methodNotAllowed(allowed: [.POST])))
        #expect(route(.POST, "/topics/a/groups/g/partitions/-1/skip") == .failure(.notFound))
        #expect(route(.POST, "/reload-config") == .success(.reloadConfig))
        #expect(route(.GET, "/reload-config") == .failure(.methodNotAllowed(allowed: [.POST])))
        #expect(route(.DELETE, "/topics") == .failure(.methodNotAllowed(allowed: [.GET, .HEAD])))
        #expect(route(.GET, "/stats/offsets") == .success(.stats(item: "offsets")))
        #expect(route(.GET, "/stats/a%20b") == .failure(.notFound), "a stats item is one wire token")
        #expect(route(.GET, "/stats/a%0D%0Aquit") == .failure(.notFound))
        #expect(route(.GET, "/topics/..") == .failure(.notFound))
        #expect(route(.GET, "/metrics") == .success(.metrics))
        #expect(route(.GET, "/nothing/here") == .failure(.notFound))
    }

    @Test func htmlAndJSONEscape() {
        #expect(HTML.escape("<a href=\"x\">&'") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;")
        #expect(JSONValue.object([("k\"", .string("a\n</script>\u{1}")), ("n", .int(-3)), ("z", .null)]).text
                == "{\"k\\\"\":\"a\\n\\u003c/script>\\u0001\",\"n\":-3,\"z\":null}")
        #expect(HTML.grouped(1234567) == "1,234,567" && HTML.grouped(-1000) == "-1,000" && HTML.grouped(12) == "12")
        #expect(HTML.bytes(1536) == "1.50 KiB" && HTML.urlComponent("a b/ü") == "a%20b%2F%C3%BC")
    }

    @Test func samplerRatesNeverNegativeAndBounded() {
        var sampler = ThroughputSampler(capacity: 3)
        sampler.add(.init(wallMs: 1000, cmdPut: 0, cmdGet: 0, topics: ["t": (0, 0)]))
        sampler.add(.init(wallMs: 3000, cmdPut: 10, cmdGet: 4, topics: ["t": (10, 500)]))
        sampler.add(.init(wallMs: 2000, cmdPut: 99, cmdGet: 99, topics: [:]))  // clock went back: ignored
        sampler.add(.init(wallMs: 5000, cmdPut: 10, cmdGet: 4, topics: ["t": (4, 100)]))  // deletion: 0, not negative
        sampler.add(.init(wallMs: 6000, cmdPut: 12, cmdGet: 4, topics: ["t": (6, 140)]))
        #expect(sampler.samples.count == 3)
        #expect(sampler.rates(of: "t").map(\.messages) == [0, 2])
        #expect(sampler.latestRate(of: "t").bytes == 40)
        #expect(sampler.chart(of: "t").contains("<polyline"))
    }

    // MARK: a served dashboard

    static func observation() -> BrokerObservation {
        var config = ServerConfig(brokerId: 3)
        config.topics = [TopicSection(name: "alpha", line: 1)]
        let snapshot = StatsSnapshot(pid: 42, uptimeSeconds: 65, threads: 5, currentConnections: 2, configChecksum: 1, isSlave: false,
                                     partitions: [Self.stats("alpha", 0, min: 0, max: 300, count: 3),
                                                  Self.stats("alpha", 1, min: 0, max: 100, count: 1)],
                                     configuredTopics: ["alpha"])
        let h = DurationHistogram()
        return BrokerObservation(snapshot: snapshot, counters: StatsCounters(), closedPartitions: [TopicPartition("alpha", 1)],
                                 failedPartitions: [], config: config, configFile: Array("[system]\nbrokerId=3\n<x>\n".utf8),
                                 configLoadedWallMs: 1_700_000_030_000,
                                 brokerURI: "meta://h:8123", version: "v1", startedWallMs: 1_700_000_000_000,
                                 takenWallMs: 1_700_000_065_000,
                                 syncStats: SyncCycleStatsView(waitForSync: h, handOff: h, fsync: h, handBack: h, answer: h, batch: h),
                                 bytesIn: 0, bytesOut: 0)
    }

    /// Runs `body` against a dashboard serving `observation()` on a free port.
    static func withDashboard(metrics: (@Sendable () -> EventLoopFuture<String>)? = nil,
                              _ body: (Int) throws -> Void) throws {
        let nodeLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? nodeLoop.syncShutdownGracefully() }
        let loop = nodeLoop.next()
        var settings = DashboardSettings(host: "127.0.0.1", port: 0, advertisedHost: "127.0.0.1", serverPort: 1, dataPath: "/d", zooKeeper: nil)
        settings.maxConnections = 4
        settings.maxHeadBytes = 2048
        settings.maxBodyBytes = 1024
        let dashboard = DashboardServer(settings: settings, observe: { loop.makeSucceededFuture(Self.observation()) }, metrics: metrics,
                                        logLines: { ["line <1>", "line 2"] }, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let port = try dashboard.start()
        defer { dashboard.stop() }
        try body(port)
    }

    /// One request on a fresh connection; the whole answer (the server closes: `Connection: close`).
    static func exchange(_ port: Int, _ request: String) throws -> String {
        let connection = try WireConnection(host: "127.0.0.1", port: port)
        try connection.sendRaw(Array(request.utf8))
        var answer: [UInt8] = []
        while try connection.receiveRaw({ answer += $0 }) {}
        return String(decoding: answer, as: UTF8.self)
    }

    static func get(_ port: Int, _ path: String, json: Bool = false) throws -> String {
        try exchange(port, "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + (json ? "Content-Type: application/json\r\n" : "") + "\r\n")
    }

    static func body(_ answer: String) -> String {
        answer.range(of: "\r\n\r\n").map { String(answer[$0.upperBound...]) } ?? ""
    }

    @Test func pagesAnswerHTMLAndJSONWithTheOriginalsKeys() throws {
        try Self.withDashboard { port in
            let overview = try Self.get(port, "/")
            #expect(overview.hasPrefix("HTTP/1.1 200") && overview.contains("text/html") && overview.contains("data-name=\"broker_id\" data-value=\"3\""))
            let topics = Self.body(try Self.get(port, "/topics", json: true))
            #expect(topics.hasPrefix("{\"topics\":[{\"topic\":\"alpha\",\"partitions\":2,\"messageCount\":4,\"messageBytes\":400,\"avgMsgSize\":100,"), "\(topics)")
            for key in ["\"puts\":", "\"gets\":", "\"getMissed\":", "\"putFailed\":", "\"topicConfig\":{", "\"deletePolicy\":", "\"unflushThreshold\":", "\"closedPartitions\":[1]"] {
                #expect(topics.contains(key), "\(key) missing in \(topics)")
            }
            let dashboard = Self.body(try Self.get(port, "/dashboard", json: true))
            for key in ["\"instance\":{\"start\":", "\"data_log\":", "\"version\":{\"metaq\":\"v1\",\"id\":3,\"uri\":\"meta://h:8123\"}", "\"sys_memory\":", "\"fdc_used\":"] {
                #expect(dashboard.contains(key), "\(key) missing in \(dashboard)")
            }
            let topic = Self.body(try Self.get(port, "/topics/alpha?group=g", json: true))
            #expect(topic.contains("\"partitions\":[{\"partition\":0,\"minOffset\":0,\"maxOffset\":300"), "\(topic)")
            let page = try Self.get(port, "/topics/alpha")
            #expect(page.contains("local mode") && page.contains("<svg class=\"chart\""))
            #expect(try Self.get(port, "/topics/nothing").hasPrefix("HTTP/1.1 404"))
            let config = try Self.get(port, "/config")
            #expect(config.contains("brokerId=3\n&lt;x&gt;"), "config text escaped")
            let configJSON = Self.body(try Self.get(port, "/config", json: true))
            #expect(configJSON.hasPrefix("{\"config\":\"[system]\\nbrokerId=3\\n\\u003cx>\\n\""))
            #expect(configJSON.contains("\"lastLoaded\":\"\(DashboardContext.time(1_700_000_030_000))\""), "\(configJSON)")
            #expect(try Self.get(port, "/logging").contains("line &lt;1&gt;\nline 2"))
            #expect(Self.body(try Self.get(port, "/cluster", json: true)) == "{\"current\":\"meta://h:8123\",\"nodes\":[]}")
            let metrics = try Self.get(port, "/metrics")
            #expect(metrics.hasPrefix("HTTP/1.1 501"), "no metrics hook: 501")
            let reload = try Self.exchange(port, "POST /reload-config HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            #expect(reload.hasPrefix("HTTP/1.1 501") && reload.contains("not available"))
        }
    }

    @Test func metricsHookIsServedAsPrometheusText() throws {
        try Self.withDashboard(metrics: { MultiThreadedEventLoopGroup.singleton.next().makeSucceededFuture("metaq_up 1\n") }) { port in
            let answer = try Self.get(port, "/metrics")
            #expect(answer.hasPrefix("HTTP/1.1 200") && answer.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"))
            #expect(Self.body(answer) == "metaq_up 1\n")
        }
    }

    @Test func badRequestsGetClearAnswers() throws {
        try Self.withDashboard { port in
            #expect(try Self.get(port, "/nope").hasPrefix("HTTP/1.1 404"))
            let wrong = try Self.exchange(port, "PUT /topics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            #expect(wrong.hasPrefix("HTTP/1.1 405") && wrong.contains("Allow: GET, HEAD"))
            let big = try Self.exchange(port, "GET /?\(String(repeating: "a", count: 4000)) HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(big.hasPrefix("HTTP/1.1 431"), "\(big.prefix(80))")
            let body = try Self.exchange(port, "POST /reload-config HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + String(repeating: "b", count: 5000))
            #expect(body.hasPrefix("HTTP/1.1 413"), "\(body.prefix(80))")
            let garbage = try Self.exchange(port, "\u{1}\u{2} nonsense\r\n\r\n")
            #expect(garbage.isEmpty || garbage.hasPrefix("HTTP/1.1 400"), "\(garbage.prefix(80))")
            // A POST from another site's page (its Origin) is refused; from the dashboard's own page it goes on.
            let crossSite = try Self.exchange(port, "POST /reload-config HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
                + "Origin: http://evil.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            #expect(crossSite.hasPrefix("HTTP/1.1 403") && crossSite.contains("cross-site request refused"), "\(crossSite.prefix(120))")
            let sameSite = try Self.exchange(port, "POST /reload-config HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
                + "Origin: http://127.0.0.1:\(port)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            #expect(sameSite.hasPrefix("HTTP/1.1 501"), "no reload hook here: \(sameSite.prefix(120))")
            // Still serving after all that.
            #expect(try Self.get(port, "/topics").hasPrefix("HTTP/1.1 200"))
        }
    }
}
