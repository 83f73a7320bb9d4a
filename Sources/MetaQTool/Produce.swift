import ArgumentParser
import Foundation
import MetaQClient
import ProtocolCore

struct Produce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send messages; prints `msgId partition offset` per message.",
        discussion: """
            Messages come from the arguments, or one per line from standard input when none are given. \
            With --zookeeper the partitions are discovered from the cluster and chosen round robin; \
            each line then reads `msgId brokerId-partition offset`. \
            With --transaction all messages of the run are sent in one local transaction, or \
            --transaction-size N messages per transaction: each message's line ends in -1 (not stored yet), \
            and a line `committed <TX key>: <n> messages` follows each commit. In a transaction the partition \
            must be named (the broker refuses -1), so -1 means partition 0 there. A refused message rolls its \
            transaction back and ends the run with status 1: nothing of that transaction becomes visible.
            """)

    @OptionGroup var server: ServerOption
    @OptionGroup var zooKeeper: ZooKeeperOption

    @Argument(help: "The topic.")
    var topic: String

    @Option(help: "Partition on the broker; -1 lets the broker choose.")
    var partition: Int32 = -1

    @Option(help: "An attribute to attach to every message.")
    var attribute: String?

    @Argument(help: "Messages (default: lines of standard input).")
    var messages: [String] = []

    @Flag(help: "Send all messages in one local transaction, committed at the end (see --transaction-size).")
    var transaction = false

    @Option(help: "Messages per local transaction (implies --transaction).")
    var transactionSize: Int?

    func validate() throws {
        if let transactionSize, transactionSize <= 0 { throw ValidationError("--transaction-size must be positive") }
    }

    /// Messages per transaction; nil without a transaction.
    var batchSize: Int? { transactionSize ?? (transaction ? Int.max : nil) }

    func run() async throws {
        if let connect = zooKeeper.connect {
            if let batchSize { return try await produceTransactionsThroughCluster(connect, batchSize: batchSize) }
            return try await produceThroughCluster(connect)
        }
        if let batchSize { return try produceTransactions(batchSize: batchSize) }
        let connection = try server.connect()
        var opaques = Opaques()
        var failures = 0
        func send(_ text: String) throws {
            let (flag, payload) = MessagePayload.encode(attribute: attribute, data: Array(text.utf8))
            let put = PutCommand(topic: topic, partition: partition, flag: flag, checksum: CRC32.metaqChecksum(payload),
                                 body: payload, opaque: opaques.take())
            guard case .result(let answer) = try connection.request(.put(put)) else { throw ValidationError("unexpected answer") }
            if answer.code == StatusCode.success {
                print(answer.text)
            } else {
                failures += 1
                FileHandle.standardError.write(Data("put to \(topic)-\(partition) on \(server.server) failed: \(answer.code) \(answer.text)\n".utf8))
            }
        }
        if messages.isEmpty {
            while let line = readLine() { try send(line) }
        } else {
            for message in messages { try send(message) }
        }
        if failures > 0 { throw ExitCode(1) }
    }
}

extension Produce {
    func produceThroughCluster(_ connect: String) async throws {
        let client = try MetaQClient(zooKeeper: connect, root: zooKeeper.root, sessionTimeoutMs: zooKeeper.sessionTimeoutMs,
                                     logger: ZooKeeperOption.quietLogger)
        let producer = client.producer()
        var failures = 0
        let partitions = try await producer.publish(topic)
        if partitions.isEmpty {
            await client.shutdown()
            throw ValidationError("no broker has registered topic \(topic) under \(zooKeeper.root) in ZooKeeper at \(connect)")
        }
        var lines = messages
        if lines.isEmpty { while let line = readLine() { lines.append(line) } }
        for text in lines {
            do {
                let result = try await producer.send(topic: topic, data: Array(text.utf8), attribute: attribute)
                print("\(result.msgId) \(result.partition) \(result.offset)")
            } catch {
                failures += 1
                FileHandle.standardError.write(Data("\(error)\n".utf8))
            }
        }
        await client.shutdown()
        if failures > 0 { throw ExitCode(1) }
    }
}
