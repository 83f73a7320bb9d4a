import ArgumentParser
import Foundation
import Histogram
import Runtime
import Synchronization

/// Counts and latencies of a bench phase; latencies in microseconds.
struct BenchResult: @unchecked Sendable {
    var messages = 0
    var bytes = 0
    var errors = 0
    var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    var seconds: Double = 0

    mutating func record(since started: ContinuousClock.Instant) {
        let elapsed = started.duration(to: .now).components
        let micros = UInt64(max(0, elapsed.seconds)) * 1_000_000 + UInt64(max(0, elapsed.attoseconds / 1_000_000_000_000))
        _ = latency.record(min(micros, 60_000_000))
    }

    mutating func record(nanoseconds: UInt64) {
        _ = latency.record(min(nanoseconds / 1000, 60_000_000))
    }

    mutating func add(_ other: BenchResult) {
        messages += other.messages
        bytes += other.bytes
        errors += other.errors
        latency.add(other.latency)
    }

    func print(title: String) {
        let rate = seconds > 0 ? Double(messages) / seconds : 0
        let megabytes = seconds > 0 ? Double(bytes) / seconds / 1_000_000 : 0
        Swift.print("""
            \(title): \(messages) msgs in \(String(format: "%.2f", seconds)) s, \(errors) errors
              \(String(format: "%.0f", rate)) msgs/s, \(String(format: "%.2f", megabytes)) MB/s
              latency µs: p50 \(latency.valueAtPercentile(50)) p99 \(latency.valueAtPercentile(99)) \
            p99.9 \(latency.valueAtPercentile(99.9)) max \(latency.max)
            """)
    }
}

/// Runs one thread per worker, prints a progress line each second on stderr, merges the results.
enum BenchRunner {
    final class Outcome: @unchecked Sendable {
        // Guarded by `lock`: written once per worker thread, read after all have finished.
        let lock = NSLock()
        var results: [BenchResult] = []
        var failure: (any Error)?
    }

    static func run(workers: [(Progress) throws -> BenchResult]) throws -> BenchResult {
        let progress = Progress()
        let outcome = Outcome()
        let done = DispatchGroup()
        let started = ContinuousClock.now
        for work in workers {
            done.enter()
            let box = WorkBox(work: work)
            Thread.detachNewThread {
                defer { done.leave() }
                do {
                    let result = try box.work(progress)
                    outcome.lock.withLock { outcome.results.append(result) }
                } catch {
                    outcome.lock.withLock { outcome.failure = error }
                }
            }
        }
        var last = 0
        while done.wait(timeout: .now() + 1) == .timedOut {
            let now = progress.count.load(ordering: .relaxed)
            FileHandle.standardError.write(Data("  \(now) done, \(now - last)/s\n".utf8))
            last = now
        }
        if let failure = outcome.failure { throw failure }
        var total = BenchResult()
        for result in outcome.results { total.add(result) }
        let elapsed = started.duration(to: .now).components
        total.seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        return total
    }

    /// The worker closure crosses to its thread once; nothing else shares it.
    struct WorkBox: @unchecked Sendable {
        let work: (Progress) throws -> BenchResult
    }
}

/// Messages done so far, shared by the workers and the progress printer.
final class Progress: Sendable {
    let count = Atomic<Int>(0)
}
