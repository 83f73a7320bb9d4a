/// A server-side consumer filter over a record's attribute (reference §1.5, §5.7): the value of
/// `group.<group>=<filter>` in a `[topic=…]` section. MetaQ loads a Java class there; we do not load
/// code, so the value is a small expression instead:
///
/// | form | accepts a record whose attribute |
/// | --- | --- |
/// | `red` | is exactly `red` |
/// | `exact:red` | is exactly `red` (for values that would read as another form) |
/// | `prefix:abc` | starts with `abc` |
/// | `any:red,green` | is one of the comma-separated values (spaces around them trimmed) |
/// | `not:<form>` | is not accepted by `<form>` |
///
/// A record without an attribute is accepted by no positive form, so `not:red` accepts it.
///
/// Lives in ProtocolCore because the broker machine applies it; the config parser (StoreCore)
/// builds it once at start-up.
public indirect enum AttributeFilter: Equatable, Sendable, CustomStringConvertible {
    case exact(String)
    case prefix(String)
    case anyOf([String])
    case not(AttributeFilter)

    /// Why a value is not a filter expression.
    public struct ParseError: Error, Equatable, Sendable {
        public var message: String
        public init(_ message: String) { self.message = message }
    }

    static let forms = ["exact", "prefix", "any", "not"]

    /// Parses the expression `text` (already trimmed by the config reader).
    ///
    /// Rejected: an empty value or operand; `<letters>:` naming no form (`regex:a.*`); and a bare
    /// value that reads as a Java class name (`com.example.MyFilter`: dotted identifiers, the last
    /// capitalised) — the original's filter classes cannot be loaded here, and treating the name as
    /// an attribute would silently deliver nothing. `exact:` takes any such value literally.
    public init(parsing text: String) throws(ParseError) {
        guard !text.isEmpty else { throw ParseError("empty filter; expected <attribute>, prefix:, any:, not: or exact:") }
        if let colon = text.firstIndex(of: ":") {
            let form = String(text[..<colon])
            let operand = String(text[text.index(after: colon)...])
            if !form.isEmpty, form.utf8.allSatisfy(Self.isASCIILetter) {
                self = try Self.parse(form: form, operand: operand)
                return
            }
        }
        if Self.looksLikeJavaClass(text) {
            throw ParseError("'\(text)' looks like a Java filter class; class loading is not supported (MetaQ loaded such classes from the broker's provided/ directory). "
                             + "Use an attribute expression (<attribute>, prefix:, any:, not:), or exact:\(text) to match this attribute literally")
        }
        self = .exact(text)
    }

    private static func parse(form: String, operand: String) throws(ParseError) -> AttributeFilter {
        switch form {
        case "not": return .not(try AttributeFilter(parsing: operand))
        case "exact", "prefix":
            guard !operand.isEmpty else { throw ParseError("\(form): needs a value") }
            return form == "exact" ? .exact(operand) : .prefix(operand)
        case "any":
            let values = operand.split(separator: ",", omittingEmptySubsequences: false).map { trimmedSpaces($0) }
            guard !values.contains(where: \.isEmpty) else {
                throw ParseError("any: needs a comma-separated list of non-empty values, got '\(operand)'")
            }
            return .anyOf(values)
        default:
            throw ParseError("unknown filter form '\(form):'; expected one of \(forms.map { $0 + ":" }.joined(separator: ", ")) "
                             + "or a bare attribute (exact:\(form):\(operand) matches this text literally)")
        }
    }

    /// Whether a record with `attribute` (nil: the record has none) is delivered.
    public func accepts(_ attribute: String?) -> Bool {
        switch self {
        case .not(let inner): return !inner.accepts(attribute)
        case .exact(let value): return attribute == value
        case .prefix(let value): return attribute?.hasPrefix(value) ?? false
        case .anyOf(let values): return attribute.map(values.contains) ?? false
        }
    }

    /// The expression in its canonical written form.
    public var description: String {
        switch self {
        case .exact(let value): return "exact:\(value)"
        case .prefix(let value): return "prefix:\(value)"
        case .anyOf(let values): return "any:" + values.joined(separator: ",")
        case .not(let inner): return "not:\(inner)"
        }
    }

    private static func isASCIILetter(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }

    private static func trimmedSpaces(_ text: Substring) -> String {
        String(text.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }

    /// `a.b.C`: at least two dot-separated Java identifiers, the last starting with a capital letter.
    static func looksLikeJavaClass(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 2, let last = parts.last?.utf8.first, last >= 0x41 && last <= 0x5A else { return false }
        return parts.allSatisfy { part in
            guard let first = part.utf8.first, !(first >= 0x30 && first <= 0x39) else { return false }
            return part.utf8.allSatisfy { isASCIILetter($0) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x24 }
        }
    }
}
