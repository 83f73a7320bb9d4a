import Glibc
import NIOHTTP1
import ProtocolCore
import StoreCore

/// One rendered answer of the dashboard: the HTML body inside the shared layout, and the same
/// data as JSON (reference §7.2: the original's template variables, with its keys where it had
/// the page).
public struct DashboardPage: Sendable {
    public var title: String
    /// The navigation entry marked as current.
    public var active: String
    public var body: String
    public var json: JSONValue
    public var status: HTTPResponseStatus = .ok

    public init(title: String, active: String, body: String, json: JSONValue, status: HTTPResponseStatus = .ok) {
        self.title = title
        self.active = active
        self.body = body
        self.json = json
        self.status = status
    }
}

/// What every page is rendered from: one observation of the broker, the process facts, the
/// throughput samples and the dashboard's settings. Pure: pages are functions of this.
public struct DashboardContext: Sendable {
    public var settings: DashboardSettings
    public var observation: BrokerObservation
    public var facts: SystemFacts
    public var sampler: ThroughputSampler

    public init(settings: DashboardSettings, observation: BrokerObservation, facts: SystemFacts, sampler: ThroughputSampler) {
        self.settings = settings
        self.observation = observation
        self.facts = facts
        self.sampler = sampler
    }

    var brokerId: Int { observation.config.brokerId }

    /// Per topic with data: partitions, messages, bytes (as `stats topics` counts them).
    var topicTotals: [(topic: String, partitions: Int, messages: Int64, bytes: Int64)] {
        var totals: [String: (Int, Int64, Int64)] = [:]
        for p in observation.snapshot.partitions {
            let t = totals[p.partition.topic] ?? (0, 0, 0)
            totals[p.partition.topic] = (t.0 + 1, t.1 + p.messageCount, t.2 + p.bytes)
        }
        return totals.keys.sorted().map { (topic: $0, partitions: totals[$0]!.0, messages: totals[$0]!.1, bytes: totals[$0]!.2) }
    }

    /// A wall-clock time in ms as `yyyy-MM-dd HH:mm:ss UTC`.
    static func time(_ wallMs: Int64) -> String {
        var seconds = time_t(wallMs / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) UTC"
    }

    /// `93784` → `1d 2h 3m 4s`.
    static func duration(_ seconds: Int64) -> String {
        let d = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60, s = seconds % 60
        return (d > 0 ? "\(d)d " : "") + (d > 0 || h > 0 ? "\(h)h " : "") + (seconds >= 60 ? "\(m)m " : "") + "\(s)s"
    }

    static func optionalBytes(_ n: Int64?) -> HTML.Cell {
        n.map { HTML.Cell(html: HTML.bytes($0), sortKey: String($0)) } ?? HTML.Cell("n/a")
    }

    static func optional(_ n: Int64?, name: String? = nil) -> HTML.Cell {
        n.map { HTML.Cell(number: $0, name: name) } ?? HTML.Cell("n/a")
    }

    /// A number shown without grouping (ids, pids), with its `data-value`.
    static func plain(_ n: Int64, name: String) -> HTML.Cell {
        var cell = HTML.Cell(number: n, name: name)
        cell.html = String(n)
        return cell
    }

    static func json(_ n: Int64?) -> JSONValue { n.map(JSONValue.int) ?? .null }
}

// MARK: pages

