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

    @Option(name: .customLong("item"), help: "topics, offsets, realtime, help, reset, config, failed_partitions or a topic name.")
    var item: String?

    @Option(help: "TCP port (overrides serverPort of the config).")
    var port: Int?

    func run() throws {
        let config = try loadConfig(configPath)
        let connection: WireConnection
        do { connection = try WireConnection(host: "127.0.0.1", port: port ?? config.serverPort) } catch {
            throw ValidationError("\(error)")
        }
        guard case .result(let answer) = try connection.request(.stats(StatsCommand(item: item, opaque: 1))),
              answer.code == StatusCode.success else {
            throw ValidationError("the broker did not answer stats")
        }
        print(answer.text, terminator: "")
    }
}
