import ArgumentParser
import Foundation
import Logging
import ProtocolCore
import Runtime

/// `--zookeeper host:port[,…]` and `--zk-root`, shared by the cluster-aware subcommands.
struct ZooKeeperOption: ParsableArguments {
    @Option(name: [.customLong("zookeeper"), .customLong("zk")], help: "ZooKeeper connect string (host:port[,host:port…]): use the cluster it describes.")
    var connect: String?

    @Option(name: .customLong("zk-root"), help: "The cluster's zk.zkRoot.")
    var root = "/meta"

    @Option(name: .customLong("zk-session-timeout"), help: "ZooKeeper session timeout in ms (a killed consumer's partitions move to others after it).")
    var sessionTimeoutMs = 30_000

    var layout: MetaZooKeeperLayout { MetaZooKeeperLayout(root: root) }

    static var quietLogger: Logger {
        var logger = Logger(label: "metaq")
        logger.logLevel = ProcessInfo.processInfo.environment["METAQ_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return logger
    }
}

struct Cluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a MetaQ cluster as ZooKeeper describes it: brokers, topics, partitions, groups, owners, offsets.",
        discussion: "Reads the znodes MetaQ brokers and clients register (brokers, topics, consumer groups, owners, offsets) under --zk-root; works for any MetaQ 1.4 cluster.")

    @OptionGroup var zooKeeper: ZooKeeperOption

    func run() async throws {
        guard let connect = zooKeeper.connect else { throw ValidationError("--zookeeper host:port is required") }
        let session = try ZooKeeperSession(connect: connect, sessionTimeoutMs: 10_000, logger: ZooKeeperOption.quietLogger) { _ in }
        defer { session.close() }
        guard await session.waitUntilConnected(timeoutMs: 10_000) else {
            throw ValidationError("cannot reach ZooKeeper at \(connect) within 10 s")
        }
        let reader = TreeReader(session: session)
        let layout = zooKeeper.layout
        print("brokers:")
        for id in await reader.children(layout.brokerIdsPath).compactMap(Int.init).sorted() {
            let master = await reader.text(layout.masterPath(id)) ?? "(no master)"
            let checksum = await reader.text(layout.masterConfigChecksumPath(id)).map { " config_checksum=\($0)" } ?? ""
            print("  \(id)  \(master)\(checksum)")
        }
        print("topics:")
        for topic in await reader.children(layout.topicsPubPath).sorted() {
            let pub = await registrations(reader, layout.topicPubPath(topic))
            let sub = await registrations(reader, layout.topicSubPath(topic))
            print("  \(topic)  publish: \(pub.isEmpty ? "-" : pub)  subscribe: \(sub.isEmpty ? "-" : sub)")
        }
        print("groups:")
        for group in await reader.children(layout.root + "/consumers").sorted() {
            print("  \(group)")
            for id in await reader.children(layout.consumerIdsPath(group)).sorted() {
                print("    consumer \(id)  topics=\(await reader.text(layout.consumerIdPath(group, id)) ?? "")")
            }
            for topic in await reader.children(layout.groupPath(group) + "/owners").sorted() {
                for partition in await reader.children(layout.ownersPath(group, topic)).sorted() {
                    print("    owner \(topic) \(partition) = \(await reader.text(layout.ownersPath(group, topic) + "/" + partition) ?? "")")
                }
            }
            for topic in await reader.children(layout.groupPath(group) + "/offsets").sorted() {
                for partition in await reader.children(layout.offsetsPath(group, topic)).sorted() {
                    let text = await reader.text(layout.offsetsPath(group, topic) + "/" + partition) ?? ""
                    let shown = StoredOffset(text: text).map { "\($0.offset) (msgId \($0.msgId))" } ?? text
                    print("    offset \(topic) \(partition) = \(shown)")
                }
            }
        }
    }

    /// `0:2 1:3` — broker id and partition count of each registration under `path`.
    func registrations(_ reader: TreeReader, _ path: String) async -> String {
        var parts: [String] = []
        for child in await reader.children(path).sorted() {
            let json = await reader.text(path + "/" + child) ?? ""
            parts.append("\(child)×\(TopicRegistration(json: json)?.numParts ?? 0)")
        }
        return parts.joined(separator: " ")
    }
}

/// Reads znodes one request at a time; a missing node reads as empty.
struct TreeReader {
    let session: ZooKeeperSession

    func children(_ path: String) async -> [String] {
        if case .children(let names) = await session.perform(.getChildren(path: path, watch: false)) { return names }
        return []
    }

    func text(_ path: String) async -> String? {
        if case .data(let bytes) = await session.perform(.getData(path: path, watch: false)) {
            return String(decoding: bytes ?? [], as: UTF8.self)
        }
        return nil
    }
}