extension DashboardContext {
    /// `/`: the original's `/dashboard` (instance, version, system) plus process facts.
    public func overview() -> DashboardPage {
        let o = observation
        let settings = self.settings
        let data = settings.dataPath
        let dataLog = o.config.dataLogPath ?? data
        let instance: [(String, HTML.Cell)] = [
            ("Started", HTML.Cell(Self.time(o.startedWallMs))),
            ("Uptime", HTML.Cell(html: HTML.escape(Self.duration(o.snapshot.uptimeSeconds)), sortKey: nil)),
            ("Host", HTML.Cell(settings.advertisedHost)),
            ("Data path", HTML.Cell(data)),
            ("Data log path", HTML.Cell(dataLog)),
            ("Working directory", HTML.Cell(facts.cwd ?? "n/a")),
        ]
        let version: [(String, HTML.Cell)] = [
            ("Version", HTML.Cell(o.version)),
            ("Broker id", Self.plain(Int64(o.config.brokerId), name: "broker_id")),
            ("URI", HTML.Cell(o.brokerURI)),
            ("Role", HTML.Cell(o.snapshot.isSlave ? "slave" : "master")),
            ("Mode", HTML.Cell(settings.zooKeeper == nil ? "local (no ZooKeeper)" : "cluster (ZooKeeper)")),
        ]
        var uptime = HTML.Cell(number: o.snapshot.uptimeSeconds, name: "uptime")
        uptime.html = HTML.escape(Self.duration(o.snapshot.uptimeSeconds))
        let process: [(String, HTML.Cell)] = [
            ("PID", Self.plain(Int64(o.snapshot.pid), name: "pid")),
            ("Uptime (s)", uptime),
            ("Resident memory", Self.optionalBytes(facts.residentBytes)),
            ("Threads", Self.optional(facts.threads)),
            ("Connections", HTML.Cell(number: Int64(o.snapshot.currentConnections), name: "curr_connections")),
            ("File descriptors used / max", HTML.Cell("\(facts.descriptorsUsed.map(HTML.grouped) ?? "n/a") / \(facts.descriptorsMax.map(HTML.grouped) ?? "n/a")")),
            ("Puts / gets", HTML.Cell("\(HTML.grouped(o.counters.cmdPut)) / \(HTML.grouped(o.counters.cmdGet))")),
            ("Bytes in / out", HTML.Cell("\(HTML.bytes(o.bytesIn)) / \(HTML.bytes(o.bytesOut))")),
        ]
        let system: [(String, HTML.Cell)] = [
            ("Memory total", Self.optionalBytes(facts.memoryTotalBytes)),
            ("Memory used", Self.optionalBytes(facts.memoryUsedBytes)),
            ("Swap total / used", HTML.Cell("\(facts.swapTotalBytes.map(HTML.bytes) ?? "n/a") / \(facts.swapUsedBytes.map(HTML.bytes) ?? "n/a")")),
            ("File descriptors max", Self.optional(facts.descriptorsMax)),
            ("File descriptors used", Self.optional(facts.descriptorsUsed)),
        ]
        let body = """
            <div class="grid"><section><h2>Instance</h2>\(HTML.facts(id: "instance", instance))</section>
            <section><h2>Version</h2>\(HTML.facts(id: "version", version))</section>
            <section><h2>Process</h2>\(HTML.facts(id: "process", process))</section>
            <section><h2>System</h2>\(HTML.facts(id: "system", system))</section></div>
            """
        let json = JSONValue.object([
            ("instance", .object([("start", .string(Self.time(o.startedWallMs))), ("host", .string(settings.advertisedHost)),
                                  ("data", .string(data)), ("data_log", .string(dataLog)), ("cwd", facts.cwd.map(JSONValue.string) ?? .null)])),
            ("version", .object([("metaq", .string(o.version)), ("id", .int(Int64(o.config.brokerId))), ("uri", .string(o.brokerURI))])),
            ("system", .object([("sys_memory", Self.json(facts.memoryTotalBytes)), ("sys_memory_used", Self.json(facts.memoryUsedBytes)),
                                ("swap_space", Self.json(facts.swapTotalBytes)), ("ss_used", Self.json(facts.swapUsedBytes)),
                                ("fdc", Self.json(facts.descriptorsMax)), ("fdc_used", Self.json(facts.descriptorsUsed))])),
            ("process", .object([("pid", .int(Int64(o.snapshot.pid))), ("uptime", .int(o.snapshot.uptimeSeconds)),
                                 ("rss", Self.json(facts.residentBytes)), ("threads", Self.json(facts.threads)),
                                 ("connections", .int(Int64(o.snapshot.currentConnections))),
                                 ("cmd_put", .int(o.counters.cmdPut)), ("cmd_get", .int(o.counters.cmdGet)),
                                 ("bytes_in", .int(o.bytesIn)), ("bytes_out", .int(o.bytesOut))])),
        ])
        return DashboardPage(title: "Overview", active: "/", body: body, json: json)
    }

