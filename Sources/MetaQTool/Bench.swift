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
            With --transaction-size N each producing connection instead runs local transactions one after \
            another: BEGIN and N puts in one write, then COMMIT once they are answered (the broker refuses \
            a commit while puts of it are not journaled yet, which a pipelined commit can meet); msgs/s then counts committed messages and the \
            latency is per transaction. \
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

    @Option(help: "produce: target puts per second over all connections (default: as fast as the window allows). Latency at a fixed load, e.g. half of the peak, is measured this way.")
    var rate: Int?

    @Option(help: "Partitions to spread puts over (0 ..< N); consume reads each with its own connection.")
    var partitions = 1

    @Option(help: "produce: messages per local transaction (BEGIN and N puts pipelined, then COMMIT); msgs/s counts committed messages.")
    var transactionSize: Int?

    @Flag(help: "consume: verify each record's checksum (as a real consumer does); by default only the record headers are walked, so the figure measures the broker and not the client's CRC32.")
    var verifyChecksums = false

    func validate() throws {
        guard connections > 0, pipeline > 0, partitions > 0, messageSize >= 0, duration > 0 else {
            throw ValidationError("--connections, --pipeline, --partitions and --duration must be positive")
        }
        if let rate, rate <= 0 { throw ValidationError("--rate must be positive") }
        if let transactionSize {
            guard transactionSize > 0 else { throw ValidationError("--transaction-size must be positive") }
            guard rate == nil else { throw ValidationError("--rate and --transaction-size cannot be combined") }
        }
    }

    func run() throws {
        if mode != .consume { try produce().print(title: "produce") }
        if mode != .produce { try consume().print(title: "consume") }
    }

    func produce() throws -> BenchResult {
        let plan = ProducePlan(topic: topic, payload: [UInt8](repeating: 0x61, count: messageSize), pipeline: pipeline,
                               partitions: partitions, perConnection: count.map { ($0 + connections - 1) / connections },
                               ratePerConnection: rate.map { Double($0) / Double(connections) },
                               deadline: ContinuousClock.now.advanced(by: .milliseconds(Int(duration * 1000))))
        let connectionsMade = try (0..<connections).map { _ in try server.connect() }
        if let transactionSize {
            let transactional = TransactionPlan(plan: plan, size: transactionSize, sessionPrefix: Tx.sessionId)
            return try BenchRunner.run(workers: connectionsMade.enumerated().map { index, connection in
                { progress in try transactional.run(on: connection, worker: index, progress: progress) }
            })
        }
        return try BenchRunner.run(workers: connectionsMade.enumerated().map { index, connection in
            { progress in try plan.run(on: connection, worker: index, progress: progress) }
        })
    }

    func consume() throws -> BenchResult {
        let connectionsMade = try (0..<partitions).map { _ in try server.connect() }
        return try BenchRunner.run(workers: connectionsMade.enumerated().map { partition, connection in
            { progress in try Self.drain(topic: topic, partition: Int32(partition), verify: verifyChecksums,
                                          on: connection, progress: progress) }
        })
    }

    /// Reads a partition from 0 to its end with 1 MiB gets; latency per get.
    static func drain(topic: String, partition: Int32, verify: Bool, on connection: WireConnection,
                      progress: Progress) throws -> BenchResult {
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
            let (read, payloadBytes, consumed) = verify ? walkVerifying(value.body, offset: offset) : walkHeaders(value.body)
            result.messages += read
            result.bytes += payloadBytes
            progress.count.add(read, ordering: .relaxed)
            guard consumed > 0 else { return result }
            offset += Int64(consumed)
        }
    }
}

extension Bench {
    /// Messages, payload bytes and whole-record bytes of a `get` answer, walking record headers only.
    static func walkHeaders(_ body: [UInt8]) -> (messages: Int, payloadBytes: Int, consumed: Int) {
        body.withUnsafeBytes { raw in
            var position = 0
            var messages = 0
            var payload = 0
            while raw.count - position >= Record.headerSize {
                let length = Int(Int32(bigEndian: raw.loadUnaligned(fromByteOffset: position, as: Int32.self)))
                guard length >= 0, raw.count - position - Record.headerSize >= length else { break }
                position += Record.headerSize + length
                messages += 1
                payload += length
            }
            return (messages, payload, position)
        }
    }

