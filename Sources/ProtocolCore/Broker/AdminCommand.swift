/// An operator's admin verb as it travels to a running broker (issue 19; reference §8.4, §8.5):
/// the original used JMX, we send a `stats <item>` request whose item encodes the verb and its
/// arguments, so any MetaQ client library (and `telnet`) can reach it and no new command needs a
/// wire change.
///
/// Encoding: `admin@<verb>[@<argument>…]`. `@` is refused in every topic name (`MetaName`), so
/// an item with `@` is never a topic's `stats <topic>` and its fields split unambiguously; the
/// item is one token of the text protocol (no spaces). Both ends use this one type: the tools
/// build `statsItem`, the broker parses it with `init(statsItem:)` and refuses what fails with
/// a 400 answer carrying the error's text.
public enum AdminCommand: Equatable, Sendable {
    /// `close-partitions -topic T -start a -end b`: puts and gets of `T-a … T-b` answer 403.
    case closePartitions(topic: String, start: Int32, end: Int32)
    /// `open-partitions -topic T`: every closed partition of `T` is served again.
    case openPartitions(topic: String)
    /// `reload`: the broker re-reads its server.ini (topic sections only, §8.4).
    case reload

    /// The prefix of every admin item.
    public static let prefix = "admin@"
    /// The most partitions one `close-partitions` may name (a bound on what one request makes the
    /// broker store and persist).
    public static let maxRange = 1024

    /// The `stats` item that carries this command.
    public var statsItem: String {
        switch self {
        case .closePartitions(let topic, let start, let end): return "\(Self.prefix)close-partitions@\(topic)@\(start)@\(end)"
        case .openPartitions(let topic): return "\(Self.prefix)open-partitions@\(topic)"
        case .reload: return "\(Self.prefix)reload"
        }
    }

    /// Whether a `stats` item is an admin command (valid or not).
    public static func isAdminItem(_ item: String?) -> Bool { item?.hasPrefix(prefix) == true }

    /// Parses and validates an admin item: the verb is known, the argument count is right, the
    /// topic passes `MetaName`, partitions are decimal numbers with `0 ≤ start ≤ end` and at most
    /// `maxRange` of them.
    public init(statsItem item: String) throws(AdminCommandError) {
        guard item.hasPrefix(Self.prefix) else { throw AdminCommandError("not an admin command: \(item)") }
        let fields = item.dropFirst(Self.prefix.count).split(separator: "@", omittingEmptySubsequences: false).map(String.init)
        switch fields[0] {
        case "close-partitions":
            guard fields.count == 4 else { throw AdminCommandError("close-partitions needs a topic, a start and an end partition") }
            let topic = try Self.topic(fields[1])
            let start = try Self.partition(fields[2], "start")
            let end = try Self.partition(fields[3], "end")
            guard start <= end else { throw AdminCommandError("invalid partition range: start \(start) is after end \(end)") }
            guard Int(end) - Int(start) < Self.maxRange else {
                throw AdminCommandError("invalid partition range \(start)..\(end): at most \(Self.maxRange) partitions at once")
            }
            self = .closePartitions(topic: topic, start: start, end: end)
        case "open-partitions":
            guard fields.count == 2 else { throw AdminCommandError("open-partitions needs a topic") }
            self = .openPartitions(topic: try Self.topic(fields[1]))
        case "reload":
            guard fields.count == 1 else { throw AdminCommandError("reload takes no arguments") }
            self = .reload
        default:
            throw AdminCommandError("unknown admin command '\(Self.printable(fields[0]))' "
                + "(expected close-partitions, open-partitions or reload)")
        }
    }

    private static func topic(_ text: String) throws(AdminCommandError) -> String {
        if let problem = MetaName.problem(with: text) {
            throw AdminCommandError("invalid topic '\(printable(text))': \(problem) (a topic is \(MetaName.ruleDescription))")
        }
        return text
    }

    private static func partition(_ text: String, _ name: String) throws(AdminCommandError) -> Int32 {
        guard !text.isEmpty, text.utf8.count <= 10, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let value = Int32(text) else {
            throw AdminCommandError("invalid \(name) partition '\(printable(text))': expected a number from 0 to \(Int32.max)")
        }
        return value
    }

    /// At most 64 characters of hostile text, for an error answer.
    private static func printable(_ text: String) -> String {
        String(String(decoding: text.utf8.prefix(64).map { $0 < 0x20 || $0 >= 0x7F ? UInt8(ascii: "?") : $0 }, as: UTF8.self))
    }
}

/// Why an admin item was refused (answered 400 with `message`).
public struct AdminCommandError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