    /// The original's `topicConfig` bean of a topic.
    func topicConfigJSON(_ topic: String) -> JSONValue {
        guard let c = observation.config.topicConfig(for: topic) else { return .null }
        return .object([
            ("topic", .string(topic)), ("numPartitions", .int(Int64(c.numPartitions))),
            ("dataPath", .string(c.dataPath ?? settings.dataPath)), ("deletePolicy", .string(c.deletePolicy.description)),
            ("deleteWhen", .string(c.deleteWhen.description)), ("unflushThreshold", .int(Int64(c.flushPolicy.unflushThreshold))),
            ("unflushInterval", .int(c.flushPolicy.unflushIntervalMs)), ("acceptPublish", .bool(c.acceptPublish)),
            ("acceptSubscribe", .bool(c.acceptSubscribe)), ("stat", .bool(c.stat)),
        ])
    }

    /// One topic's summary: the original's topics list object.
    func topicJSON(_ t: (topic: String, partitions: Int, messages: Int64, bytes: Int64)) -> JSONValue {
        let rate = sampler.latestRate(of: t.topic)
        return .object([
            ("topic", .string(t.topic)), ("partitions", .int(Int64(t.partitions))), ("messageCount", .int(t.messages)),
            ("messageBytes", .int(t.bytes)), ("avgMsgSize", t.messages > 0 ? .int(t.bytes / t.messages) : .null),
            ("puts", .double(rate.messages)), ("putBytes", .double(rate.bytes)),
            // The broker counts gets, misses and put failures per broker, not per topic (stats).
            ("gets", .null), ("getMissed", .null), ("putFailed", .null),
            ("closedPartitions", .array(observation.closedPartitions.filter { $0.topic == t.topic }.map { .int(Int64($0.partition)) })),
            ("failedPartitions", .array(observation.failedPartitions.filter { $0.topic == t.topic }.map { .int(Int64($0.partition)) })),
            ("topicConfig", topicConfigJSON(t.topic)),
        ])
    }

    func partitionList(_ list: [TopicPartition], of topic: String) -> String {
        let numbers = list.filter { $0.topic == topic }.map { String($0.partition) }
        return numbers.isEmpty ? "—" : "<span class=\"bad\">\(numbers.joined(separator: ", "))</span>"
    }

    /// `/topics`.
    public func topics() -> DashboardPage {
        let totals = topicTotals
        let rows: [[HTML.Cell]] = totals.map { t in
            let config = observation.config.topicConfig(for: t.topic)
            let rate = sampler.latestRate(of: t.topic)
            let link = "/topics/\(HTML.urlComponent(t.topic))"
            return [
                HTML.Cell(html: "<a href=\"\(link)\" data-topic=\"\(HTML.escape(t.topic))\">\(HTML.escape(t.topic))</a>"),
                HTML.Cell(number: Int64(t.partitions), name: "partitions"),
                HTML.Cell(number: t.messages, name: "message_count"),
                HTML.Cell(number: t.bytes, name: "message_bytes"),
                HTML.Cell(number: t.messages > 0 ? t.bytes / t.messages : 0),
                HTML.Cell(decimal: rate.messages),
                HTML.Cell(html: HTML.bytes(Int64(rate.bytes)) + "/s", sortKey: String(rate.bytes)),
                HTML.Cell(config.map { "\($0.acceptPublish) / \($0.acceptSubscribe)" } ?? "—"),
                HTML.Cell(html: partitionList(observation.closedPartitions, of: t.topic)),
                HTML.Cell(html: partitionList(observation.failedPartitions, of: t.topic)),
                HTML.Cell(config.map { "\($0.flushPolicy.unflushThreshold) / \($0.flushPolicy.unflushIntervalMs) ms, \($0.deletePolicy)" } ?? "—"),
            ]
        }
        let attributes = totals.map { "data-topic=\"\(HTML.escape($0.topic))\"" }
        let empty = observation.snapshot.configuredTopics.filter { name in !totals.contains { $0.topic == name } }
        var body = HTML.table(id: "topics", headers: ["Topic", "Partitions", "Messages", "Bytes", "Avg size", "Puts/s", "Put bytes/s",
                                                      "Publish / subscribe", "Closed", "Failed", "Flush, deletion"],
                              rows: rows, rowAttributes: attributes)
        if !empty.isEmpty {
            body += "<p>Configured topics without data: \(empty.map(HTML.escape).joined(separator: ", ")).</p>"
        }
        body += "<p class=\"hint\">Rates are the growth of each topic between the last two samples (every \(settings.sampleIntervalMs / 1000) s); puts/s broker-wide: \(HTML.fixed(sampler.latestCommandRates.puts)), gets/s: \(HTML.fixed(sampler.latestCommandRates.gets)).</p>"
        return DashboardPage(title: "Topics", active: "/topics", body: body,
                             json: .object([("topics", .array(totals.map(topicJSON)))]))
    }

