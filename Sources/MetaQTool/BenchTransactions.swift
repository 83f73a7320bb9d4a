import ArgumentParser
import Foundation
import ProtocolCore
import Runtime

/// What one producing connection does with --transaction-size: whole transactions — BEGIN,
/// `size` puts, COMMIT_ONE_PHASE — written back to back without waiting (reference §4.2: the
/// broker handles a connection's requests in order, and a COMMIT finds the puts before it), as
/// many as keep `pipeline` messages in flight, like the plain produce run. Counts committed
/// messages; the latency is per transaction, from its BEGIN to its COMMIT's answer.
struct TransactionPlan: Sendable {
    let plan: ProducePlan
    let size: Int
    /// `<localIP>-<startTimeMillis>-1`; each connection appends its number, so keys never clash.
    let sessionPrefix: String

    /// One transaction in flight.
    struct InFlight {
        var key: String
        var count: Int
        var answersLeft: Int
        var failed = false
        var started: ContinuousClock.Instant
    }

    func run(on connection: WireConnection, worker: Int, progress: Progress) throws -> BenchResult {
        var result = BenchResult()
        var session = TransactionSession(sessionId: "\(sessionPrefix)\(worker)")
        let checksum = CRC32.metaqChecksum(plan.payload)
        var opaque: Int32 = 0
        var sent = 0
        var out: [UInt8] = []
        var scanner = ResultScanner()
        /// Transactions in flight by number, and the transaction each outstanding opaque belongs
        /// to (a ring: opaques are consecutive and at most `window` + 2 per transaction are out).
        var transactions: [Int: InFlight] = [:]
        var ringSize = 1
        while ringSize < (max(plan.pipeline, size) + 2) * 8 { ringSize <<= 1 }
        let mask = ringSize - 1
        var ringOwner = [Int](repeating: -1, count: ringSize)
        // `put <topic> <partition> <length> 0 <checksum> ` per partition, encoded once (§1.4.1).
        let prefixes: [[UInt8]] = (0..<plan.partitions).map { partition in
            Array("put \(plan.topic) \(partition) \(plan.payload.count) 0 \(checksum) ".utf8)
        }
        var nextTransaction = 0
        var messagesInFlight = 0
        var reported = false
        let window = max(plan.pipeline, size)
        func more() -> Bool { plan.perConnection.map { sent < $0 } ?? (ContinuousClock.now < plan.deadline) }
        func take() -> Int32 {
            defer { opaque = (opaque &+ 1) & Int32.max }
            return opaque
        }
        while true {
            out.removeAll(keepingCapacity: true)
            while more(), messagesInFlight + size <= window {
                let count = plan.perConnection.map { min(size, $0 - sent) } ?? size
                let key = session.nextLocal().key
                let number = nextTransaction
                nextTransaction += 1
                let keyBytes = Array(key.utf8) + [UInt8(ascii: " ")]
                ringOwner[Int(opaque) & mask] = number
                Frame.transaction(TransactionCommand(transactionKey: key, sessionId: session.sessionId, type: .begin,
                                                     opaque: take())).encode(into: &out)
                for index in 0..<count {
                    let partition = (worker + sent + index) % plan.partitions
                    ringOwner[Int(opaque) & mask] = number
                    out.append(contentsOf: prefixes[partition])
                    out.append(contentsOf: keyBytes)
                    out.appendDecimal(Int64(take()))
                    out.append(0x0D)
                    out.append(0x0A)
                    out.append(contentsOf: plan.payload)
                }
                ringOwner[Int(opaque) & mask] = number
                Frame.transaction(TransactionCommand(transactionKey: key, sessionId: session.sessionId, type: .commitOnePhase,
                                                     opaque: take())).encode(into: &out)
                transactions[number] = InFlight(key: key, count: count, answersLeft: count + 2, started: .now)
                sent += count
                messagesInFlight += count
            }
            if !out.isEmpty { try connection.sendRaw(out) }
            if transactions.isEmpty { break }
            let open = try connection.receiveRaw { bytes in
                try scanner.scan(bytes) { answer in
                    let number = ringOwner[Int(answer.opaque) & mask]
                    ringOwner[Int(answer.opaque) & mask] = -1
                    guard number >= 0, var transaction = transactions[number] else {
                        throw ValidationError("the broker answered an unknown opaque \(answer.opaque)")
                    }
                    transaction.answersLeft -= 1
                    if answer.code != StatusCode.success {
                        if !reported {
                            reported = true
                            let text = String(decoding: answer.errorBody, as: UTF8.self)
                            FileHandle.standardError.write(Data("\(transaction.key) failed: \(answer.code) \(text)\n".utf8))
                        }
                        transaction.failed = true
                    }
                    guard transaction.answersLeft == 0 else {
                        transactions[number] = transaction
                        return
                    }
                    transactions[number] = nil
                    messagesInFlight -= transaction.count
                    result.record(since: transaction.started)
                    if transaction.failed {
                        result.errors += 1
                    } else {
                        result.messages += transaction.count
                        result.bytes += transaction.count * plan.payload.count
                        progress.count.add(transaction.count, ordering: .relaxed)
                    }
                }
            }
            guard open else { throw ValidationError("the broker closed the connection or stopped answering") }
        }
        return result
    }
}
