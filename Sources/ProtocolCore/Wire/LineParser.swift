/// Parses one command line (without CR LF) the way MetaQ's codec does (reference §1.1): split on
/// single spaces (two spaces make an empty token, trailing empty tokens are dropped, as Java's
/// `split` does), then dispatch on the first character of the line.
enum LineParser {
    enum Parsed {
        case complete(Frame)
        case needsBody(PendingBody)
    }

    static func parse(_ line: ArraySlice<UInt8>, limits: FrameDecoder.Limits) throws(WireError) -> Parsed {
        let t = Tokens(line)
        guard let first = line.first else { throw unknown(line) }
        switch first {
        case UInt8(ascii: "p"):
            guard t.equals(0, "put") else { throw unknown(line) }
            return .needsBody(try parsePut(t, limits: limits))
        case UInt8(ascii: "g"): return .complete(.get(try parseGet(t)))
        case UInt8(ascii: "o"): return .complete(.offset(try parseOffset(t)))
        case UInt8(ascii: "q"): return .complete(.quit)
        case UInt8(ascii: "t"): return .complete(.transaction(try parseTransaction(t)))
        case UInt8(ascii: "r"): return .needsBody(try parseResult(t, limits: limits))
        case UInt8(ascii: "v"):
            if t.equals(0, "value") { return .needsBody(try parseValue(t, limits: limits)) }
            // Any other `v…` token is a version command (§1.1).
            return .complete(.version(VersionCommand(opaque: t.count > 1 ? try t.int32(1) : nil)))
        case UInt8(ascii: "s"):
            if t.equals(0, "stats") { return .complete(.stats(try parseStats(t))) }
            // Any other `s…` token is decoded as sync (§1.1).
            return .needsBody(try parseSync(t, limits: limits))
        default:
            throw unknown(line)
        }
    }

    private static func unknown(_ line: ArraySlice<UInt8>) -> WireError {
        let shown = String(decoding: line.prefix(64), as: UTF8.self)
        return WireError(.unknownCommand, "unknown command: \(shown)")
    }

    /// 6 tokens: old put; 7: checksum (new client) or transaction key (old client in a
    /// transaction), told apart by the 6th token's first character; 8: new client in a transaction.
    private static func parsePut(_ t: Tokens, limits: FrameDecoder.Limits) throws(WireError) -> PendingBody {
        guard (6...8).contains(t.count) else { throw t.malformed("put", expected: "6 to 8") }
        var checksum: Int32?
        var txKey: String?
        if t.count == 7 {
            if t.startsLikeNumber(5) { checksum = try t.int32(5) } else { txKey = t.text(5) }
        } else if t.count == 8 {
            checksum = try t.int32(5)
            txKey = t.text(6)
        }
        let length = try bodyLength(t, index: 3, limits: limits)
        let command = PutCommand(topic: t.text(1), partition: try t.int32(2), flag: try t.int32(4),
                                 checksum: checksum, transactionKey: txKey, body: [],
                                 opaque: try t.int32(t.count - 1))
        return PendingBody(kind: .put(command), length: length)
    }

    private static func parseGet(_ t: Tokens) throws(WireError) -> GetCommand {
        guard t.count >= 7 else { throw t.malformed("get", expected: "7") }
        return GetCommand(topic: t.text(1), group: t.text(2), partition: try t.int32(3),
                          offset: try t.int64(4), maxSize: try t.int32(5), opaque: try t.int32(6))
    }

    private static func parseOffset(_ t: Tokens) throws(WireError) -> OffsetCommand {
        guard t.count >= 6 else { throw t.malformed("offset", expected: "6") }
        return OffsetCommand(topic: t.text(1), group: t.text(2), partition: try t.int32(3),
                             offset: try t.int64(4), opaque: try t.int32(5))
    }

    /// One token after `stats` is the item, two are item and opaque (§1.4.6).
    private static func parseStats(_ t: Tokens) throws(WireError) -> StatsCommand {
        switch t.count {
        case 1: return StatsCommand(item: nil, opaque: nil)
        case 2: return StatsCommand(item: t.text(1), opaque: nil)
        default: return StatsCommand(item: t.text(1), opaque: try t.int32(2))
        }
    }

    /// With 6 tokens the optional one is a timeout if all digits, else a unique qualifier (§4.2).
    private static func parseTransaction(_ t: Tokens) throws(WireError) -> TransactionCommand {
        guard (5...7).contains(t.count) else { throw t.malformed("transaction", expected: "5 to 7") }
        guard let type = TransactionType(rawValue: t.text(3)) else {
            throw WireError(.malformedLine, "unknown transaction type: \(t.text(3))")
        }
        var timeout: Int32?
        var qualifier: String?
        if t.count == 6 {
            if t.isAllDigits(4) { timeout = try t.int32(4) } else { qualifier = t.text(4) }
        } else if t.count == 7 {
            timeout = try t.int32(4)
            qualifier = t.text(5)
        }
        return TransactionCommand(transactionKey: t.text(1), sessionId: t.text(2), type: type,
                                  timeoutSeconds: timeout, uniqueQualifier: qualifier,
                                  opaque: try t.int32(t.count - 1))
    }

