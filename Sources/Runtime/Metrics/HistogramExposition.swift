import ProtocolCore

/// Renders a broker `DurationHistogram` (nanoseconds, log-linear buckets) as a Prometheus
/// histogram in seconds: cumulative `_bucket{le=…}` lines, `_sum`, `_count`.
///
/// swift-prometheus's own histograms count observations as they happen; these histograms are
/// already counted by the broker on its loop (`SyncCycleStats`), so they are converted at scrape
/// time instead — nothing is added to the put path. A bucket's count is exact to within the
/// broker histogram's resolution (1/16 of the bound): a value slightly above a bound may be
/// counted at or below it. Counts only grow (the broker never resets these histograms), so
/// every line is a valid cumulative counter.
enum HistogramExposition {
    /// The `le` bounds: text as printed, and the bound in nanoseconds. 10 µs … 10 s covers a
    /// hand-off on the loop as well as a stalled disk.
    static let bounds: [(label: String, nanoseconds: UInt64)] = [
        ("1e-05", 10_000), ("2.5e-05", 25_000), ("5e-05", 50_000),
        ("0.0001", 100_000), ("0.00025", 250_000), ("0.0005", 500_000),
        ("0.001", 1_000_000), ("0.0025", 2_500_000), ("0.005", 5_000_000),
        ("0.01", 10_000_000), ("0.025", 25_000_000), ("0.05", 50_000_000),
        ("0.1", 100_000_000), ("0.25", 250_000_000), ("0.5", 500_000_000),
        ("1", 1_000_000_000), ("2.5", 2_500_000_000), ("5", 5_000_000_000), ("10", 10_000_000_000),
    ]

    /// Appends one histogram family (HELP, TYPE, buckets, sum, count) to `text`.
    static func append(name: String, help: String, _ histogram: DurationHistogram, to text: inout String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        let count = histogram.count
        for bound in bounds {
            let atOrBelow = count - min(count, histogram.countAbove(nanoseconds: bound.nanoseconds))
            text += "\(name)_bucket{le=\"\(bound.label)\"} \(atOrBelow)\n"
        }
        text += "\(name)_bucket{le=\"+Inf\"} \(count)\n"
        text += "\(name)_sum \(seconds(histogram.totalNanoseconds))\n"
        text += "\(name)_count \(count)\n"
    }

    /// Nanoseconds as seconds in a form every exposition parser reads (`0.001234`, `1.5e-06`).
    static func seconds(_ nanoseconds: UInt64) -> String {
        let value = Double(nanoseconds) / 1e9
        return value == 0 ? "0" : "\(value)"
    }
}
