import Foundation
import Logging
import ProtocolCore
import Runtime
import Testing
import ProcessHarness

/// The dashboard (reference §7.2, issue 19) in a real headless browser (Debian's `chromium`):
/// every page of a local-mode broker and of a two-broker cluster on a real ZooKeeper loads
/// without a console message, the numbers it shows (marked `data-name`/`data-value`) equal the
/// broker's own `stats` answers, and each page leaves a screenshot in
/// `.build/dashboard-screenshots/` (not committed).
@Suite("Dashboard in headless Chromium (reference §7.2)", .serialized)
struct DashboardBrowserTests {
    // MARK: local mode

    static func localConfig() -> String {
        """
        [system]
        brokerId=7
        numPartitions=2
        unflushThreshold=0

        [zookeeper]
        zk.zkEnable=false

        [topic=alpha]

        [topic=beta]
        numPartitions=3
        """
    }

    @Test func everyPageOfALocalBroker() throws {
        let browser = try Browser()
        let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-dash")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try BrokerProcess(directory: directory, config: Self.localConfig())
        broker.dashboardPort = try LocalProcess.freePort()
        try broker.start()
        defer { _ = broker.stop() }
        try Self.waitForDashboard(broker.dashboardPort)
        for (topic, partition, count) in [("alpha", 0, 3), ("alpha", 1, 2), ("beta", 2, 4)] {
            let messages = (0..<count).map { "\(topic)-message-\($0)" }
            let produced = try broker.tool(["produce", topic, "--partition", "\(partition)"] + messages)
            #expect(produced.status == 0, "\(produced.output)")
        }
        let base = "http://127.0.0.1:\(broker.dashboardPort)"
        // More puts between the sampler's samples, so the throughput chart has a line to draw.
        for round in 1...3 {
            try Self.waitForSamples(port: broker.dashboardPort, topic: "alpha", rates: round)
            #expect(try broker.tool(["produce", "alpha", "--partition", "0"] + (0..<(round * 3)).map { "more-\(round)-\($0)" }).status == 0)
        }
        try Self.waitForSamples(port: broker.dashboardPort, topic: "alpha", rates: 4)
        let wire = try WireConnection(host: "127.0.0.1", port: broker.port)

        let overview = try browser.load(base + "/", shot: "local-overview")
        let system = try Self.stats(wire, nil)
        #expect(overview.value("broker_id") == system["broker_id"])
        #expect(overview.value("pid") == system["pid"])
        #expect(overview.dom.contains("local (no ZooKeeper)"))

        let topics = try browser.load(base + "/topics", shot: "local-topics")
        let statsTopics = try Self.statsLines(wire, "topics")
        for topic in ["alpha", "beta"] {
            let row = topics.row("data-topic=\"\(topic)\"")
            let line = try #require(statsTopics[topic], "stats topics has no \(topic)")
            #expect(row["message_count"] == line["message_count"], "\(topic): \(row) vs \(line)")
            #expect(row["message_bytes"] == line["message_bytes"], "\(topic): \(row) vs \(line)")
            #expect(row["partitions"] == line["partitions"], "\(topic): \(row) vs \(line)")
        }

        let offsets = try Self.statsOffsets(wire)
        for topic in ["alpha", "beta"] {
            let page = try browser.load(base + "/topics/\(topic)", shot: "local-topic-\(topic)")
            #expect(page.dom.contains("<svg class=\"chart\""), "no throughput chart on \(topic)")
            #expect(page.dom.contains("local mode"), "the group block must say there is no ZooKeeper")
            for ((t, partition), range) in offsets where t == topic {
                let row = page.row("data-partition=\"\(partition)\"")
                #expect(row["min_offset"] == range.min && row["max_offset"] == range.max, "\(t)-\(partition): \(row) vs \(range)")
            }
        }

        let stats = try browser.load(base + "/stats/topics", shot: "local-stats")
        // The HTML parser turns the answer's CRLF into LF; otherwise the text is the broker's.
        let expected = try Self.statsText(wire, "topics").replacingOccurrences(of: "\r", with: "")
        #expect(stats.text("stats") == expected.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                    .replacingOccurrences(of: ">", with: "&gt;"), "\(stats.text("stats") ?? "")")
        let config = try browser.load(base + "/config", shot: "local-config")
        #expect(config.dom.contains("[topic=beta]"))
        // The Reload button posts to the broker's reload (`BrokerServer.reload()`, AdminVerbsTests).
        #expect(config.dom.contains("action=\"/reload-config\""))
        let cluster = try browser.load(base + "/cluster", shot: "local-cluster")
        #expect(cluster.dom.contains("local mode"))
        // The broker's own lines since start (Start.recentLogs): one logged before it listened.
        let logging = try browser.load(base + "/logging", shot: "local-logging")
        #expect(logging.dom.contains("file descriptor limit"))
        _ = try browser.load(base + "/stats", shot: "local-stats-system")
    }