    /// `/topics/<topic>[?group=G]`; `group` carries what ZooKeeper said (or why it could not).
    public func topic(_ name: String, group: GroupView?) -> DashboardPage {
        let partitions = observation.snapshot.partitions.filter { $0.partition.topic == name }.sorted { $0.partition < $1.partition }
        guard let summary = topicTotals.first(where: { $0.topic == name }) else {
            let text = "The topic \(name) does not exist or has no data on this broker."
            return DashboardPage(title: "Topic \(name)", active: "/topics", body: "<p class=\"note\">\(HTML.escape(text))</p>",
                                 json: .object([("error", .string(text))]), status: .notFound)
        }
        var body = "<div class=\"grid\"><section><h2>Summary</h2>"
        body += HTML.facts(id: "summary", [
            ("Partitions", HTML.Cell(number: Int64(summary.partitions), name: "partitions")),
            ("Messages", HTML.Cell(number: summary.messages, name: "message_count")),
            ("Bytes", HTML.Cell(number: summary.bytes, name: "message_bytes")),
            ("Average message size", HTML.Cell(number: summary.messages > 0 ? summary.bytes / summary.messages : 0)),
            ("Puts/s (last sample)", HTML.Cell(decimal: sampler.latestRate(of: name).messages)),
            ("Closed partitions", HTML.Cell(html: partitionList(observation.closedPartitions, of: name))),
            ("Failed partitions", HTML.Cell(html: partitionList(observation.failedPartitions, of: name))),
        ])
        body += "</section><section><h2>Config</h2>"
        if case .object(let pairs) = topicConfigJSON(name) {
            body += HTML.facts(id: "topic-config", pairs.map { key, value in
                if case .string(let s) = value { return (key, HTML.Cell(s)) }
                return (key, HTML.Cell(value.text))
            })
        }
        body += "</section></div><h2>Throughput</h2>" + sampler.chart(of: name)
        body += "<h2>Partitions</h2>" + HTML.table(id: "partitions", headers: ["Partition", "Min offset", "Max offset", "Messages", "Bytes"],
                                                  rows: partitions.map { p in [
                                                      HTML.Cell(number: Int64(p.partition.partition)),
                                                      HTML.Cell(number: p.minOffset, name: "min_offset"),
                                                      HTML.Cell(number: p.maxOffset, name: "max_offset"),
                                                      HTML.Cell(number: p.messageCount, name: "message_count"),
                                                      HTML.Cell(number: p.bytes, name: "bytes"),
                                                  ] }, rowAttributes: partitions.map { "data-partition=\"\($0.partition.partition)\"" })
        var json: [(String, JSONValue)] = [
            ("topic", topicJSON(summary)),
            ("throughput", .array(sampler.rates(of: name).map { .object([("wallMs", .int($0.wallMs)), ("messages", .double($0.messages)),
                                                                         ("bytes", .double($0.bytes))]) })),
            ("partitions", .array(partitions.map { .object([("partition", .int(Int64($0.partition.partition))), ("minOffset", .int($0.minOffset)),
                                                          ("maxOffset", .int($0.maxOffset)), ("messageCount", .int($0.messageCount)),
                                                          ("bytes", .int($0.bytes))]) })),
        ]
        body += "<h2>Consumer groups</h2>"
        switch group {
        case nil:
            body += "<p class=\"note\">This broker runs without ZooKeeper (local mode): consumer groups and their offsets are not known here.</p>"
        case .some(let view):
            body += groupSection(topic: name, view: view, json: &json)
        }
        return DashboardPage(title: "Topic \(name)", active: "/topics", body: body, json: .object(json))
    }

