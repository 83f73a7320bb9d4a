import ArgumentParser
import ProtocolCore

/// Operator commands that change what a broker does.
struct Admin: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Operator commands: switch the master of a broker id over to one of its slaves.",
        subcommands: [Promote.self])

    struct Promote: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the broker at --server the master of its broker id (manual switchover).",
            discussion: """
                The broker must run in cluster mode with failover=true in [replication]. It claims the next \
                term in ZooKeeper the way an automatic takeover does: the current master sees the newer term, \
                stops accepting puts and follows it; clients move to it as after a failover, with unchanged \
                offsets. Without --force only a broker holding every acknowledged message may be promoted: a \
                slave of the in-sync set, or the owner of the current term, with its logs intact; --force \
                promotes any broker and may lose what it had not copied (the way out when every such broker \
                is gone for good). \
                The command returns once the broker took the request; watch `metaq-server slave-status` or \
                the broker's log for the outcome.
                """)

        @OptionGroup var server: ServerOption

        @Flag(help: "Promote even a slave that is not in sync (messages it has not copied are lost).")
        var force = false

        func run() throws {
            let connection = try server.connect()
            let item = force ? "promote-force" : "promote"
            guard case .result(let answer) = try connection.request(.stats(StatsCommand(item: item, opaque: 1))) else {
                throw ValidationError("unexpected answer from the broker")
            }
            guard answer.code == StatusCode.success else { throw ValidationError("promote refused: \(answer.text)") }
            print(answer.text)
        }
    }
}
