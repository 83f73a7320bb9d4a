import ArgumentParser
import ProtocolCore

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the broker's statistics, as MetaQ's `stats` command answers them.",
        discussion: "ITEM: empty for system stats, or topics, offsets, realtime, help, reset, config, failed_partitions, replication (what the broker replicates: its master or its slaves, lag per partition), or a topic name.")

    @OptionGroup var server: ServerOption

    @Argument(help: "The stats item.")
    var item: String?

    func run() throws {
        let connection = try server.connect()
        guard case .result(let answer) = try connection.request(.stats(StatsCommand(item: item, opaque: 1))) else {
            throw ValidationError("unexpected answer")
        }
        guard answer.code == StatusCode.success else { throw ValidationError("stats failed: \(answer.code) \(answer.text)") }
        print(answer.text, terminator: "")
    }
}
