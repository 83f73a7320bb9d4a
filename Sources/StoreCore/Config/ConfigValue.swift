import ProtocolCore

/// One `key=value` entry on its way to a typed field. It remembers the file, section and line, so
/// every conversion error can name them along with the form that was expected.
struct ConfigValue {
    let entry: IniEntry
    /// The section name as written (`system`, `topic=test`); nil in a file without sections
    /// (`async_slave.properties`).
    let section: String?
    let path: String

    var key: String { entry.key }
    var text: String { entry.value }
    /// `key=` with nothing after it. For optional keys MetaQ reads that as "use the default".
    var isBlank: Bool { entry.value.isEmpty }

    func error(_ kind: ConfigError.Kind, _ message: String, suggestion: String? = nil) -> ConfigError {
        ConfigError(kind: kind, path: path, line: entry.line, section: section, key: entry.key,
                    message: message, suggestion: suggestion)
    }

    /// The value as an integer expression (`1024*1024`) within `range`; `reason` tells an
    /// operator why the range is what it is, when that is not obvious.
    func integer(in range: ClosedRange<Int64>, reason: String? = nil) throws(ConfigError) -> Int64 {
        let value: Int64
        do throws(ConfigExpressionError) {
            value = try ConfigExpression.evaluate(text)
        } catch {
            throw self.error(.badNumber, "expected an integer or an integer expression such as 1024*1024, "
                + "got '\(text)': \(error.message)\(commentHint)")
        }
        guard range.contains(value) else {
            let expected = "\(range.lowerBound)...\(range.upperBound)"
            throw self.error(.outOfRange, "expected an integer in \(expected), got \(value)" + (reason.map { "; \($0)" } ?? ""))
        }
        return value
    }

    /// ``integer(in:reason:)`` for fields typed `Int`; every range used with it lies within `Int32`.
    func int(in range: ClosedRange<Int64>, reason: String? = nil) throws(ConfigError) -> Int {
        Int(try integer(in: range, reason: reason))
    }

    /// `numPartitions`, in `[system]` or a topic section. MetaQ accepts 0, and then refuses every
    /// put with "wrong partition".
    func partitionCount() throws(ConfigError) -> Int {
        try int(in: ConfigRange.positiveInt, reason: "a topic needs at least one partition (with none, every put fails)")
    }

    /// `true` or `false`, in any letter case.
    func boolean() throws(ConfigError) -> Bool {
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default: throw error(.badBoolean, "expected true or false, got '\(text)'\(commentHint)")
        }
    }

    func deletePolicy() throws(ConfigError) -> DeletePolicy {
        do throws(DeletePolicyError) {
            return try DeletePolicy(parsing: text)
        } catch {
            throw self.error(.badDeletePolicy, "\(error); expected delete,<age>, archive,<age>[,true|false] or size,<bytes> "
                + "with the age in hours or suffixed h, m or s, e.g. delete,168\(commentHint)")
        }
    }

    func cron() throws(ConfigError) -> CronExpression {
        do throws(CronParseError) {
            return try CronExpression(parsing: text)
        } catch {
            throw self.error(.badCron, "\(error); expected a Quartz cron expression 'seconds minutes hours "
                + "day-of-month month day-of-week [year]', e.g. 0 0 6,18 * * ?\(commentHint)")
        }
    }

    /// A hint for the commonest cause of a bad value: a trailing comment, which ini4j (and so MetaQ)
    /// keeps as part of the value. Only `;`/`#` after a space counts, since Quartz uses `#` itself
    /// (`MON#2`).
    private var commentHint: String {
        let trailingComment = zip(text, text.dropFirst()).contains { $0.isWhitespace && ($1 == ";" || $1 == "#") }
        return trailingComment ? " (comments must be on a line of their own)" : ""
    }
}

/// The integer ranges of numeric keys. MetaQ stores most values in a Java `int` and silently
/// truncates larger ones (`Long.intValue()`); here they are rejected instead.
enum ConfigRange {
    static let javaInt = Int64(Int32.min)...Int64(Int32.max)
    static let positiveInt = 1...Int64(Int32.max)
    static let nonNegativeInt = 0...Int64(Int32.max)
    static let positiveLong = 1...Int64.max
    static let port: ClosedRange<Int64> = 1...65535
    /// `dashboardHttpPort`: a port, or 0 for "no dashboard" (docs/DASHBOARD.md).
    static let portOrOff: ClosedRange<Int64> = 0...65535
    static let brokerId: ClosedRange<Int64> = 0...1023
    /// `maxSegmentSize`: room for one record header at least (a Java int in MetaQ).
    static let segmentSize = Int64(Record.headerSize)...Int64(Int32.max)
    /// `maxPartialFrameBytes`: at least one frame of the largest body the broker takes, so a frame
    /// never waits for a budget it could not get even alone.
    static let partialFrameBytes = Int64(FrameDecoder.Limits().maxBodyBytes)...Int64.max
}