    /// A dashboard port in use fails start-up with a message naming the key.
    @Test func aDashboardPortInUseFailsStartUp() throws {
        let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-dash-busy")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let holder = try BrokerProcess(directory: directory, config: Self.localConfig())
        holder.dashboardPort = try LocalProcess.freePort()
        try holder.start()
        defer { _ = holder.stop() }
        try Self.waitForDashboard(holder.dashboardPort)
        let result = try ChildProcess.run(BrokerProcess.binary, [
            "start", "--local", "-f", directory + "/server.ini", "--data", directory + "/other", "--port", "\(try LocalProcess.freePort())",
            "--host", "127.0.0.1", "--dashboard-port", "\(holder.dashboardPort)", "--foreground",
        ], error: .standardOutput, timeoutSeconds: 60)
        let output = String(decoding: result.output, as: UTF8.self)
        #expect(result.status == 1 && output.contains("dashboardHttpPort") && output.contains(":\(holder.dashboardPort)"), "\(output)")
    }

    // MARK: cluster mode

    static func clusterConfig(brokerId: Int, zk: String, dashboardPort: Int) -> String {
        """
        [system]
        brokerId=\(brokerId)
        hostName=127.0.0.1
        numPartitions=2
        unflushThreshold=0
        dashboardHttpPort=\(dashboardPort)

        [zookeeper]
        zk.zkConnect=\(zk)
        zk.zkSessionTimeoutMs=4000
        zk.zkSyncTimeMs=200

        [topic=alpha]
        """
    }

    @Test func aTwoBrokerClusterWithAConsumerGroup() async throws {
        let browser = try Browser()
        let zk = try ZooKeeperServer()
        try zk.start()
        defer { zk.stop() }
        let base = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-dash-cluster")
        defer { try? FileManager.default.removeItem(atPath: base) }
        var brokers: [BrokerProcess] = []
        defer { for broker in brokers { _ = broker.stop() } }
        for id in 0..<2 {
            let directory = base + "/broker\(id)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let port = try LocalProcess.freePort()
            let broker = try BrokerProcess(directory: directory, config: Self.clusterConfig(brokerId: id, zk: zk.connectString, dashboardPort: port))
            broker.local = false
            broker.dashboardPort = port
            try broker.start()
            brokers.append(broker)
            try Self.waitForDashboard(port)
        }
        let session = try await ClusterTests.observer(zk)
        defer { session.close() }
        #expect(await ClusterTests.eventually(20) { await ClusterTests.children(session, "/meta/brokers/topics-pub/alpha").count == 2 },
                "both brokers must publish alpha")
        let produced = try BrokerProcess.tool(["produce", "alpha", "--zookeeper", zk.connectString] + (0..<8).map { "m\($0)" })
        #expect(produced.status == 0, "\(produced.output)")
        // A group that consumed everything and committed its offsets (the tool closes its consumer).
        let consumed = try BrokerProcess.tool(["consume", "alpha", "--zookeeper", zk.connectString, "--group", "readers", "--count", "8"])
        #expect(consumed.status == 0 && consumed.output.split(separator: "\n").count == 8, "\(consumed.output)")
        let offsetsPath = "/meta/consumers/readers/offsets/alpha"
        let committedAll = await ClusterTests.eventually(20) { await ClusterTests.children(session, offsetsPath).count == 4 }
        let committedPartitions = await ClusterTests.children(session, offsetsPath)
        #expect(committedAll, "the group must commit an offset per partition: \(committedPartitions)")
        // A second group whose offset lies beyond the log: shown clamped (lag never negative, #113).
        for path in MetaZooKeeperLayout.ancestors(of: "/meta/consumers/ahead/offsets/alpha/0-0") {
            _ = await session.perform(.create(path: path, data: nil, mode: .persistent))
        }
        _ = await session.perform(.create(path: "/meta/consumers/ahead/offsets/alpha/0-0", data: Array("-1-999999".utf8), mode: .persistent))

