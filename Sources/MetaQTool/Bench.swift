import ArgumentParser
import Foundation
import Histogram
import ProtocolCore
import Runtime
import Synchronization

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load generator: pipelined puts and/or sequential gets over the MetaQ wire.",
        discussion: """
            produce: each connection keeps --pipeline puts in flight, round-robin over --partitions. \
            consume: one connection per partition reads it from offset 0 to the end. both: produce, then consume. \
            Prints a progress line each second, then msgs/s, MB/s and latency p50/p99/p99.9/max (per request). \
            It speaks only the MetaQ wire, so it can drive any MetaQ-compatible broker.
            """)

    enum Mode: String, ExpressibleByArgument, CaseIterable { case produce, consume, both }

    @Argument(help: "produce, consume or both.")
    var mode: Mode

    @OptionGroup var server: ServerOption

    @Option(help: "Topic to use (must be accepted by the broker).")
    var topic = "test"

    @Option(help: "Connections (threads) producing.")
    var connections = 4

    @Option(help: "Payload bytes per message.")
    var messageSize = 100

    @Option(help: "Puts in flight per connection.")
    var pipeline = 16

    @Option(help: "Messages to produce in total (default: run for --duration).")
    var count: Int?

    @Option(help: "Seconds to produce when --count is not given.")
    var duration: Double = 10

    @Option(help: "Partitions to spread puts over (0 ..< N).")
    var partitions = 1

    func validate() throws {
        guard connections > 0, pipeline > 0, partitions > 0, messageSize >= 0, duration > 0 else {
            throw ValidationError("--connections, --pipeline, --partitions and --duration must be positive")
        }
    }

    func run() throws {
        if mode != .consume { try produce().print(title: "produce") }
        if mode != .produce { try consume().print(title: "consume") }
    }

    func produce() throws -> BenchResult {
        let plan = ProducePlan(topic: topic, payload: [UInt8](repeating: 0x61, count: messageSize), pipeline: pipeline,
                               partitions: partitions, perConnection: count.map { ($0 + connections - 1) / connections },
                               deadline: ContinuousClock.now.advanced(by: .milliseconds(Int(duration * 1000))))
        let connectionsMade = try (0..<connections).map { _ in try server.connect() }
        return try BenchRunner.run(workers: connectionsMade.enumerated().map { index, connection in
            { progress in try plan.run(on: connection, worker: index, progress: progress) }
        })
    }

    func consume() throws -> BenchResult {
        let connectionsMade = try (0..<partitions).map { _ in try server.connect() }
        return try BenchRunner.run(workers: connectionsMade.enumerated().map { partition, connection in
            { progress in try Self.drain(topic: topic, partition: Int32(partition), on: connection, progress: progress) }
        })
    }

    /// Reads a partition from 0 to its end with 1 MiB gets; latency per get.
    static func drain(topic: String, partition: Int32, on connection: WireConnection, progress: Progress) throws -> BenchResult {
        var result = BenchResult()
        var offset: Int64 = 0
        var opaque: Int32 = 1
        while true {
            let started = ContinuousClock.now
            let answer = try connection.request(.get(GetCommand(topic: topic, group: "metaq-bench", partition: partition,
                                                                offset: offset, maxSize: 1 << 20, opaque: opaque)))
            result.record(since: started)
            opaque &+= 1
            guard case .value(let value) = answer else { return result }
            var records = RecordIterator(value.body, baseOffset: offset)
            var read = 0
            while case .message(let message)? = records.next() {
                read += 1
                result.bytes += message.data.count
            }
            result.messages += read
            progress.count.add(read, ordering: .relaxed)
            guard records.consumedBytes > 0 else { return result }
            offset += Int64(records.consumedBytes)
        }
    }
}

/// What one producing connection does: keep `pipeline` puts in flight until its share or the
/// deadline is reached, and time each put from send to answer.
struct ProducePlan: Sendable {
    let topic: String
    let payload: [UInt8]
    let pipeline: Int
    let partitions: Int
    let perConnection: Int?
    let deadline: ContinuousClock.Instant

    func run(on connection: WireConnection, worker: Int, progress: Progress) throws -> BenchResult {
        var result = BenchResult()
        var inFlight: [Int32: ContinuousClock.Instant] = [:]
        var sent = 0
        var opaque = Int32.min
        let checksum = CRC32.metaqChecksum(payload)
        func more() -> Bool { perConnection.map { sent < $0 } ?? (ContinuousClock.now < deadline) }
        while true {
            while inFlight.count < pipeline && more() {
                let partition = Int32((worker + sent) % partitions)
                try connection.send(.put(PutCommand(topic: topic, partition: partition, flag: 0, checksum: checksum,
                                                    body: payload, opaque: opaque)))
                inFlight[opaque] = ContinuousClock.now
                opaque &+= 1
                sent += 1
            }
            guard !inFlight.isEmpty else { return result }
            guard case .result(let answer)? = try connection.receive(), let started = inFlight.removeValue(forKey: answer.opaque) else {
                throw ValidationError("the broker closed the connection or answered out of protocol")
            }
            result.record(since: started)
            if answer.code == StatusCode.success {
                result.messages += 1
                result.bytes += payload.count
                progress.count.add(1, ordering: .relaxed)
            } else {
                result.errors += 1
                if result.errors == 1 { FileHandle.standardError.write(Data("put failed: \(answer.code) \(answer.text)\n".utf8)) }
            }
        }
    }
}