    /// The same, checking every record's checksum as a consumer does.
    static func walkVerifying(_ body: [UInt8], offset: Int64) -> (messages: Int, payloadBytes: Int, consumed: Int) {
        var records = RecordIterator(body, baseOffset: offset)
        var messages = 0
        var payload = 0
        while case .message(let message)? = records.next() {
            messages += 1
            payload += message.data.count
        }
        return (messages, payload, records.consumedBytes)
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
    /// Puts per second this connection may send (nil: as fast as the window allows).
    let ratePerConnection: Double?
    let deadline: ContinuousClock.Instant

    func run(on connection: WireConnection, worker: Int, progress: Progress) throws -> BenchResult {
        var result = BenchResult()
        // Send times by opaque in a ring (opaques are consecutive, so no hashing per put); a
        // slot still taken by a long-unanswered put stops sending until that answer comes.
        var ringSize = 1
        while ringSize < pipeline * 4 { ringSize <<= 1 }
        let mask = ringSize - 1
        var sentAt = [UInt64](repeating: 0, count: ringSize)
        var ringOpaque = [Int32](repeating: 0, count: ringSize)
        var inFlight = 0
        var sent = 0
        var opaque: Int32 = 0
        // `put <topic> <partition> <length> 0 <checksum> ` per partition, encoded once (§1.4.1).
        let checksum = CRC32.metaqChecksum(payload)
        let prefixes: [[UInt8]] = (0..<partitions).map { partition in
            Array("put \(topic) \(partition) \(payload.count) 0 \(checksum) ".utf8)
        }
        var out: [UInt8] = []
        out.reserveCapacity(min(pipeline, 4096) * (payload.count + 64))
        var scanner = ResultScanner()
        func more() -> Bool { perConnection.map { sent < $0 } ?? (ContinuousClock.now < deadline) }
        let begin = UInt64(Clocks.monotonic().nanoseconds)
        /// Puts the schedule allows by now (all of them without --rate).
        func allowed() -> Int { ratePerConnection.map { Int(Double(UInt64(Clocks.monotonic().nanoseconds) - begin) / 1e9 * $0) + 1 } ?? Int.max }
        while true {
            // Every free slot of the window is refilled with one send.
            out.removeAll(keepingCapacity: true)
            let now = UInt64(Clocks.monotonic().nanoseconds)
            let limit = allowed()
            while inFlight < pipeline && sent < limit && sentAt[Int(opaque) & mask] == 0 && more() {
                out.append(contentsOf: prefixes[(worker + sent) % partitions])
                out.appendDecimal(Int64(opaque))
                out.append(0x0D)
                out.append(0x0A)
                out.append(contentsOf: payload)
                sentAt[Int(opaque) & mask] = now
                ringOpaque[Int(opaque) & mask] = opaque
                opaque = (opaque &+ 1) & Int32.max
                inFlight += 1
                sent += 1
            }
            if !out.isEmpty { try connection.sendRaw(out) }
            if ratePerConnection != nil, inFlight < pipeline, more() {
                // Paced: wait for answers at most 1 ms, then send what became due (puts go out in
                // per-millisecond batches, never in a busy loop).
                if inFlight == 0 {
                    usleep(1000)
                    continue
                }
                if !connection.waitReadable(milliseconds: 1) { continue }
            }
            guard inFlight > 0 else { return result }
            var answered = 0
            let open = try connection.receiveRaw { bytes in
                let received = UInt64(Clocks.monotonic().nanoseconds)
                try scanner.scan(bytes) { answer in
                    let slot = Int(answer.opaque) & mask
                    guard answer.opaque >= 0, sentAt[slot] != 0, ringOpaque[slot] == answer.opaque else {
                        throw ValidationError("the broker answered an unknown opaque \(answer.opaque)")
                    }
                    result.record(nanoseconds: received &- sentAt[slot])
                    sentAt[slot] = 0
                    inFlight -= 1
                    answered += 1
                    if answer.code == StatusCode.success {
                        result.messages += 1
                        result.bytes += payload.count
                    } else {
                        result.errors += 1
                        if result.errors == 1 {
                            let text = String(decoding: answer.errorBody, as: UTF8.self)
                            FileHandle.standardError.write(Data("put failed: \(answer.code) \(text)\n".utf8))
                        }
                    }
                }
            }
            guard open else { throw ValidationError("the broker closed the connection or stopped answering") }
            progress.count.add(answered, ordering: .relaxed)
        }
    }
}