        let first = brokers[0]
        let url = "http://127.0.0.1:\(first.dashboardPort)"
        let wire = try WireConnection(host: "127.0.0.1", port: first.port)
        let overview = try browser.load(url + "/", shot: "cluster-overview")
        #expect(overview.value("broker_id") == "0")
        #expect(overview.dom.contains("cluster (ZooKeeper)"))

        // The cluster page: both masters, with links to their own dashboards (learned by `stats config`).
        let cluster = try browser.load(url + "/cluster", shot: "cluster-cluster")
        for broker in brokers {
            #expect(cluster.dom.contains("meta://127.0.0.1:\(broker.port)"), "\(cluster.dom)")
            #expect(cluster.dom.contains("href=\"http://127.0.0.1:\(broker.dashboardPort)\""), "no dashboard link of \(broker.port)")
        }
        #expect(cluster.dom.contains("meta://127.0.0.1:\(first.port) <strong class=\"ok\">(this broker)</strong>"))

        // The topic page of the group: offsets as in ZooKeeper, lag as max − offset, never negative.
        let offsets = try Self.statsOffsets(wire)
        let page = try browser.load(url + "/topics/alpha?group=readers", shot: "cluster-topic-group", height: 1450)
        #expect(page.dom.contains("data-group=\"readers\"") && page.dom.contains("data-group=\"ahead\""), "groups list")
        for partition in 0..<2 {
            let stored = await ClusterTests.text(session, "\(offsetsPath)/0-\(partition)") ?? ""
            let committed = try #require(StoredOffset(text: stored), "offset of 0-\(partition): \(stored)")
            let range = try #require(offsets[("alpha", partition)].map { $0 }, "stats offsets has alpha-\(partition)")
            let row = page.row("data-partition=\"\(partition)\"", table: "lag")
            #expect(row["consumer_offset"] == "\(committed.offset)", "\(row)")
            #expect(row["pending_bytes"] == "\(Int64(range.max)! - committed.offset)", "\(row) vs \(range)")
            #expect(row["pending_bytes"].flatMap { Int64($0) }.map { $0 >= 0 } == true)
        }
        let ahead = try browser.load(url + "/topics/alpha?group=ahead", shot: "cluster-topic-clamped", height: 1450)
        #expect(ahead.dom.contains("id=\"clamped\"") && ahead.dom.contains("data-clamped=\"above-max-offset\""), "clamp not shown")
        #expect(ahead.row("data-partition=\"0\"", table: "lag")["pending_bytes"] == "0")

