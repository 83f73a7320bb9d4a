import ArgumentParser
import Foundation
import ProtocolCore
import Runtime
import StoreCore

/// `metaq-server stats [-item X]`: like the original's BrokerStatsTool, asks the broker of a
/// server.ini over the wire and prints the stats body.
struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a running broker's stats, as MetaQ's `stats` command answers them.")

    @Option(name: .customLong("item"), help: "topics, offsets, realtime, help, reset, config, failed_partitions, replication or a topic name.")
    var item: String?

    @OptionGroup var broker: BrokerAddressOptions

    func run() throws {
        print(try askStats(item: item, broker), terminator: "")
    }
}

/// The broker's answer to `stats <item>` — the stats items, and the admin verbs sent as items
/// (`AdminCommand`) — asked on 127.0.0.1 at `--port`, else serverPort of `-f` (the file is
/// read only then: a reload of a file that no longer parses still reaches the broker, which says
/// what is wrong with it).
func askBroker(item: String?, _ broker: BrokerAddressOptions) throws -> (result: ResultResponse, address: String) {
    let port = try broker.port ?? loadConfig(broker.configPath).serverPort
    let address = "127.0.0.1:\(port)"
    let connection: WireConnection
    do { connection = try WireConnection(host: "127.0.0.1", port: port) } catch {
        throw CommandFailure("cannot reach the broker at \(address): \(error)")
    }
    let answer: Frame
    do { answer = try connection.request(.stats(StatsCommand(item: item, opaque: 1))) } catch {
        throw CommandFailure("the broker at \(address) did not answer: \(error)")
    }
    guard case .result(let result) = answer else { throw CommandFailure("the broker at \(address) answered \(answer)") }
    return (result, address)
}

/// The body of the broker's `stats <item>` answer.
func askStats(item: String?, _ broker: BrokerAddressOptions) throws -> String {
    let (result, address) = try askBroker(item: item, broker)
    guard result.code == StatusCode.success else {
        throw CommandFailure("the broker at \(address) did not answer stats (\(result.code)): \(result.text)")
    }
    return result.text
}

/// A failure reported as `Error: <text>` with exit status 1 (no usage text: the arguments were fine).
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
