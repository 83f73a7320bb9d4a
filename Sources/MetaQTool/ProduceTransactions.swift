import ArgumentParser
import Foundation
import MetaQClient
import ProtocolCore
import Runtime

extension Produce {
    /// The messages of the run: the arguments, or the lines of standard input.
    func inputLines() -> [String] {
        if !messages.isEmpty { return messages }
        var lines: [String] = []
        while let line = readLine() { lines.append(line) }
        return lines
    }

    /// Local transactions over one wire connection (§4.2): BEGIN, the puts with the key, COMMIT_ONE_PHASE.
    func produceTransactions(batchSize: Int) throws {
        let connection = try server.connect()
        var opaques = Opaques()
        var session = TransactionSession(sessionId: Tx.sessionId)
        let target = partition < 0 ? 0 : partition
        func request(_ frame: Frame) throws -> ResultResponse {
            guard case .result(let answer) = try connection.request(frame) else { throw ValidationError("unexpected answer to \(frame)") }
            return answer
        }
        func command(_ key: String, _ type: TransactionType) throws -> ResultResponse {
            try request(.transaction(TransactionCommand(transactionKey: key, sessionId: session.sessionId, type: type, opaque: opaques.take())))
        }
        func fail(_ text: String) -> ExitCode {
            FileHandle.standardError.write(Data("\(text)\n".utf8))
            return ExitCode(1)
        }
        let lines = inputLines()
        var start = 0
        while start < lines.count {
            let batch = lines[start..<min(lines.count, start + min(batchSize, lines.count - start))]
            start = batch.endIndex
            let key = session.nextLocal().key
            let begun = try command(key, .begin)
            guard begun.code == StatusCode.success else { throw fail("BEGIN \(key) on \(server.server) failed: \(begun.code) \(begun.text)") }
            for text in batch {
                let (flag, payload) = MessagePayload.encode(attribute: attribute, data: Array(text.utf8))
                let answer = try request(.put(PutCommand(topic: topic, partition: target, flag: flag, checksum: CRC32.metaqChecksum(payload),
                                                         transactionKey: key, body: payload, opaque: opaques.take())))
                guard answer.code == StatusCode.success else {
                    let rolledBack = try command(key, .rollback)
                    throw fail("put to \(topic)-\(target) on \(server.server) in \(key) failed: \(answer.code) \(answer.text); "
                               + (rolledBack.code == StatusCode.success ? "the transaction is rolled back" : "rollback: \(rolledBack.text)"))
                }
                print(answer.text)
            }
            let committed = try command(key, .commitOnePhase)
            guard committed.code == StatusCode.success else {
                throw fail("COMMIT \(key) on \(server.server) failed: \(committed.code) \(committed.text)")
            }
            print("committed \(key): \(batch.count) messages")
        }
    }

    /// The same through the Swift client's `producer.transaction { }`.
    func produceTransactionsThroughCluster(_ connect: String, batchSize: Int) async throws {
        let client = try MetaQClient(zooKeeper: connect, root: zooKeeper.root, sessionTimeoutMs: zooKeeper.sessionTimeoutMs,
                                     logger: ZooKeeperOption.quietLogger)
        let producer = client.producer()
        let lines = inputLines()
        var start = 0
        var failed = false
        while start < lines.count {
            let batch = Array(lines[start..<min(lines.count, start + min(batchSize, lines.count - start))])
            start += batch.count
            do {
                let key = try await producer.transaction { tx in
                    for text in batch {
                        let result = try await tx.send(topic: topic, data: Array(text.utf8), attribute: attribute)
                        print("\(result.msgId) \(result.partition) -1")
                    }
                    return tx.id
                }
                print("committed \(key): \(batch.count) messages")
            } catch {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                failed = true
                break
            }
        }
        await client.shutdown()
        if failed { throw ExitCode(1) }
    }
}
