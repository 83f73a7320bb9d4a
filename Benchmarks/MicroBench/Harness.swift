// Timing, the result table, and the sink that keeps the optimizer from dropping measured work.
import Foundation
import Glibc

/// Everything measured feeds this, and `main` prints it at the end.
nonisolated(unsafe) var sink: UInt64 = 0

@inline(never)
func consume(_ value: UInt64) { sink = sink &+ value }

/// A failed self-check (e.g. our CRC differs from zlib's): the run exits non-zero.
struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Wall-clock seconds (monotonic) and CPU seconds of this process spent running a piece of work.
/// CPU time below wall time means the process waited: for I/O, or for a core other processes held.
struct Timing {
    var wall: Double = 0
    var cpu: Double = 0

    static func += (a: inout Timing, b: Timing) {
        a.wall += b.wall
        a.cpu += b.cpu
    }
}

/// Times `body` on the monotonic clock and on the process CPU-time clock.
func timed(_ body: () throws -> Void) rethrows -> Timing {
    let clock = ContinuousClock()
    let cpuStart = processCPUSeconds()
    let start = clock.now
    try body()
    let wall = seconds(clock.now - start)
    return Timing(wall: wall, cpu: processCPUSeconds() - cpuStart)
}

func processCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// CLOCK_MONOTONIC in nanoseconds, for the `now` the log takes.
func monotonicNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// What one measured run reports: the time it measured (setup excluded) and fdatasyncs it ran.
struct RunResult {
    var time: Timing
    var syncs: Int = 0

    var seconds: Double { time.wall }
}

struct Row {
    var group: String
    var name: String
    var param: String
    var opsPerSecond: Double
    var megabytesPerSecond: Double
    /// (max - min) / median of ops/s over the runs, in percent.
    var spreadPercent: Double
    /// CPU time / wall time of the median run, in percent.
    var cpuPercent: Double
    var note: String
}

enum Note {
    case none
    case gigabytes
    case syncs
    case text(String)
}

/// How long one measured run should take, and how many runs give the median.
enum Budget {
    static let targetSeconds = 1.2
    static let calibrationSeconds = 0.15
    static let runs = 3
}

/// Calibrates an iteration count so one run takes about `Budget.targetSeconds`, then runs it
/// `Budget.runs` times and reports the median run (by ops/s).
///
/// `body(iterations)` does the work and returns the seconds it timed. One iteration is
/// `opsPerIteration` operations over `bytesPerIteration` bytes.
func measure(_ group: String, _ name: String, _ param: String, opsPerIteration: Int, bytesPerIteration: Int,
             note: Note = .none, body: (Int) throws -> RunResult) throws -> Row {
    var iterations = 1
    var probe = try body(iterations)
    while probe.seconds < Budget.calibrationSeconds {
        iterations *= probe.seconds < Budget.calibrationSeconds / 10 ? 10 : 2
        probe = try body(iterations)
    }
    iterations = max(1, Int(Double(iterations) * Budget.targetSeconds / probe.seconds))
    var results: [RunResult] = []
    for _ in 0..<Budget.runs { results.append(try body(iterations)) }
    results.sort { $0.seconds < $1.seconds }
    let median = results[results.count / 2]
    let iterationsPerSecond = Double(iterations) / median.seconds
    let fastest = Double(iterations) / results[0].seconds
    let slowest = Double(iterations) / results[results.count - 1].seconds
    let megabytes = iterationsPerSecond * Double(bytesPerIteration) / 1e6
    let noteText: String
    switch note {
    case .none: noteText = ""
    case .gigabytes: noteText = String(format: "%.2f GB/s", megabytes / 1000)
    case .syncs: noteText = String(format: "%.0f fdatasync/s", Double(median.syncs) / median.seconds)
    case .text(let text): noteText = text
    }
    let row = Row(group: group, name: name, param: param,
                  opsPerSecond: iterationsPerSecond * Double(opsPerIteration), megabytesPerSecond: megabytes,
                  spreadPercent: (fastest - slowest) / iterationsPerSecond * 100,
                  cpuPercent: median.time.cpu / median.time.wall * 100, note: noteText)
    printRow(row)
    return row
}

func printHeader() {
    print(pad("group", 7) + pad("name", 34) + pad("param", 16) + padLeft("ops/s", 14) + padLeft("MB/s", 10)
          + padLeft("spread", 8) + padLeft("cpu", 6) + "  note")
    print(String(repeating: "-", count: 110))
}

func printRow(_ row: Row) {
    print(pad(row.group, 7) + pad(row.name, 34) + pad(row.param, 16)
          + padLeft(String(format: "%.0f", row.opsPerSecond), 14)
          + padLeft(String(format: "%.1f", row.megabytesPerSecond), 10)
          + padLeft(String(format: "%.1f%%", row.spreadPercent), 8)
          + padLeft(String(format: "%.0f%%", row.cpuPercent), 6) + "  " + row.note)
}

private func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}

private func padLeft(_ s: String, _ width: Int) -> String {
    s.count >= width ? " " + s : String(repeating: " ", count: width - s.count) + s
}

/// Deterministic pseudo-random bytes (SplitMix64).
func pseudoRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return UInt8(truncatingIfNeeded: z ^ (z >> 31))
    }
}
