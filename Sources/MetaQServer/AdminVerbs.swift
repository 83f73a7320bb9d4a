import ArgumentParser
import ProtocolCore
import Runtime

/// The broker of a server.ini and how to reach it: `-f/--config` for its serverPort, `--port` to
/// override it (`stats`, `slave-status` and the admin verbs).
struct BrokerAddressOptions: ParsableArguments {
    @Option(name: [.customShort("f"), .customLong("config")], help: "The broker's server.ini (for its port).")
    var configPath = "conf/server.ini"

    @Option(help: "TCP port (overrides serverPort of the config).")
    var port: Int?
}

/// Sends an admin verb (`AdminCommand`) to the broker and returns the text of its answer; a
/// refusal (400) or failure (500) becomes `Error: <the broker's text>` and exit status 1.
func askAdmin(_ command: AdminCommand, _ broker: BrokerAddressOptions) throws -> String {
    let (result, address) = try askBroker(item: command.statsItem, broker)
    guard result.code == StatusCode.success else { throw CommandFailure("the broker at \(address) refused (\(result.code)): \(result.text)") }
    return result.text
}

/// `metaq-server close-partitions -topic T -start a -end b`: the original's
/// `metaServer.sh close-partitions`, sent over the wire instead of JMX, and persisted.
struct ClosePartitions: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "close-partitions",
        abstract: "Close partitions of a topic on a running broker: their puts and gets answer 403.",
        discussion: """
            Closes partitions start..end of the topic on the broker of the server.ini (127.0.0.1 and its \
            serverPort, or --port). Puts and gets to them answer 403 until open-partitions; they stay \
            registered in ZooKeeper. Unlike the original, whose close lived in memory only, the close is \
            written to <dataPath>/closed-partitions and survives a restart.
            """)

    @Option(name: [.customLong("topic", withSingleDash: true), .customLong("topic")], help: "The topic.")
    var topic: String

    @Option(name: [.customLong("start", withSingleDash: true), .customLong("start")], help: "The first partition to close.")
    var start: Int32

    @Option(name: [.customLong("end", withSingleDash: true), .customLong("end")], help: "The last partition to close.")
    var end: Int32

    @OptionGroup var broker: BrokerAddressOptions

    func validate() throws {
        guard start >= 0, start <= end else { throw ValidationError("need 0 <= start <= end, got start \(start), end \(end)") }
        if let problem = MetaName.problem(with: topic) { throw ValidationError("invalid topic '\(topic)': \(problem)") }
    }

    func run() throws {
        print(try askAdmin(.closePartitions(topic: topic, start: start, end: end), broker))
    }
}

/// `metaq-server open-partitions -topic T`: serves every closed partition of the topic again.
struct OpenPartitions: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "open-partitions",
        abstract: "Open every closed partition of a topic on a running broker.",
        discussion: """
            Undoes close-partitions for all partitions of the topic on the broker of the server.ini \
            (127.0.0.1 and its serverPort, or --port); the change is persisted.
            """)

    @Option(name: [.customLong("topic", withSingleDash: true), .customLong("topic")], help: "The topic.")
    var topic: String

    @OptionGroup var broker: BrokerAddressOptions

    func validate() throws {
        if let problem = MetaName.problem(with: topic) { throw ValidationError("invalid topic '\(topic)': \(problem)") }
    }

    func run() throws {
        print(try askAdmin(.openPartitions(topic: topic), broker))
    }
}

/// `metaq-server reload`: the original's `metaServer.sh reload` (JMX `MetaConfig.reload`).
struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a running broker re-read its server.ini (topic sections only).",
        discussion: """
            The broker re-reads the file it was started with. New and changed [topic=...] sections take \
            effect at once (accepted topics, numPartitions, retention schedules, ZooKeeper registration), \
            and `stats config` answers the new file. Changes to [system], [zookeeper] or [replication] \
            are reported as needing a restart and are not applied. -f names the file only to find the \
            broker's port.
            """)

    @OptionGroup var broker: BrokerAddressOptions

    func run() throws {
        print(try askAdmin(.reload, broker))
    }
}
