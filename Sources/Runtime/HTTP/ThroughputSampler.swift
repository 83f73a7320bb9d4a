/// A bounded ring of the broker's counters taken every few seconds by the dashboard, from which
/// its pages show rates and draw each topic's throughput chart. The broker keeps no per-topic
/// put counter, so a topic's put rate is the growth of its message count and bytes between two
/// samples (retention deleting segments can make a delta negative: such a delta counts as 0).
/// Gets are counted per broker only (`cmd_get`).
///
/// Value type, owned by the dashboard's event loop.
public struct ThroughputSampler: Sendable {
    /// One sample.
    public struct Sample: Sendable {
        public var wallMs: Int64
        public var cmdPut: Int64
        public var cmdGet: Int64
        /// Per topic: messages and bytes held.
        public var topics: [String: (messages: Int64, bytes: Int64)]

        public init(wallMs: Int64, cmdPut: Int64, cmdGet: Int64, topics: [String: (messages: Int64, bytes: Int64)]) {
            self.wallMs = wallMs
            self.cmdPut = cmdPut
            self.cmdGet = cmdGet
            self.topics = topics
        }

        /// The sample of an observation.
        public init(_ observation: BrokerObservation) {
            var topics: [String: (messages: Int64, bytes: Int64)] = [:]
            for p in observation.snapshot.partitions {
                let old = topics[p.partition.topic] ?? (0, 0)
                topics[p.partition.topic] = (old.messages + p.messageCount, old.bytes + p.bytes)
            }
            self.init(wallMs: observation.takenWallMs, cmdPut: observation.counters.cmdPut,
                      cmdGet: observation.counters.cmdGet, topics: topics)
        }
    }

    /// Per second between two samples.
    public struct Rate: Equatable, Sendable {
        public var wallMs: Int64
        public var messages: Double
        public var bytes: Double
    }

    public let capacity: Int
    public private(set) var samples: [Sample] = []

    public init(capacity: Int = 120) {
        self.capacity = max(2, capacity)
    }

    /// Adds a sample, dropping the oldest beyond `capacity`. A sample not later than the last is
    /// ignored (a clock step back must not give a negative interval).
    public mutating func add(_ sample: Sample) {
        if let last = samples.last, sample.wallMs <= last.wallMs { return }
        samples.append(sample)
        if samples.count > capacity { samples.removeFirst(samples.count - capacity) }
    }

    /// The put rates of `topic` between consecutive samples, oldest first.
    public func rates(of topic: String) -> [Rate] {
        zip(samples, samples.dropFirst()).map { a, b in
            let seconds = Double(b.wallMs - a.wallMs) / 1000
            let before = a.topics[topic] ?? (0, 0)
            let after = b.topics[topic] ?? (0, 0)
            return Rate(wallMs: b.wallMs, messages: Double(max(0, after.messages - before.messages)) / seconds,
                        bytes: Double(max(0, after.bytes - before.bytes)) / seconds)
        }
    }

    /// The latest put rate of `topic` (0 before two samples).
    public func latestRate(of topic: String) -> Rate {
        rates(of: topic).last ?? Rate(wallMs: samples.last?.wallMs ?? 0, messages: 0, bytes: 0)
    }

    /// The latest broker-wide put and get command rates per second.
    public var latestCommandRates: (puts: Double, gets: Double) {
        guard samples.count >= 2 else { return (0, 0) }
        let a = samples[samples.count - 2], b = samples[samples.count - 1]
        let seconds = Double(b.wallMs - a.wallMs) / 1000
        return (Double(max(0, b.cmdPut - a.cmdPut)) / seconds, Double(max(0, b.cmdGet - a.cmdGet)) / seconds)
    }

    /// An SVG coordinate: one decimal, no grouping.
    static func coordinate(_ d: Double) -> String { String((d * 10).rounded() / 10) }

    /// An inline SVG line chart of `topic`'s message rate (no script needed to show it).
    public func chart(of topic: String, width: Int = 640, height: Int = 160) -> String {
        let rates = rates(of: topic)
        let top = max(1, rates.map(\.messages).max() ?? 1)
        let left = 48.0, bottom = Double(height) - 20, plotWidth = Double(width) - left - 8
        var svg = "<svg class=\"chart\" id=\"throughput\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"messages per second\">"
        svg += "<line x1=\"\(left)\" y1=\"8\" x2=\"\(left)\" y2=\"\(bottom)\" stroke=\"#c5ccd6\"/>"
        svg += "<line x1=\"\(left)\" y1=\"\(bottom)\" x2=\"\(Double(width) - 8)\" y2=\"\(bottom)\" stroke=\"#c5ccd6\"/>"
        svg += "<text x=\"4\" y=\"16\" font-size=\"11\" fill=\"#4a5568\">\(HTML.fixed(top))</text>"
        svg += "<text x=\"4\" y=\"\(bottom)\" font-size=\"11\" fill=\"#4a5568\">0</text>"
        svg += "<text x=\"\(left + 4)\" y=\"\(height - 4)\" font-size=\"11\" fill=\"#4a5568\">messages/s, last \(rates.count) intervals</text>"
        if rates.count >= 2 {
            let step = plotWidth / Double(rates.count - 1)
            let points = rates.enumerated().map { i, rate in
                "\(Self.coordinate(left + Double(i) * step)),\(Self.coordinate(bottom - (bottom - 8) * rate.messages / top))"
            }
            svg += "<polyline fill=\"none\" stroke=\"#1f6feb\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>"
        } else {
            svg += "<text x=\"\(left + 12)\" y=\"\(bottom / 2)\" font-size=\"12\" fill=\"#8a94a6\">collecting samples…</text>"
        }
        return svg + "</svg>"
    }
}
