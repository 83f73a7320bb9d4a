import ArgumentParser
import Foundation
import ProtocolCore
import Runtime

/// `metaq tx`: the operator's view of prepared XA transactions on one broker (reference §4.2).
struct Tx: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tx",
        abstract: "List, commit or roll back prepared XA transactions on a broker.",
        discussion: """
            An XA transaction that was prepared stays on the broker, across restarts, until a transaction \
            manager commits or rolls it back. When the manager is gone, an operator finishes it here. \
            `list` sends RECOVER; `commit` sends COMMIT_TWO_PHASE and `rollback` ROLLBACK for one XID, \
            from this connection (XA transactions belong to the broker, not to a connection). \
            An XID reads XID:<formatId>:<hex global id>:<hex branch>:<unique qualifier>, as `list` prints it.
            """,
        subcommands: [List.self, Commit.self, Rollback.self])

    /// A session id for the tool's commands, in the client's form `<localIP>-<startTimeMillis>-<seq>` (§4.1).
    static var sessionId: String { "\(NetworkAddresses.firstNonLoopbackIPv4() ?? "127.0.0.1")-\(Clocks.wallMs())-1" }

    /// Sends one transaction command and returns the 200 answer's body; throws with the broker's text otherwise.
    static func request(_ server: ServerOption, key: String, _ type: TransactionType, uniqueQualifier: String?) throws -> String {
        let connection = try server.connect()
        // A qualifier of digits only would read as a timeout (§4.2); XIDs from Java clients never have one.
        let qualifier = uniqueQualifier.flatMap { $0.allSatisfy(\.isNumber) ? nil : $0 }
        let answer = try connection.request(.transaction(TransactionCommand(transactionKey: key, sessionId: sessionId, type: type,
                                                                            uniqueQualifier: qualifier, opaque: 1)))
        guard case .result(let result) = answer else { throw ValidationError("\(server.server) answered \(type.rawValue) with \(answer)") }
        guard result.code == StatusCode.success else {
            FileHandle.standardError.write(Data("\(type.rawValue) \(key) on \(server.server) failed: \(result.code) \(result.text)\n".utf8))
            throw ExitCode(1)
        }
        return result.text
    }

    /// An XID given on the command line, checked before it goes out.
    static func parseXid(_ text: String) throws -> TransactionId {
        guard case .xa? = try? TransactionId.parse(text) else {
            throw ValidationError("not an XID: \(text) (expected XID:<formatId>:<hex gtrid>:<hex bqual>:<unique qualifier>, as `metaq tx list` prints it)")
        }
        return try TransactionId.parse(text)!
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the prepared (and heuristically completed) XA transactions, one XID per line.",
            discussion: "Only those of one resource with --unique-qualifier (the Java client's default is XAMessageProducer-<hostname>).")

        @OptionGroup var server: ServerOption

        @Option(help: "Only XIDs whose unique qualifier is this.")
        var uniqueQualifier: String?

        func run() throws {
            let body = try Tx.request(server, key: "null", .recover, uniqueQualifier: uniqueQualifier)
            for line in body.split(separator: "\r\n") where !line.isEmpty { print(line) }
        }
    }

    struct Commit: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Commit a prepared XA transaction (COMMIT_TWO_PHASE): its messages become visible.")

        @OptionGroup var server: ServerOption

        @Argument(help: "The XID, as `metaq tx list` prints it.")
        var xid: String

        func run() throws {
            let id = try Tx.parseXid(xid)
            _ = try Tx.request(server, key: id.key, .commitTwoPhase, uniqueQualifier: id.uniqueQualifier)
            print("committed \(id.key)")
        }
    }

    struct Rollback: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Roll back a prepared XA transaction: its messages are dropped.")

        @OptionGroup var server: ServerOption

        @Argument(help: "The XID, as `metaq tx list` prints it.")
        var xid: String

        func run() throws {
            let id = try Tx.parseXid(xid)
            _ = try Tx.request(server, key: id.key, .rollback, uniqueQualifier: id.uniqueQualifier)
            print("rolled back \(id.key)")
        }
    }
}
