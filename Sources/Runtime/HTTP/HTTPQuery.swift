/// A request target split into its path and its query parameters
/// (`application/x-www-form-urlencoded`: `+` is a space, `%XY` a byte), for the broker's HTTP
/// servers (the message API of §7.1 and the dashboard). Hostile input is fine: a malformed escape
/// is kept as written, bytes that are not UTF-8 become U+FFFD, and a repeated key keeps its
/// first value (as a servlet's `getParameter`).
public struct HTTPQuery: Equatable, Sendable {
    /// The decoded path, without the query.
    public var path: String
    /// Parameters in the order they came, first value of each key.
    public var parameters: [(key: String, value: String)]

    public init(target: String) {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = Self.decode(parts.first.map(String.init) ?? "", plusIsSpace: false)
        parameters = []
        guard parts.count == 2 else { return }
        var seen = Set<String>()
        for pair in parts[1].split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = Self.decode(String(kv[0]), plusIsSpace: true)
            guard !key.isEmpty, seen.insert(key).inserted else { continue }
            parameters.append((key, kv.count == 2 ? Self.decode(String(kv[1]), plusIsSpace: true) : ""))
        }
    }

    /// The first value of `key`, or nil.
    public subscript(_ key: String) -> String? {
        parameters.first { $0.key == key }?.value
    }

    /// The path's segments without empty ones (`/topics/a/` → `["topics", "a"]`).
    public var segments: [String] { path.split(separator: "/").map(String.init) }

    public static func == (a: HTTPQuery, b: HTTPQuery) -> Bool {
        a.path == b.path && a.parameters.elementsEqual(b.parameters) { $0.key == $1.key && $0.value == $1.value }
    }

    /// Percent-decodes `text`; with `plusIsSpace` a `+` is a space (query component).
    public static func decode(_ text: String, plusIsSpace: Bool) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        let input = Array(text.utf8)
        var i = 0
        while i < input.count {
            let c = input[i]
            if c == UInt8(ascii: "%"), i + 2 <= input.count - 1, let hi = hex(input[i + 1]), let lo = hex(input[i + 2]) {
                bytes.append(hi << 4 | lo)
                i += 3
                continue
            }
            bytes.append(plusIsSpace && c == UInt8(ascii: "+") ? UInt8(ascii: " ") : c)
            i += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
