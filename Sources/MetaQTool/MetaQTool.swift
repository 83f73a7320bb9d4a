// metaq: the command-line tool — argument parsing and wiring only (DESIGN.md §2).
import ArgumentParser
import MetaQClient
import Runtime

@main
struct MetaQTool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metaq",
        abstract: "Produce to, consume from and inspect MetaQ-compatible brokers (over the MetaQ wire) and clusters (through ZooKeeper).",
        subcommands: [Produce.self, Consume.self, Stats.self, Cluster.self, Recover.self, Tx.self, Admin.self, Offsets.self, Bench.self, BenchGroup.self])
}

/// `--server meta://host:port` (reference §1.7), shared by every subcommand.
struct ServerOption: ParsableArguments {
    @Option(help: "The broker, as meta://host:port.")
    var server = "meta://localhost:8123"

    func connect() throws -> WireConnection {
        guard let address = BrokerAddress(uri: server) else {
            throw ValidationError("--server must look like meta://host:port, got \(server)")
        }
        do { return try WireConnection(host: address.host, port: address.port) } catch {
            throw ValidationError("\(error)")
        }
    }
}

/// Opaques as the Java client makes them: from Int32.min upwards (reference §1.1).
struct Opaques {
    private var next = Int32.min
    mutating func take() -> Int32 {
        defer { next = next == Int32.max - 10 ? .min : next + 1 }
        return next
    }
}