        // Skip (§7.2): refused while a consumer owns the partition, else the offset moves to the end.
        let ownerPath = "/meta/consumers/ahead/owners/alpha/0-1"
        for path in MetaZooKeeperLayout.ancestors(of: ownerPath) {
            _ = await session.perform(.create(path: path, data: nil, mode: .persistent))
        }
        _ = await session.perform(.create(path: ownerPath, data: Array("ahead_host-1".utf8), mode: .ephemeral))
        let refused = try HTTPTestClient.fetch(port: first.dashboardPort, "POST", "/topics/alpha/groups/ahead/partitions/1/skip")
        #expect(refused.status == 409 && refused.text.contains("owned by ahead_host-1"), "\(refused.text)")
        _ = await session.perform(.delete(path: ownerPath))
        let skipped = try HTTPTestClient.fetch(port: first.dashboardPort, "POST", "/topics/alpha/groups/ahead/partitions/1/skip")
        #expect(skipped.status == 200, "\(skipped.text)")
        let max1 = try #require(offsets[("alpha", 1)]).max
        #expect(await ClusterTests.text(session, "/meta/consumers/ahead/offsets/alpha/0-1") == "0-\(max1)")

        for path in ["/topics", "/config", "/stats", "/stats/offsets", "/logging"] {
            _ = try browser.load(url + path, shot: "cluster" + path.replacingOccurrences(of: "/", with: "-"))
        }
        _ = try browser.load("http://127.0.0.1:\(brokers[1].dashboardPort)/topics/alpha?group=readers", shot: "cluster-broker1-topic")
    }

    // MARK: helpers

    /// Waits until the dashboard answers.
    static func waitForDashboard(_ port: Int) throws {
        try LocalProcess.waitUntilAccepting(port: port, what: "the dashboard")
    }

    /// Waits until the topic page's JSON has `rates` throughput intervals (the sampler takes one
    /// every 5 s).
    static func waitForSamples(port: Int, topic: String, rates: Int) throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let answer = try? HTTPTestClient.fetch(port: port, "GET", "/topics/\(topic)", json: true).text
            if let answer, answer.components(separatedBy: "\"wallMs\":").count - 1 >= rates { return }
            usleep(200_000)
        }
        throw HarnessError("the dashboard did not sample \(rates) intervals of \(topic)")
    }

    static func statsText(_ wire: WireConnection, _ item: String?) throws -> String {
        guard case .result(let answer) = try wire.request(.stats(StatsCommand(item: item, opaque: 1))) else {
            throw HarnessError("no stats answer")
        }
        return answer.text
    }

    /// `stats` system lines as key → value.
    static func stats(_ wire: WireConnection, _ item: String?) throws -> [String: String] {
        var values: [String: String] = [:]
        for line in try statsText(wire, item).split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
        return values
    }

    /// `stats topics`: per topic its `key value` pairs.
    static func statsLines(_ wire: WireConnection, _ item: String) throws -> [String: [String: String]] {
        var topics: [String: [String: String]] = [:]
        for line in try statsText(wire, item).split(whereSeparator: \.isNewline) {
            let words = line.split(separator: " ").map(String.init)
            guard words.count >= 3, words.count % 2 == 1 else { continue }
            var pairs: [String: String] = [:]
            for i in stride(from: 1, to: words.count - 1, by: 2) { pairs[words[i]] = words[i + 1] }
            topics[words[0]] = pairs
        }
        return topics
    }

    struct PartitionKey: Hashable {
        var topic: String
        var partition: Int
    }

    /// `stats offsets`: `<topic> part <p> min_offset <n> max_offset <n>`.
    static func statsOffsets(_ wire: WireConnection) throws -> OffsetTable {
        var table = OffsetTable()
        for line in try statsText(wire, "offsets").split(whereSeparator: \.isNewline) {
            let w = line.split(separator: " ").map(String.init)
            guard w.count == 7, w[1] == "part", let p = Int(w[2]) else { continue }
            table.ranges[PartitionKey(topic: w[0], partition: p)] = (w[4], w[6])
        }
        return table
    }

    struct OffsetTable: Sequence {
        var ranges: [PartitionKey: (min: String, max: String)] = [:]
        subscript(_ key: (String, Int)) -> (min: String, max: String)? { ranges[PartitionKey(topic: key.0, partition: key.1)] }
        func makeIterator() -> AnyIterator<((String, Int), (min: String, max: String))> {
            var inner = ranges.makeIterator()
            return AnyIterator { inner.next().map { (($0.key.topic, $0.key.partition), $0.value) } }
        }
    }
}

