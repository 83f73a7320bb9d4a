import BrokerCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import ProcessHarness
import Prometheus
import ProtocolCore
import StoreCore
import Synchronization
import Testing
@testable import Runtime

/// Issue 19: `/metrics` parses as Prometheus text exposition — checked with the official Python
/// client's parser (`prometheus_client.parser`, installed by scripts/install-deps.sh), not with
/// our own reading of the format — and its counters move by exactly what a test sent.
@Suite("Metrics exposition (/metrics)", .serialized)
struct MetricsExpositionTests {
    /// A broker on a temp dir with group commit (every put answered after its sync, so the put
    /// latency histogram counts each put once), and a `BrokerMetrics` rendering on its own loop.
    /// A lag source that runs as a Swift task runs it on `ReadTaskExecutor`, as the broker's does:
    /// this test blocks in `.wait()` while other tests may hold the rest of the cooperative pool.
    static func withBroker(consumerLag: BrokerMetrics.ConsumerLagSource? = nil,
                           _ body: (BrokerServer, BrokerMetrics, Int) throws -> Void) throws {
        try withTemporaryDirectory { directory in
            let ini = """
                [system]
                brokerId=7
                dataPath=\(directory)
                unflushThreshold=0
                [topic=test]
                numPartitions=2
                """
            let config = try ServerConfig(parsing: ini, path: "test.ini")
            let settings = BrokerNode.Settings(brokerURI: "meta://127.0.0.1:8123", version: "t", configFile: Array(ini.utf8), seed: 1)
            let (node, _) = try BrokerNode.open(storage: FileStorage(), config: config, defaultDataPath: directory,
                                                settings: settings, clock: NodeClock(now: Clocks.monotonic(), wallMs: Clocks.wallMs()))
            let server = BrokerServer(node: node, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
            let port = try server.start(host: "127.0.0.1", port: 0)
            defer { _ = try? server.stop() }
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            defer { try? group.syncShutdownGracefully() }
            try body(server, BrokerMetrics(server: server, renderingOn: group.next(), consumerLag: consumerLag), port)
        }
    }

    @Test("parses with prometheus_client; puts, bytes and the put histogram move by exactly what was sent")
    func countersMoveByExactlyThePutsSent() throws {
        try Self.withBroker { _, metrics, port in
            let connection = try WireConnection(host: "127.0.0.1", port: port)
            // Warm up: the first scrape registers every series; a put before it makes the
            // partition exist, so both scrapes carry its gauges.
            #expect(try Self.put(connection, partition: 0, body: [1], opaque: 1) == StatusCode.success)
            let before = try metrics.exposition().wait()

            let puts = 37
            var bodyBytes = 0
            for index in 0..<puts {
                let body = [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: 1 + index * 13)
                bodyBytes += body.count
                #expect(try Self.put(connection, partition: Int32(index % 2), body: body, opaque: Int32(100 + index)) == StatusCode.success)
            }
            let get = try connection.request(.get(GetCommand(topic: "test", group: "g", partition: 0, offset: 0, maxSize: 1 << 20, opaque: 999)))
            guard case .value = get else { Issue.record("get answered \(get)"); return }
            let after = try metrics.exposition().wait()

            let parsed = try Self.parse([before, after])
            let (b, a) = (parsed.samples[0], parsed.samples[1])
            func delta(_ key: String) -> Double? {
                guard let x = a[key], let y = b[key] else { Issue.record("missing \(key)"); return nil }
                return x - y
            }
            #expect(delta("metaq_puts_total") == Double(puts))
            #expect(delta("metaq_received_bytes_total") == Double(bodyBytes))
            #expect(delta("metaq_put_failures_total") == 0)
            #expect(delta("metaq_gets_total") == 1)
            #expect((delta("metaq_sent_bytes_total") ?? 0) > 0)
            #expect(delta("metaq_put_duration_seconds_count") == Double(puts))
            #expect(a["metaq_put_duration_seconds_bucket{le=\"+Inf\"}"] == a["metaq_put_duration_seconds_count"])
            #expect((delta("metaq_syncs_total") ?? 0) >= 1)
            let messages = (a["metaq_partition_messages{partition=\"0\",topic=\"test\"}"] ?? 0)
                + (a["metaq_partition_messages{partition=\"1\",topic=\"test\"}"] ?? 0)
            #expect(messages == Double(puts + 1))
            #expect(a["metaq_topic_messages{topic=\"test\"}"] == Double(puts + 1))
            #expect(a["metaq_connections"] == 1)
            #expect(a["metaq_broker_info{broker_id=\"7\",role=\"master\",version=\"t\"}"] == 1)
            #expect((a["process_resident_memory_bytes"] ?? 0) > 0)
            #expect((a["process_open_fds"] ?? 0) > 0)
            #expect((a["process_threads"] ?? 0) >= 1)
            #expect((a["process_start_time_seconds"] ?? 0) > 1_700_000_000)
            #expect(parsed.types["metaq_puts"] == "counter")
            #expect(parsed.types["metaq_put_duration_seconds"] == "histogram")
            #expect(parsed.types["metaq_sync_fsync_duration_seconds"] == "histogram")
            #expect(parsed.types["metaq_partition_size_bytes"] == "gauge")
            #expect(parsed.types["process_cpu_seconds"] == "counter")
        }
    }

    @Test("concurrent scrapes each answer a whole exposition and counters never go back")
    func concurrentScrapes() throws {
        try Self.withBroker { _, metrics, port in
            let connection = try WireConnection(host: "127.0.0.1", port: port)
            var scrapes: [EventLoopFuture<String>] = []
            for index in 0..<20 {
                #expect(try Self.put(connection, partition: 0, body: [0x61, 0x62], opaque: Int32(index)) == StatusCode.success)
                scrapes += (0..<3).map { _ in metrics.exposition() }
            }
            let texts = try scrapes.map { try $0.wait() }
            let parsed = try Self.parse(texts + [try metrics.exposition().wait()])
            for sample in parsed.samples { #expect(sample["metaq_puts_total"] != nil) }
            // Whatever order the scrapes finished in, the final one shows every put.
            #expect(parsed.samples.last?["metaq_puts_total"] == 20)
            #expect(parsed.samples.map { $0["metaq_puts_total"] ?? -1 }.max() == 20)
        }
    }

    /// A ZooKeeper tree of consumer znodes (reference §3.2) answering like a session's `perform`.
    static func fakeZooKeeper(_ nodes: [String: String?]) -> ConsumerLag.Perform {
        { request in
            switch request {
            case .getChildren(let path, _):
                let prefix = path + "/"
                let children = Set(nodes.keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count).split(separator: "/")[0]) })
                return children.isEmpty && nodes[path] == nil ? .failed(.noNode) : .children(children.sorted())
            case .getData(let path, _):
                guard let data = nodes[path] else { return .failed(.noNode) }
                return .data(data.map { Array($0.utf8) })
            default:
                return .failed(.noNode)
            }
        }
    }

    @Test("consumer lag per group and partition from ZooKeeper's offsets and owners; a failed read is counted and left out")
    func consumerLag() throws {
        let layout = MetaZooKeeperLayout(root: "/meta")
        let g1 = "/meta/consumers/g1", g2 = "/meta/consumers/g2"
        let perform = Self.fakeZooKeeper([
            "\(g1)/offsets/test/7-0": "12-0",            // nothing consumed
            "\(g1)/offsets/test/7-1": "99-999999",       // beyond the end: clamped, no lag
            "\(g1)/offsets/test/3-0": "1-0",             // another broker's partition: not ours
            "\(g1)/owners/test/7-0": "g1_host-1",
            "\(g2)/owners/test/7-0": "g2_host-1",        // owns, never committed: all of it pending
            "/meta/consumers/idle/offsets/other/7-0": "1-0",
        ])
        let fails = Mutex(false)
        let source: BrokerMetrics.ConsumerLagSource = { observation, loop in
            if fails.withLock({ $0 }) { return loop.makeFailedFuture(ConsumerLagUnavailable()) }
            let promise = loop.makePromise(of: [ConsumerLagSample].self)
            promise.completeWithReadTask { try await BrokerMetrics.readConsumerLag(observation: observation, layout: layout, perform: perform) }
            return promise.futureResult
        }
        try Self.withBroker(consumerLag: source) { _, metrics, port in
            let connection = try WireConnection(host: "127.0.0.1", port: port)
            for index in 0..<10 {
                #expect(try Self.put(connection, partition: Int32(index % 2), body: Array(repeating: 0x41, count: 10 + index), opaque: Int32(index)) == StatusCode.success)
            }
            let good = try metrics.exposition().wait()
            fails.withLock { $0 = true }
            let failed = try metrics.exposition().wait()
            let parsed = try Self.parse([good, failed])
            let (a, f) = (parsed.samples[0], parsed.samples[1])
            func lag(_ group: String, _ partition: Int, _ unit: String = "bytes") -> Double? {
                a["metaq_consumer_lag_\(unit){group=\"\(group)\",partition=\"7-\(partition)\",topic=\"test\"}"]
            }
            let end0 = try #require(a["metaq_partition_max_offset{partition=\"0\",topic=\"test\"}"])
            let end1 = try #require(a["metaq_partition_max_offset{partition=\"1\",topic=\"test\"}"])
            #expect(end0 > 0 && lag("g1", 0) == end0)
            #expect(lag("g1", 0, "messages") == 5)
            #expect(lag("g1", 1) == 0 && lag("g1", 1, "messages") == 0)
            #expect(lag("g2", 0) == end0 && lag("g2", 1) == end1)
            #expect(a.keys.filter { $0.hasPrefix("metaq_consumer_lag_bytes{") }.count == 4, "\(a.keys.sorted())")
            #expect(a["metaq_consumer_lag_read_failures_total"] == 0)
            #expect(f["metaq_consumer_lag_read_failures_total"] == 1)
            #expect(!f.keys.contains { $0.hasPrefix("metaq_consumer_lag_bytes{") }, "no stale lag after a failed read")
        }
    }

    @Test("a consumer lag read slower than the timeout: the scrape answers without it and counts the failure")
    func slowConsumerLag() throws {
        try Self.withBroker { server, _, _ in
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            defer { try? group.syncShutdownGracefully() }
            // Answers after 2 s, far past the 100 ms allowed; the test waits for it at the end so
            // no promise is left uncompleted when the loop shuts down.
            let pending = Mutex<[EventLoopFuture<[ConsumerLagSample]>]>([])
            let slow: BrokerMetrics.ConsumerLagSource = { _, loop in
                let promise = loop.makePromise(of: [ConsumerLagSample].self)
                loop.scheduleTask(in: .seconds(2)) { promise.succeed([ConsumerLagSample(group: "g", topic: "test", partition: "7-0", lagBytes: 1, lagMessages: 1)]) }
                pending.withLock { $0.append(promise.futureResult) }
                return promise.futureResult
            }
            defer { for future in pending.withLock({ $0 }) { _ = try? future.wait() } }
            let metrics = BrokerMetrics(observe: { server.observe() }, renderingOn: group.next(), consumerLag: slow,
                                        consumerLagTimeoutMs: 100, registry: PrometheusCollectorRegistry())
            let started = Date()
            let text = try metrics.exposition().wait()
            #expect(Date().timeIntervalSince(started) < 1.9, "the scrape did not wait for the slow read")
            let sample = try Self.parse([text]).samples[0]
            #expect(sample["metaq_consumer_lag_read_failures_total"] == 1)
            #expect(!sample.keys.contains { $0.hasPrefix("metaq_consumer_lag_bytes") })
            #expect(sample["metaq_puts_total"] == 0)
        }
    }

    static func put(_ connection: WireConnection, partition: Int32, body: [UInt8], opaque: Int32) throws -> Int32? {
        let answer = try connection.request(.put(PutCommand(topic: "test", partition: partition, flag: 0, checksum: nil, body: body, opaque: opaque)))
        guard case .result(let result) = answer else { return nil }
        return result.code
    }

    /// Every sample of each exposition and every family's type, as `prometheus_client` reads them.
    static func parse(_ texts: [String]) throws -> (samples: [[String: Double]], types: [String: String]) {
        try PrometheusText.parse(texts)
    }
}
