import Prometheus
import ProtocolCore
import Testing
@testable import Runtime

/// The pieces behind `/metrics` that a broker run does not reach easily: histogram conversion,
/// counters that never go back, series that follow the partitions, /proc parsing.
@Suite("Metrics pieces")
struct MetricsPiecesTests {
    @Test("a DurationHistogram becomes cumulative buckets in seconds, +Inf = count, sum in seconds")
    func histogramBuckets() {
        var histogram = DurationHistogram()
        for ns: UInt64 in [5_000, 40_000, 40_000, 900_000, 3_000_000, 20_000_000_000] { histogram.record(nanoseconds: ns) }
        var text = ""
        HistogramExposition.append(name: "x_seconds", help: "h", histogram, to: &text)
        var buckets: [(String, UInt64)] = []
        for line in text.split(separator: "\n") where line.hasPrefix("x_seconds_bucket") {
            let label = line.split(separator: "\"")[1]
            buckets.append((String(label), UInt64(line.split(separator: " ").last!)!))
        }
        #expect(buckets.count == HistogramExposition.bounds.count + 1)
        #expect(zip(buckets, buckets.dropFirst()).allSatisfy { $0.1 <= $1.1 }, "cumulative")
        let byLabel = Dictionary(uniqueKeysWithValues: buckets)
        #expect(byLabel["1e-05"] == 1)
        #expect(byLabel["5e-05"] == 3)
        #expect(byLabel["0.001"] == 4)
        #expect(byLabel["0.005"] == 5)
        #expect(byLabel["10"] == 5)
        #expect(byLabel["+Inf"] == 6)
        #expect(text.contains("x_seconds_count 6\n"))
        #expect(text.contains("x_seconds_sum 20.003985\n"))
        #expect(text.hasPrefix("# HELP x_seconds h\n# TYPE x_seconds histogram\n"))
    }

    @Test("a tracked counter adds what the broker's counter moved and ignores older values")
    func trackedCounter() {
        let registry = PrometheusCollectorRegistry()
        var counter = TrackedCounter(counter: registry.makeCounter(descriptor: .named("c_total", "h")))
        counter.advance(to: 5)
        counter.advance(to: 3)   // a slower scrape's older observation
        counter.advance(to: 9)
        #expect(registry.emitToString().contains("c_total 9\n"))
    }

    @Test("gauge families drop the series of partitions that are gone")
    func gaugeFamily() {
        let registry = PrometheusCollectorRegistry()
        var family = GaugeFamily("g", "h", labels: ["topic", "partition"])
        family.update([(["a", "0"], 1), (["b", "0"], 2)], in: registry)
        var text = registry.emitToString()
        #expect(text.contains(#"g{topic="a",partition="0"} 1.0"#) && text.contains(#"g{topic="b",partition="0"} 2.0"#))
        family.update([(["b", "0"], 3)], in: registry)
        text = registry.emitToString()
        #expect(!text.contains(#"topic="a""#) && text.contains(#"g{topic="b",partition="0"} 3.0"#))
        family.update([], in: registry)
        #expect(!registry.emitToString().contains("g{"))
    }

    @Test("families come out in name order, series in label order, each family's comments first")
    func sortedFamilies() {
        let text = "# HELP b_total h\n# TYPE b_total counter\nb_total 1\n# TYPE c gauge\nc{x=\"2\"} 2.0\nc{x=\"1\"} 1.0\n"
            + "# HELP a h a\n# TYPE a gauge\na 3.0\n"
        #expect(BrokerMetrics.sortedFamilies(text) == "# HELP a h a\n# TYPE a gauge\na 3.0\n# HELP b_total h\n# TYPE b_total counter\n"
            + "b_total 1\n# TYPE c gauge\nc{x=\"1\"} 1.0\nc{x=\"2\"} 2.0\n")
    }

    @Test("/proc/self/stat fields are found after the command name, spaces and parentheses in it included")
    func statFields() {
        let tail = (3...52).map(String.init).joined(separator: " ")
        let fields = ProcessSample.statFields("1234 (metaq (x) y) \(tail)")
        #expect(fields?.first == "3" && fields?[11] == "14" && fields?[21] == "24")
        #expect(ProcessSample.statFields("1234 (short) 3 4") == nil)
        let sample = ProcessSample.read()
        #expect((sample.residentBytes ?? 0) > 0 && (sample.threads ?? 0) >= 1 && (sample.openDescriptors ?? 0) >= 3)
        #expect((sample.cpuSeconds ?? -1) >= 0 && (sample.startTimeSeconds ?? 0) > 1_600_000_000)
    }
}
