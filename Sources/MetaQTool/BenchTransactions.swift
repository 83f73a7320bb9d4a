import ArgumentParser
import Foundation
import ProtocolCore
import Runtime

/// What one producing connection does with --transaction-size: BEGIN and `size` puts written at
/// once (reference §4.2; the broker handles a connection's requests in order), then, when they are
/// answered, COMMIT_ONE_PHASE; one transaction at a time per connection. Counts committed messages;
/// the latency is per transaction.
struct TransactionPlan: Sendable {
    let plan: ProducePlan
    let size: Int
    /// `<localIP>-<startTimeMillis>-1`; each connection appends its number, so keys never clash.
    let sessionPrefix: String

    func run(on connection: WireConnection, worker: Int, progress: Progress) throws -> BenchResult {
        var result = BenchResult()
        var session = TransactionSession(sessionId: "\(sessionPrefix)\(worker)")
        let checksum = CRC32.metaqChecksum(plan.payload)
        var opaque: Int32 = 0
        var sent = 0
        var out: [UInt8] = []
        var scanner = ResultScanner()
        func more() -> Bool { plan.perConnection.map { sent < $0 } ?? (ContinuousClock.now < plan.deadline) }
        while more() {
            let count = plan.perConnection.map { min(size, $0 - sent) } ?? size
            let key = session.nextLocal().key
            let first = opaque
            out.removeAll(keepingCapacity: true)
            Frame.transaction(TransactionCommand(transactionKey: key, sessionId: session.sessionId, type: .begin, opaque: opaque))
                .encode(into: &out)
            for index in 0..<count {
                opaque &+= 1
                out.append(contentsOf: Array("put \(plan.topic) \((worker + sent + index) % plan.partitions) \(plan.payload.count) 0 \(checksum) \(key) \(opaque)\r\n".utf8))
                out.append(contentsOf: plan.payload)
            }
            let started = ContinuousClock.now
            try connection.sendRaw(out)
            sent += count
            // The broker refuses a COMMIT while puts of the transaction are not yet stored
            // (docs/TRANSACTIONS.md), so COMMIT goes out once every put is answered.
            var failed = try awaitAnswers(count + 1, from: first, through: opaque, key: key, on: connection, &scanner, &result)
            opaque &+= 1
            let commitOpaque = opaque
            out.removeAll(keepingCapacity: true)
            Frame.transaction(TransactionCommand(transactionKey: key, sessionId: session.sessionId,
                                                 type: failed ? .rollback : .commitOnePhase, opaque: commitOpaque)).encode(into: &out)
            opaque = (opaque &+ 1) & Int32.max
            try connection.sendRaw(out)
            failed = try awaitAnswers(1, from: commitOpaque, through: commitOpaque, key: key, on: connection, &scanner, &result) || failed
            if !failed {
                result.messages += count
                result.bytes += count * plan.payload.count
            }
            result.record(since: started)
            if failed { result.errors += 1 } else { progress.count.add(count, ordering: .relaxed) }
        }
        return result
    }

    /// Reads `count` answers with opaques in `first...last`; whether any was not a success (the
    /// first failure of the run is printed).
    private func awaitAnswers(_ count: Int, from first: Int32, through last: Int32, key: String, on connection: WireConnection,
                              _ scanner: inout ResultScanner, _ result: inout BenchResult) throws -> Bool {
        var waiting = count
        var failed = false
        while waiting > 0 {
            let open = try connection.receiveRaw { bytes in
                try scanner.scan(bytes) { answer in
                    guard answer.opaque >= first, answer.opaque <= last else {
                        throw ValidationError("the broker answered an unknown opaque \(answer.opaque)")
                    }
                    waiting -= 1
                    if answer.code != StatusCode.success {
                        if !failed, result.errors == 0 {
                            let text = String(decoding: answer.errorBody, as: UTF8.self)
                            FileHandle.standardError.write(Data("\(key) failed: \(answer.code) \(text)\n".utf8))
                        }
                        failed = true
                    }
                }
            }
            guard open else { throw ValidationError("the broker closed the connection or stopped answering") }
        }
        return failed
    }
}