/// Headless Chromium driven by its command line: `--dump-dom` gives the DOM after scripts ran,
/// `--screenshot` the picture, and `--enable-logging=stderr` every console message
/// (`CONSOLE` lines), which the dashboard's pages must not produce.
struct Browser {
    let executable: String
    let profile: String
    static let screenshots: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/dashboard-screenshots").path
    }()

    init() throws {
        guard let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
            .first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw HarnessError("no chromium: run scripts/install-deps.sh (it installs Debian's chromium)")
        }
        executable = found
        profile = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-chromium")
        try FileManager.default.createDirectory(atPath: Self.screenshots, withIntermediateDirectories: true)
    }

    /// A loaded page.
    struct Page {
        var url: String
        var dom: String

        /// The `data-value` of the first element with `data-name="<name>"`.
        func value(_ name: String) -> String? { values(in: dom)[name] }

        /// The named values of the first table row carrying `attribute` (e.g. `data-topic="alpha"`),
        /// in the table with id `table` when given.
        func row(_ attribute: String, table: String? = nil) -> [String: String] {
            let from = table.flatMap { dom.range(of: "id=\"\($0)\"")?.upperBound } ?? dom.startIndex
            guard let start = dom[from...].range(of: "<tr " + attribute) else { return [:] }
            let rest = dom[start.upperBound...]
            let end = rest.range(of: "</tr>")?.lowerBound ?? rest.endIndex
            return values(in: String(rest[..<end]))
        }

        /// The inner text of the element with `id`.
        func text(_ id: String) -> String? {
            guard let start = dom.range(of: "id=\"\(id)\">") else { return nil }
            let rest = dom[start.upperBound...]
            guard let end = rest.range(of: "</") else { return nil }
            return String(rest[..<end.lowerBound])
        }

        func values(in html: String) -> [String: String] {
            var found: [String: String] = [:]
            var rest = Substring(html)
            while let name = rest.range(of: "data-name=\"") {
                let afterName = rest[name.upperBound...]
                guard let nameEnd = afterName.firstIndex(of: "\""),
                      let value = afterName.range(of: "data-value=\"") else { break }
                let afterValue = afterName[value.upperBound...]
                guard let valueEnd = afterValue.firstIndex(of: "\"") else { break }
                let key = String(afterName[..<nameEnd])
                if found[key] == nil { found[key] = String(afterValue[..<valueEnd]) }
                rest = afterValue[valueEnd...]
            }
            return found
        }
    }

    /// Loads `url`, writes `<shot>.png`, and fails the test on any console message or a page
    /// without the dashboard's layout.
    @discardableResult
    func load(_ url: String, shot: String, height: Int = 900) throws -> Page {
        let log = profile + "/\(shot).log"
        let result = try ChildProcess.run(executable, [
            "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            "--user-data-dir=\(profile)", "--enable-logging=stderr", "--v=0", "--window-size=1280,\(height)",
            "--screenshot=\(Self.screenshots)/\(shot).png", "--dump-dom", url,
        ], error: .file(log), timeoutSeconds: 90)
        let dom = String(decoding: result.output, as: UTF8.self)
        let console = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
            .split(separator: "\n").filter { $0.contains(":CONSOLE") }
        #expect(result.status == 0, "chromium exited with \(result.status) on \(url)")
        #expect(console.isEmpty, "console messages on \(url): \(console.joined(separator: "\n"))")
        #expect(dom.contains("<nav>") && dom.contains("</main>"), "\(url) did not render the dashboard: \(dom.prefix(500))")
        #expect(FileManager.default.fileExists(atPath: "\(Self.screenshots)/\(shot).png"), "no screenshot of \(url)")
        return Page(url: url, dom: dom)
    }
}