    /// The groups list and, with a group chosen, its per-partition lag.
    func groupSection(topic: String, view: GroupView, json: inout [(String, JSONValue)]) -> String {
        var body = ""
        if let error = view.error { body += "<p class=\"note bad\">ZooKeeper: \(HTML.escape(error))</p>" }
        let links = view.groups.map { "<a href=\"/topics/\(HTML.urlComponent(topic))?group=\(HTML.urlComponent($0))\" data-group=\"\(HTML.escape($0))\">\(HTML.escape($0))</a>" }
        body += "<p id=\"groups\">Groups of this topic: \(links.isEmpty ? "none" : links.joined(separator: " · "))</p>"
        json.append(("groups", .array(view.groups.map(JSONValue.string))))
        guard let group = view.group else { return body }
        json.append(("group", .string(group)))
        let filter = observation.config.topicConfig(for: topic)?.filter(forGroup: group).map { "\($0)" }
        json.append(("group-filter", .string(filter ?? "null")))
        body += "<h2>Group \(HTML.escape(group))</h2>"
        if let filter { body += "<p>Server-side filter: <code>\(HTML.escape(filter))</code></p>" }
        guard let lags = view.lags else {
            let text = "The consumer group \(group) has no offsets or owners for this topic."
            json.append(("pending-stats", .object([("error", .string(text))])))
            return body + "<p class=\"note\">\(HTML.escape(text))</p>"
        }
        let clamped = lags.filter { $0.clamped != nil }
        if !clamped.isEmpty {
            body += "<p class=\"note\" id=\"clamped\">Lag is never negative: the consumer offset of partition(s) "
                + clamped.map { "\($0.partition)" }.joined(separator: ", ")
                + " lies outside the log (below its minimum offset after deletion, MetaQ issue #113, or beyond its end); it is counted at the nearest end, marked ⚠.</p>"
        }
        body += HTML.table(id: "lag", headers: ["Partition", "Owner", "Consumer offset", "Min offset", "Max offset",
                                                "Pending bytes", "Pending messages", "Consumed bytes", "Consumed messages"],
                           rows: lags.map { lag in
                               var offset = lag.consumerOffset.map { HTML.Cell(number: $0, name: "consumer_offset") } ?? HTML.Cell("none")
                               if let clamp = lag.clamped { offset.html += " <span class=\"bad\" title=\"\(clamp.rawValue)\" data-clamped=\"\(clamp.rawValue)\">⚠</span>" }
                               return [
                                   HTML.Cell("\(lag.partition)"), HTML.Cell(lag.owner ?? "—"), offset,
                                   HTML.Cell(number: lag.minOffset), HTML.Cell(number: lag.maxOffset),
                                   HTML.Cell(number: lag.pendingBytes, name: "pending_bytes"),
                                   HTML.Cell(number: lag.pendingMessages, name: "pending_messages"),
                                   HTML.Cell(number: lag.consumedBytes, name: "consumed_bytes"),
                                   HTML.Cell(number: lag.consumedMessages, name: "consumed_messages"),
                               ]
                           }, rowAttributes: lags.map { "data-partition=\"\($0.partition.partition)\"" })
        json.append(("pending-stats", .array(lags.map { lag in .object([
            ("partition", .int(Int64(lag.partition.partition))), ("pending-bytes", .int(lag.pendingBytes)),
            ("pending-messages", .int(lag.pendingMessages)), ("consumed-bytes", .int(lag.consumedBytes)),
            ("consumed-messages", .int(lag.consumedMessages)), ("owner", lag.owner.map(JSONValue.string) ?? .null),
            ("consumer-offset", Self.json(lag.consumerOffset)), ("clamped", lag.clamped.map { .string($0.rawValue) } ?? .null),
        ]) })))
        return body
    }

    /// `/config`.
    public func config(reloadAvailable: Bool) -> DashboardPage {
        let text = String(decoding: observation.configFile, as: UTF8.self)
        let loaded = observation.configLoadedWallMs > 0 ? Self.time(observation.configLoadedWallMs) : nil
        var body = loaded.map { "<p class=\"hint\">Loaded <span data-name=\"lastLoaded\">\(HTML.escape($0))</span> (at start or by the last reload).</p>" } ?? ""
        body += observation.configFile.isEmpty ? "<p class=\"note\">No server.ini was loaded.</p>" : "<pre id=\"config\">\(HTML.escape(text))</pre>"
        body += reloadAvailable
            ? "<form method=\"post\" action=\"/reload-config\"><button type=\"submit\">Reload config</button></form>"
            : "<p class=\"hint\">Reloading is not available in this build.</p>"
        return DashboardPage(title: "Config", active: "/config", body: body,
                             json: .object([("config", .string(text)), ("lastLoaded", loaded.map(JSONValue.string) ?? .null)]))
    }

