import ArgumentParser
import Foundation
import MetaQClient
import ProtocolCore

struct Consume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch and print messages of one partition: `offset msgId attribute data` per line.",
        discussion: """
            Stops at the end of the partition unless --follow is given. Follows 301 answers (data deleted, \
            damage skipped). With --zookeeper it joins consumer group --group instead: it takes its share \
            of the topic's partitions (rebalancing as members come and go, as MetaQ's clients do), starts at the \
            group's committed offsets, commits them as it goes and on exit, and prints \
            `brokerId-partition offset msgId attribute data`; it stops after --count messages, or after 5 s \
            without a message unless --follow is given.
            """)

    @OptionGroup var server: ServerOption
    @OptionGroup var zooKeeper: ZooKeeperOption

    @Argument(help: "The topic.")
    var topic: String

    @Option(help: "Partition on the broker (required without --zookeeper).")
    var partition: Int32?

    @Option(help: "With --zookeeper: stop after this many messages.")
    var count: Int?

    @Option(help: "Start offset (a record boundary).")
    var offset: Int64 = 0

    @Option(help: "Consumer group (the broker uses it for statistics and filters).")
    var group = "metaq-cli"

    @Option(help: "Bytes asked per fetch; doubled while a record does not fit.")
    var maxSize: Int32 = 1 << 20

    @Flag(help: "Keep polling at the end of the partition.")
    var follow = false

    func run() async throws {
        if let connect = zooKeeper.connect { return try await consumeThroughCluster(connect) }
        guard let partition else { throw ValidationError("--partition is required (or use --zookeeper to consume as a group)") }
        let connection = try server.connect()
        var opaques = Opaques()
        var position = offset
        var size = maxSize
        while true {
            let get = GetCommand(topic: topic, group: group, partition: partition, offset: position, maxSize: size, opaque: opaques.take())
            switch try connection.request(.get(get)) {
            case .value(let value):
                var records = RecordIterator(value.body, baseOffset: position)
                while let element = records.next() {
                    switch element {
                    case .message(let m):
                        print("\(m.offset) \(m.id) \(m.attribute ?? "-") \(String(decoding: m.data, as: UTF8.self))")
                    case .incomplete: break
                    case .damaged(let at, let why): throw ValidationError("damaged record at offset \(at): \(why)")
                    }
                }
                if records.consumedBytes == 0 {
                    guard size < Int32.max / 2 else { throw ValidationError("a record at \(position) is too large to fetch") }
                    size *= 2
                }
                position += Int64(records.consumedBytes)
            case .result(let answer) where answer.code == StatusCode.moved:
                guard let next = Int64(answer.text) else { throw ValidationError("bad 301 answer: \(answer.text)") }
                position = next
            case .result(let answer) where answer.code == StatusCode.notFound:
                guard follow else { return }
                usleep(500_000)
            case .result(let answer):
                throw ValidationError("get from \(topic)-\(partition) on \(server.server) failed: \(answer.code) \(answer.text)")
            default:
                throw ValidationError("unexpected answer")
            }
        }
    }
}
