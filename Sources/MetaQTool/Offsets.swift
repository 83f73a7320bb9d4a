import ArgumentParser
import MetaQClient
import ProtocolCore
import Runtime

/// `metaq offsets --group G --topic T`: the original's `query` console (`showoffset`), reading
/// the offsets a consumer group stored — in ZooKeeper (`<zkRoot>/consumers/<group>/offsets/<topic>/
/// <brokerId>-<partition>`, reference §3.1) or in a local offset file (LocalOffsetStorage, §5.4) —
/// and, with `--server`, that broker's max offset and the group's lag behind it.
struct Offsets: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the offsets a consumer group stored for a topic, per broker and partition.",
        discussion: """
            Reads the group's offsets from ZooKeeper (--zookeeper/--zk host:port, --zk-root) or from a \
            client's local offset file (--offsets-file, the MetaQ LocalOffsetStorage format; default \
            ~/.meta_offsets when no ZooKeeper is given). Prints one line per partition: \
            `<brokerId>-<partition> <offset>`. With --server meta://host:port it also asks that broker \
            for its max offsets and prints `max <n> lag <bytes>` for its partitions.
            """)

    @Option(help: "The consumer group.")
    var group: String

    @Option(help: "The topic.")
    var topic: String

    @OptionGroup var zooKeeper: ZooKeeperOption

    @Option(name: .customLong("offsets-file"), help: "A client's local offset file (instead of ZooKeeper).")
    var offsetsFile: String?

    @Option(help: "A broker (meta://host:port) whose max offsets and lag to show.")
    var server: String?

    func validate() throws {
        if let problem = MetaName.problem(with: group) { throw ValidationError("invalid group '\(group)': \(problem)") }
        if let problem = MetaName.problem(with: topic) { throw ValidationError("invalid topic '\(topic)': \(problem)") }
        if zooKeeper.connect != nil && offsetsFile != nil { throw ValidationError("give --zookeeper or --offsets-file, not both") }
    }

    func run() async throws {
        let stored: [(partition: BrokerPartition, offset: StoredOffset?, text: String)]
        if let connect = zooKeeper.connect {
            stored = try await zooKeeperOffsets(connect)
        } else {
            let path = offsetsFile ?? LocalOffsetFile.defaultPath
            stored = try LocalOffsetFile(path: path).offsets(group: group, topic: topic).map { ($0.partition, $0.offset, "") }
        }
        guard !stored.isEmpty else {
            throw OffsetsFailure("group \(group) stored no offsets for topic \(topic)"
                + (zooKeeper.connect == nil ? " in \(offsetsFile ?? LocalOffsetFile.defaultPath)" : " under \(zooKeeper.root)"))
        }
        let broker = try server.map(brokerOffsets)
        for (partition, offset, text) in stored {
            guard let offset else {
                print("\(partition) unreadable: \(text)")
                continue
            }
            var line = "\(partition) \(offset.offset)"
            if let broker, partition.brokerId == broker.id, let max = broker.maxOffsets[partition.partition] {
                line += " max \(max) lag \(Swift.max(0, max - offset.offset))"
            }
            print(line)
        }
    }

    /// The group's offset znodes of the topic, parsed (`<msgId>-<offset>` or a plain offset).
    func zooKeeperOffsets(_ connect: String) async throws -> [(partition: BrokerPartition, offset: StoredOffset?, text: String)] {
        let session = try ZooKeeperSession(connect: connect, sessionTimeoutMs: 10_000, logger: ZooKeeperOption.quietLogger) { _ in }
        defer { session.close() }
        guard await session.waitUntilConnected(timeoutMs: 10_000) else {
            throw OffsetsFailure("cannot reach ZooKeeper at \(connect) within 10 s")
        }
        let reader = TreeReader(session: session)
        let path = zooKeeper.layout.offsetsPath(group, topic)
        var found: [(partition: BrokerPartition, offset: StoredOffset?, text: String)] = []
        for name in await reader.children(path) {
            guard let partition = BrokerPartition(name) else { continue }
            let text = await reader.text(path + "/" + name) ?? ""
            found.append((partition, StoredOffset(text: text), text))
        }
        return found.sorted { $0.partition < $1.partition }
    }

    /// The broker's id (system `stats`) and its max offset per partition of the topic (`stats offsets`).
    func brokerOffsets(_ uri: String) throws -> (id: Int, maxOffsets: [Int: Int64]) {
        guard let address = BrokerAddress(uri: uri) else { throw ValidationError("--server must look like meta://host:port, got \(uri)") }
        let connection: WireConnection
        do { connection = try WireConnection(host: address.host, port: address.port) } catch {
            throw OffsetsFailure("cannot reach \(uri): \(error)")
        }
        func stats(_ item: String?) throws -> [[Substring]] {
            guard case .result(let answer) = try connection.request(.stats(StatsCommand(item: item, opaque: 1))),
                  answer.code == StatusCode.success else { throw OffsetsFailure("\(uri) did not answer stats \(item ?? "")") }
            return answer.text.split(whereSeparator: { $0 == "\r\n" || $0 == "\n" }).map { $0.split(separator: " ") }
        }
        guard let id = try stats(nil).first(where: { $0.first == "broker_id" && $0.count == 2 }).flatMap({ Int($0[1]) }) else {
            throw OffsetsFailure("\(uri) did not tell its broker_id")
        }
        var maxOffsets: [Int: Int64] = [:]
        // `<topic> part <p> min_offset <n> max_offset <n>`
        for fields in try stats("offsets") where fields.count == 7 && fields[0] == topic && fields[5] == "max_offset" {
            if let partition = Int(fields[2]), let max = Int64(fields[6]) { maxOffsets[partition] = max }
        }
        return (id, maxOffsets)
    }
}

/// A failure reported as `Error: <text>` with exit status 1 (no usage text: the arguments were fine).
struct OffsetsFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
