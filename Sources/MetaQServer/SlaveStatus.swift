import ArgumentParser
import Foundation
import ProtocolCore
import Runtime

/// `metaq-server slave-status`: the original's `metaServer.sh slave-status`, answered by the broker
/// itself (`stats replication`) instead of JMX.
struct SlaveStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slave-status",
        abstract: "Print what a running broker replicates (its `stats replication`).",
        discussion: """
            Connects to the broker of the server.ini (127.0.0.1 and its serverPort, or --port), sends \
            `stats replication` and prints the lines of the answer: for a slave, its master and, per \
            partition, how far behind it is in bytes and milliseconds; for a master, what its slaves \
            have copied, or a line saying there is no slave. It replaces the original's `metaServer.sh slave-status`, which read JMX. Exit \
            status 1 when the broker cannot be reached or does not answer.
            """)

    @OptionGroup var broker: BrokerAddressOptions

    func run() throws {
        let body = try askStats(item: "replication", broker)
        let lines = Self.lines(of: body)
        for line in lines { print(line) }
        if let summary = Self.noSlaveLine(lines) { print(summary) }
    }

    /// The plain sentence operators look for when a master has no slave (issue 19: "until then
    /// it says there is no slave"); nil for a slave, or a master with slaves connected.
    static func noSlaveLine(_ lines: [String]) -> String? {
        guard lines.contains("role master"), lines.contains(where: { $0.trimmingCharacters(in: .whitespaces) == "slaves_connected" })
        else { return nil }
        return "no slave: no slave is connected to this broker"
    }

    /// The lines between `STATS` and `END` of a stats body (all of them if it has neither).
    static func lines(of body: String) -> [String] {
        var lines = body.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\r\n" || $0 == "\n" }).map(String.init)
        if lines.last == "" { lines.removeLast() }
        if lines.first == "STATS" { lines.removeFirst() }
        if lines.last == "END" { lines.removeLast() }
        return lines
    }
}