    /// 7 tokens: old master without checksum; 8: with checksum (§1.3).
    private static func parseSync(_ t: Tokens, limits: FrameDecoder.Limits) throws(WireError) -> PendingBody {
        guard t.count == 7 || t.count == 8 else { throw t.malformed("sync", expected: "7 or 8") }
        let length = try bodyLength(t, index: 3, limits: limits)
        let command = SyncCommand(topic: t.text(1), partition: try t.int32(2), flag: try t.int32(4),
                                  msgId: try t.int64(5), checksum: t.count == 8 ? try t.int32(6) : nil,
                                  body: [], opaque: try t.int32(t.count - 1))
        return PendingBody(kind: .sync(command), length: length)
    }

    private static func parseResult(_ t: Tokens, limits: FrameDecoder.Limits) throws(WireError) -> PendingBody {
        guard t.count >= 4 else { throw t.malformed("result", expected: "4") }
        let length = try bodyLength(t, index: 2, limits: limits)
        return PendingBody(kind: .result(code: try t.int32(1), opaque: try t.int32(3)), length: length)
    }

    private static func parseValue(_ t: Tokens, limits: FrameDecoder.Limits) throws(WireError) -> PendingBody {
        guard t.count >= 3 else { throw t.malformed("value", expected: "3") }
        let length = try bodyLength(t, index: 1, limits: limits)
        return PendingBody(kind: .value(opaque: try t.int32(2)), length: length)
    }

    private static func bodyLength(_ t: Tokens, index: Int, limits: FrameDecoder.Limits) throws(WireError) -> Int {
        let n = try t.int32(index)
        if n < 0 {
            throw WireError(.negativeBodyLength, "\(t.text(0)): negative body length \(n)")
        }
        if Int(n) > limits.maxBodyBytes {
            throw WireError(.bodyTooLarge, "\(t.text(0)): body of \(n) bytes exceeds the limit of \(limits.maxBodyBytes)")
        }
        return Int(n)
    }
}

/// The space-separated tokens of a line, as ranges into it (no copy until a token is used).
/// The first `inlineCapacity` ranges live inline (no allocation for any real command line);
/// a longer line spills the rest to an array.
struct Tokens {
    static let inlineCapacity = 12
    private let line: ArraySlice<UInt8>
    private var inline = InlineArray<12, Range<Int>>(repeating: 0..<0)
    private var spilled: [Range<Int>] = []
    private(set) var count = 0

    init(_ line: ArraySlice<UInt8>) {
        self.line = line
        var start = line.startIndex
        var lastNonEmpty = 0
        line.withUnsafeBufferPointer { bytes in
            let base = line.startIndex
            for k in 0..<bytes.count where bytes[k] == 0x20 {
                add(start..<(base + k))
                if base + k > start { lastNonEmpty = count }
                start = base + k + 1
            }
        }
        add(start..<line.endIndex)
        if line.endIndex > start { lastNonEmpty = count }
        // Java's split drops trailing empty tokens, but an all-empty line keeps one.
        count = max(1, lastNonEmpty)
    }

    private mutating func add(_ range: Range<Int>) {
        if count < Self.inlineCapacity { inline[count] = range } else { spilled.append(range) }
        count += 1
    }

    private func range(_ i: Int) -> Range<Int> {
        i < Self.inlineCapacity ? inline[i] : spilled[i - Self.inlineCapacity]
    }

    /// Whether token `i` is exactly `word` (ASCII), without making a String.
    func equals(_ i: Int, _ word: StaticString) -> Bool {
        guard i < count else { return false }
        let token = line[range(i)]
        guard token.count == word.utf8CodeUnitCount else { return false }
        return word.withUTF8Buffer { w in token.elementsEqual(w) }
    }

    func text(_ i: Int) -> String {
        i < count ? String(decoding: line[range(i)], as: UTF8.self) : ""
    }

    func startsLikeNumber(_ i: Int) -> Bool {
        guard let c = line[range(i)].first else { return false }
        return c == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
    }

    func isAllDigits(_ i: Int) -> Bool {
        let bytes = line[range(i)]
        return !bytes.isEmpty && bytes.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }

    func int32(_ i: Int) throws(WireError) -> Int32 {
        let v = try int64(i)
        guard let narrowed = Int32(exactly: v) else { throw notANumber(i) }
        return narrowed
    }

    /// Java `Long.parseLong` rules: optional sign, decimal digits, no overflow.
    func int64(_ i: Int) throws(WireError) -> Int64 {
        guard i < count else { throw notANumber(i) }
        let parsed: Int64? = line[range(i)].withUnsafeBufferPointer { bytes in
            var k = 0
            var negative = false
            if let c = bytes.first, c == UInt8(ascii: "-") || c == UInt8(ascii: "+") {
                negative = c == UInt8(ascii: "-")
                k = 1
            }
            let digits = bytes.count - k
            guard digits > 0, digits <= 19 else { return nil }
            var magnitude: UInt64 = 0
            while k < bytes.count {
                let d = bytes[k] &- UInt8(ascii: "0")
                guard d < 10 else { return nil }
                magnitude = magnitude &* 10 &+ UInt64(d)
                k += 1
            }
            if negative {
                guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
                return magnitude == UInt64(Int64.max) + 1 ? .min : -Int64(magnitude)
            }
            guard magnitude <= UInt64(Int64.max) else { return nil }
            return Int64(magnitude)
        }
        guard let parsed else { throw notANumber(i) }
        return parsed
    }

    private func notANumber(_ i: Int) -> WireError {
        WireError(.malformedLine, "\(text(0)): token \(i + 1) is not a number: '\(text(i))'")
    }

    func malformed(_ command: String, expected: String) -> WireError {
        WireError(.malformedLine, "\(command): expected \(expected) tokens, got \(count)")
    }
}