    /// `/stats[/<item>]`: the broker's own `stats` answer, byte for byte.
    public func stats(item: String?, text: String) -> DashboardPage {
        let items = ["", "topics", "offsets", "realtime", "config", "help"]
        let links = items.map { i in "<a href=\"/stats\(i.isEmpty ? "" : "/" + i)\">\(i.isEmpty ? "system" : i)</a>" }
        let body = "<p>\(links.joined(separator: " · "))</p><pre id=\"stats\">\(HTML.escape(text))</pre>"
        return DashboardPage(title: "Stats" + (item.map { " " + $0 } ?? ""), active: "/stats", body: body,
                             json: .object([("result", .string(text))]))
    }

    /// `/logging`: the newest lines last.
    public func logging(_ lines: [String]) -> DashboardPage {
        let body = lines.isEmpty
            ? "<p class=\"note\">No log lines were kept (the logging hook gives none).</p>"
            : "<pre id=\"logs\">\(lines.map(HTML.escape).joined(separator: "\n"))</pre>"
        return DashboardPage(title: "Logging", active: "/logging", body: body, json: .object([("logs", .array(lines.map(JSONValue.string)))]))
    }

    /// `/cluster`.
    public func cluster(_ view: ClusterView?) -> DashboardPage {
        guard let view else {
            let body = "<p class=\"note\">This broker runs without ZooKeeper (local mode): it is its own cluster.</p>"
                + HTML.facts(id: "current", [("This broker", HTML.Cell(observation.brokerURI))])
            return DashboardPage(title: "Cluster", active: "/cluster", body: body,
                                 json: .object([("current", .string(observation.brokerURI)), ("nodes", .array([]))]))
        }
        var body = view.error.map { "<p class=\"note bad\">ZooKeeper: \(HTML.escape($0))</p>" } ?? ""
        var rows: [[HTML.Cell]] = []
        var attributes: [String] = []
        for node in view.nodes {
            for broker in node.brokers {
                let dashboard = broker.dashboardURI.map { "<a href=\"\(HTML.escape($0))\">\(HTML.escape($0))</a>" } ?? "unknown"
                let current = broker.uri == observation.brokerURI || broker.uri == "meta://\(settings.advertisedHost):\(settings.serverPort)"
                rows.append([HTML.Cell(number: Int64(node.id)), HTML.Cell(broker.slaveId.map { "slave \($0)" } ?? "master"),
                             HTML.Cell(html: HTML.escape(broker.uri) + (current ? " <strong class=\"ok\">(this broker)</strong>" : "")),
                             HTML.Cell(html: dashboard)])
                attributes.append("data-broker=\"\(node.id)\" data-role=\"\(broker.slaveId.map { "s\($0)" } ?? "m")\"")
            }
        }
        body += HTML.table(id: "brokers", headers: ["Broker id", "Role", "URI", "Dashboard"], rows: rows, rowAttributes: attributes)
        let nodes = JSONValue.array(view.nodes.map { node in .object([
            ("id", .int(Int64(node.id))),
            ("brokers", .array(node.brokers.map { b in .object([
                ("dashboard-uri", b.dashboardURI.map(JSONValue.string) ?? .null), ("slave", .bool(b.slaveId != nil)),
                ("broker-uri", .string(b.uri)),
            ]) })),
        ]) })
        return DashboardPage(title: "Cluster", active: "/cluster", body: body,
                             json: .object([("current", .string(observation.brokerURI)), ("nodes", nodes)]))
    }
}

/// What the topic page shows of consumer groups in cluster mode.
public struct GroupView: Sendable {
    /// Groups with offsets or owners for the topic.
    public var groups: [String]
    /// The group asked for.
    public var group: String?
    /// Its lag per partition; nil when it has no znodes for the topic.
    public var lags: [PartitionLag]?
    /// Why ZooKeeper could not be read, if it could not.
    public var error: String?

    public init(groups: [String], group: String?, lags: [PartitionLag]?, error: String?) {
        self.groups = groups
        self.group = group
        self.lags = lags
        self.error = error
    }
}

/// The brokers under `<zkRoot>/brokers/ids`.
public struct ClusterView: Sendable {
    public struct Broker: Sendable {
        public var uri: String
        /// Nil for the master.
        public var slaveId: Int?
        public var dashboardURI: String?
    }

    public struct Node: Sendable {
        public var id: Int
        public var brokers: [Broker]
    }

    public var nodes: [Node]
    public var error: String?
}
