/// `deletePolicy` (reference §2.7): `delete,<age>` or `archive,<age>[,<compress>]`, where the age is
/// hours by default or carries a unit suffix `h`, `m` or `s` (`delete,168`, `delete,72s`); or ours,
/// `size,<bytes>` (issue 19): per partition, the oldest segments go while the partition without
/// them still holds at least `<bytes>` (Kafka's `retention.bytes`). The bytes are a config
/// expression (`10*1024*1024*1024`).
public struct DeletePolicy: Equatable, Sendable, CustomStringConvertible {
    public enum Action: Equatable, Sendable {
        case delete
        /// Rename to `<file>.arc`, or write `<file>.zip` and delete the original when compressing.
        case archive(compress: Bool)
    }

    public var action: Action
    /// Segments whose last modification is older than this are eligible (`Int64.max` for a size
    /// policy: age alone never removes a segment).
    public var maxAgeMs: Int64
    /// A size policy's bound on a partition's bytes (nil for age policies).
    public var maxBytes: Int64?
    public let text: String

    /// MetaQ's default: delete after 7 days.
    public static let metaqDefault = try! DeletePolicy(parsing: "delete,168")

    public init(parsing text: String) throws(DeletePolicyError) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingSpaces() }
        guard let name = parts.first, !name.isEmpty else { throw DeletePolicyError(text, "empty policy") }
        switch name {
        case "delete":
            guard parts.count == 2 else { throw DeletePolicyError(text, "expected delete,<age>[h|m|s]") }
            action = .delete
        case "size":
            guard parts.count == 2 else { throw DeletePolicyError(text, "expected size,<bytes>") }
            let bytes: Int64
            do { bytes = try ConfigExpression.evaluate(parts[1]) } catch {
                throw DeletePolicyError(text, "bytes must be a number or an expression such as 10*1024*1024*1024: \(error)")
            }
            guard bytes > 0 else { throw DeletePolicyError(text, "bytes must be at least 1, got \(bytes)") }
            action = .delete
            maxAgeMs = .max
            maxBytes = bytes
            self.text = text
            return
        case "archive":
            guard parts.count == 2 || parts.count == 3 else {
                throw DeletePolicyError(text, "expected archive,<age>[h|m|s][,true|false]")
            }
            var compress = false
            if parts.count == 3 {
                switch parts[2].lowercased() {
                case "true": compress = true
                case "false": compress = false
                default: throw DeletePolicyError(text, "compress flag must be true or false, got '\(parts[2])'")
                }
            }
            action = .archive(compress: compress)
        default:
            throw DeletePolicyError(text, "unknown policy '\(name)' (expected delete, archive or size)")
        }
        maxAgeMs = try Self.parseAge(parts[1], policy: text)
        self.text = text
    }

    public var description: String { text }

    private static func parseAge(_ age: String, policy: String) throws(DeletePolicyError) -> Int64 {
        var digits = Substring(age)
        var unitMs: Int64 = 3_600_000
        switch age.last {
        case "h": digits = digits.dropLast()
        case "m": digits = digits.dropLast(); unitMs = 60_000
        case "s": digits = digits.dropLast(); unitMs = 1000
        default: break
        }
        guard let n = Int64(digits), n >= 0, n <= Int64.max / unitMs else {
            throw DeletePolicyError(policy, "age must be a whole number with an optional unit h, m or s, got '\(age)'")
        }
        return n * unitMs
    }
}

public struct DeletePolicyError: Error, Equatable, Sendable, CustomStringConvertible {
    public let policy: String
    public let message: String

    init(_ policy: String, _ message: String) {
        self.policy = policy
        self.message = message
    }

    public var description: String { "invalid deletePolicy '\(policy)': \(message)" }
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
