/// The one rule for a topic or group name that may become part of a path (DESIGN.md §8): the
/// broker's partition directory `<dataPath>/<topic>-<partition>` (reference §2.2), the client's
/// recover store `<root>/<topic>@<group>` (§5.2) and ordered spool `<root>/<topic>@<broker>-<partition>`
/// (§5.6). Every place that turns such a name into a path, or accepts one from the wire or the API,
/// asks this rule, so a name is accepted everywhere or nowhere.
///
/// A valid name is a single path component made of the characters MetaQ names use in practice:
///
/// - 1 to `maxBytes` (120) bytes of ASCII letters, digits, `.`, `_` and `-`;
/// - not `.` or `..` (they name the directory itself or its parent).
///
/// So `/`, NUL, whitespace (which the wire protocol cannot carry anyway, §11.9), control characters,
/// `@` (the separator of our store directory names), `*` (a wildcard in `[topic=…]` sections) and
/// anything outside ASCII (sized inconsistently by the original's encoders, §11.9) are refused.
///
/// Why 120 bytes: a file name is at most 255 bytes on Linux file systems. The longest name built
/// from two of these is `<topic>@<group>` (120 + 1 + 120 = 241 bytes); `<topic>-<partition>` adds
/// at most 11 bytes and `<topic>@<broker>-<partition>` at most 41. 120 leaves room for all of
/// them, and is far beyond any topic or group name seen in MetaQ deployments.
public enum MetaName {
    /// The longest valid name, in bytes (see the type's documentation for the choice).
    public static let maxBytes = 120

    /// The rule in words, for error texts.
    public static let ruleDescription =
        "1 to \(maxBytes) ASCII letters, digits, '.', '_' or '-', and not '.' or '..'"

    /// Why a name is not valid.
    public enum Problem: Equatable, Hashable, Sendable, CustomStringConvertible {
        case empty
        case tooLong(bytes: Int)
        /// `.` or `..`.
        case dotsOnly
        /// The first byte outside the allowed set, and its position in the UTF-8 bytes.
        case forbiddenByte(UInt8, at: Int)

        public var description: String {
            switch self {
            case .empty: return "it is empty"
            case .tooLong(let bytes): return "it is \(bytes) bytes long, more than \(MetaName.maxBytes)"
            case .dotsOnly: return "'.' and '..' name directories"
            case .forbiddenByte(let byte, let index): return "\(Self.name(of: byte)) at byte \(index)"
            }
        }

        private static func name(of byte: UInt8) -> String {
            switch byte {
            case 0: return "a NUL byte"
            case UInt8(ascii: "/"): return "'/'"
            case UInt8(ascii: "@"): return "'@'"
            case UInt8(ascii: "*"): return "'*'"
            case UInt8(ascii: " "): return "a space"
            case 0x01..<0x20, 0x7F: return "a control character (0x\(String(byte, radix: 16, uppercase: true)))"
            case 0x80...: return "a non-ASCII character"
            default: return "'\(Character(Unicode.Scalar(byte)))'"
            }
        }
    }

    /// Whether `name` may be a topic or group name.
    public static func isValid(_ name: String) -> Bool { problem(with: name) == nil }

    /// Why `name` is not a valid topic or group name, or nil when it is. With
    /// `allowingWildcard`, `*` is allowed too: the rule for `[topic=…]` section names, whose
    /// topics (`*` replaced by valid characters) then pass the rule as well.
    public static func problem(with name: String, allowingWildcard: Bool = false) -> Problem? {
        var count = 0
        var dotsOnly = true
        for byte in name.utf8 {
            if !isAllowed(byte) && !(allowingWildcard && byte == UInt8(ascii: "*")) {
                return .forbiddenByte(byte, at: count)
            }
            if byte != UInt8(ascii: ".") { dotsOnly = false }
            count += 1
        }
        if count == 0 { return .empty }
        if count > maxBytes { return .tooLong(bytes: count) }
        if dotsOnly && count <= 2 { return .dotsOnly }
        return nil
    }

    /// An error text for a refused name: `<what> name "<name>" is not valid: <problem>; expected
    /// <rule>`. `what` is `topic`, `group`, … The name is shown with Swift's escapes, so a NUL or
    /// a line break in it cannot garble a log line.
    public static func refusal(_ what: String, _ name: String, _ problem: Problem) -> String {
        "\(what) name \(name.debugDescription) is not valid: \(problem); expected \(ruleDescription)"
    }

    /// `refusal(_:_:_:)` as an error, or nil for a valid name: `try MetaName.check("topic", t)`.
    public static func check(_ what: String, _ name: String) throws(MetaNameError) {
        if let problem = problem(with: name) { throw MetaNameError(what: what, name: name, problem: problem) }
    }

    @inline(__always)
    static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}

/// A topic or group name refused by `MetaName`.
public struct MetaNameError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// What the name names: `topic`, `group`.
    public var what: String
    public var name: String
    public var problem: MetaName.Problem

    public init(what: String, name: String, problem: MetaName.Problem) {
        self.what = what
        self.name = name
        self.problem = problem
    }

    public var description: String { MetaName.refusal(what, name, problem) }
}
