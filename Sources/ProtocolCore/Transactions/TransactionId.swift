/// A transaction's identity as the wire and the redo log spell it (reference §4.1):
/// `TX:<sessionId>:<n>` for a local transaction, `XID:<formatId>:<hex gtrid>:<hex bqual>:<uniqueQualifier>`
/// for an XA branch. `key` is the canonical text; for every key a Java client produces it is the
/// text that was parsed.
public enum TransactionId: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// `n` is parsed like Java's `Integer.parseInt` (an optional sign, ASCII digits, within Int32),
    /// so `TX:s:+7` and `TX:s:007` are the transaction `TX:s:7`, as in MetaQ.
    case local(sessionId: String, number: Int32)
    case xa(formatId: Int32, globalId: [UInt8], branchQualifier: [UInt8], uniqueQualifier: String)

    /// The default bound of a key's UTF-8 length: a Java client's longest keys (64-byte gtrid and
    /// bqual in hex, a host name) stay well below it.
    public static let defaultMaxKeyBytes = 512

    public var isXA: Bool {
        if case .xa = self { return true }
        return false
    }

    /// The XA branch's resource (producer) name; nil for a local transaction.
    public var uniqueQualifier: String? {
        if case .xa(_, _, _, let q) = self { return q }
        return nil
    }

    /// The canonical key text (`getTransactionKey()` of the original): lowercase hex.
    public var key: String {
        switch self {
        case .local(let sessionId, let number):
            return "TX:\(sessionId):\(number)"
        case .xa(let formatId, let globalId, let branchQualifier, let uniqueQualifier):
            return "XID:\(formatId):\(Self.hex(globalId)):\(Self.hex(branchQualifier)):\(uniqueQualifier)"
        }
    }

    public var description: String { key }

    /// Ordered by key text: every decision that walks several transactions walks them in a
    /// deterministic order.
    public static func < (a: TransactionId, b: TransactionId) -> Bool { a.key < b.key }

    /// Parses a wire key. `null` (the key of RECOVER, §4.1) gives nil; anything that is neither
    /// `null`, a well-formed `TX:` key nor a well-formed `XID:` key is an error whose text the
    /// broker answers with a 500 (MetaQ's decoder throws `Illegal transaction key:<key>` and closes
    /// the connection; we answer instead).
    public static func parse(_ key: String, maxKeyBytes: Int = defaultMaxKeyBytes) throws(TransactionIdError) -> TransactionId? {
        let utf8 = key.utf8
        if utf8.count > maxKeyBytes { throw TransactionIdError(key: key, reason: "longer than \(maxKeyBytes) bytes") }
        if key == "null" { return nil }
        let parts = utf8.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        func text(_ i: Int) -> String { String(decoding: parts[i], as: UTF8.self) }
        if key.hasPrefix("TX:") {
            guard parts.count == 3 else { throw TransactionIdError(key: key, reason: "a local key has 3 parts separated by ':'") }
            guard let number = parseJavaInt(parts[2]) else {
                throw TransactionIdError(key: key, reason: "the transaction number is not a 32-bit integer")
            }
            return .local(sessionId: text(1), number: number)
        }
        if key.hasPrefix("XID:") {
            guard parts.count == 5 else { throw TransactionIdError(key: key, reason: "an XA key has 5 parts separated by ':'") }
            guard let formatId = parseJavaInt(parts[1]) else {
                throw TransactionIdError(key: key, reason: "the format id is not a 32-bit integer")
            }
            guard let globalId = parseHex(parts[2]) else {
                throw TransactionIdError(key: key, reason: "the global transaction id is not an even number of hex digits")
            }
            guard let branch = parseHex(parts[3]) else {
                throw TransactionIdError(key: key, reason: "the branch qualifier is not an even number of hex digits")
            }
            return .xa(formatId: formatId, globalId: globalId, branchQualifier: branch, uniqueQualifier: text(4))
        }
        throw TransactionIdError(key: key, reason: "neither TX: nor XID:")
    }

    /// `Integer.parseInt` on ASCII: an optional `+`/`-`, at least one digit, within Int32.
    static func parseJavaInt(_ bytes: some Collection<UInt8>) -> Int32? {
        var it = bytes.makeIterator()
        guard var c = it.next() else { return nil }
        var negative = false
        if c == UInt8(ascii: "-") || c == UInt8(ascii: "+") {
            negative = c == UInt8(ascii: "-")
            guard let next = it.next() else { return nil }
            c = next
        }
        var value: Int64 = 0
        while true {
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(c - UInt8(ascii: "0"))
            if value > Int64(Int32.max) + 1 { return nil }
            guard let next = it.next() else { break }
            c = next
        }
        if negative { value = -value }
        guard value >= Int64(Int32.min), value <= Int64(Int32.max) else { return nil }
        return Int32(value)
    }

    /// Pairs of hex digits (either case; written back in lowercase). Empty is allowed (an empty
    /// branch qualifier is legal XA).
    static func parseHex(_ bytes: some Collection<UInt8>) -> [UInt8]? {
        guard bytes.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count / 2)
        var high: UInt8?
        for c in bytes {
            let v: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): v = c - UInt8(ascii: "A") + 10
            default: return nil
            }
            if let h = high {
                out.append(h << 4 | v)
                high = nil
            } else {
                high = v
            }
        }
        return out
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A key that is not a transaction id. `text` is the 500 answer's body: MetaQ's
/// `Illegal transaction key:<key>` (a long key shown by its first 64 bytes) and why.
public struct TransactionIdError: Error, Equatable, Sendable {
    public var text: String

    init(key: String, reason: String) {
        let shown: String
        if key.utf8.count > 64 {
            shown = String(decoding: key.utf8.prefix(64), as: UTF8.self) + "… (\(key.utf8.count) bytes)"
        } else {
            shown = key
        }
        text = "Illegal transaction key:\(shown) (\(reason))"
    }
}
