import ArgumentParser
import Foundation
import ProtocolCore
import Runtime
import StoreCore

/// `metaq-server stats [-item X]`: like the original's BrokerStatsTool, asks the broker of a
/// server.ini over the wire and prints the stats body.
struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a running broker's stats, as MetaQ's `stats` command answers them.")

    @Option(name: [.customShort("f"), .customLong("config")], help: "The broker's server.ini (for its port).")
    var configPath = "conf/server.ini"

    @Option(name: .customLong("item"), help: "topics, offsets, realtime, help, reset, config, failed_partitions, replication or a topic name.")
    var item: String?

    @Option(help: "TCP port (overrides serverPort of the config).")
    var port: Int?

    func run() throws {
        print(try askStats(item: item, configPath: configPath, port: port), terminator: "")
    }
}

/// The body of the `stats <item>` answer of the broker of `configPath` (on 127.0.0.1).
func askStats(item: String?, configPath: String, port: Int?) throws -> String {
    let config = try loadConfig(configPath)
    let address = "127.0.0.1:\(port ?? config.serverPort)"
    let connection: WireConnection
    do { connection = try WireConnection(host: "127.0.0.1", port: port ?? config.serverPort) } catch {
        throw CommandFailure("cannot reach the broker at \(address): \(error)")
    }
    let answer: Frame
    do { answer = try connection.request(.stats(StatsCommand(item: item, opaque: 1))) } catch {
        throw CommandFailure("the broker at \(address) did not answer stats: \(error)")
    }
    guard case .result(let result) = answer, result.code == StatusCode.success else {
        throw CommandFailure("the broker at \(address) did not answer stats: \(answer)")
    }
    return result.text
}

/// A failure reported as `Error: <text>` with exit status 1 (no usage text: the arguments were fine).
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
