/// Encodes frames to exactly the bytes of reference §1.6: one text line of space-separated
/// tokens ending in CR LF, then the raw body for `put`, `sync`, `result` and `value`.
extension Frame {
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        encode(into: &out)
        return out
    }

    public func encode(into out: inout [UInt8]) {
        switch self {
        case .put(let c): c.encode(into: &out)
        case .get(let c):
            out.appendLine(["get", c.topic, c.group], numbers: [Int64(c.partition), c.offset, Int64(c.maxSize), Int64(c.opaque)])
        case .offset(let c):
            out.appendLine(["offset", c.topic, c.group], numbers: [Int64(c.partition), c.offset, Int64(c.opaque)])
        case .stats(let c): c.encode(into: &out)
        case .version(let c):
            out.appendLine(["version"], numbers: c.opaque.map { [Int64($0)] } ?? [])
        case .quit: out.appendLine(["quit"], numbers: [])
        case .transaction(let c): c.encode(into: &out)
        case .sync(let c):
            var numbers: [Int64] = [Int64(c.partition), Int64(c.body.count), Int64(c.flag), c.msgId]
            if let checksum = c.checksum { numbers.append(Int64(checksum)) }
            numbers.append(Int64(c.opaque))
            out.appendLine(["sync", c.topic], numbers: numbers)
            out.append(contentsOf: c.body)
        case .result(let r):
            ResultResponse.appendHeader(to: &out, code: r.code, bodyLength: r.body.count, opaque: r.opaque)
            out.append(contentsOf: r.body)
        case .value(let v):
            ValueResponse.appendHeader(to: &out, bodyLength: v.body.count, opaque: v.opaque)
            out.append(contentsOf: v.body)
        }
    }
}

extension PutCommand {
    func encode(into out: inout [UInt8]) {
        encodeHeader(into: &out)
        out.append(contentsOf: body)
    }

    /// The request line, `put … <opaque>␍␊`, without the body that follows it.
    public func encodeHeader(into out: inout [UInt8]) { encodeHeader(into: &out, bodyLength: body.count) }

    /// The command line for a body of `bodyLength` bytes sent after it (the HTTP API streams a
    /// put's body to the decoder as it arrives).
    public func encodeHeader(into out: inout [UInt8], bodyLength: Int) {
        out.append(contentsOf: "put".utf8)
        out.appendToken(topic)
        out.appendDecimalToken(Int64(partition))
        out.appendDecimalToken(Int64(bodyLength))
        out.appendDecimalToken(Int64(flag))
        if let checksum { out.appendDecimalToken(Int64(checksum)) }
        if let transactionKey { out.appendToken(transactionKey) }
        out.appendDecimalToken(Int64(opaque))
        out.appendCRLF()
    }
}

extension StatsCommand {
    /// With an opaque the item is always written (empty when nil), as the Java client's
    /// `stats  <opaque>` does, so the opaque is never mistaken for the item (§1.4.6).
    func encode(into out: inout [UInt8]) {
        out.append(contentsOf: "stats".utf8)
        if let opaque {
            out.appendToken(item ?? "")
            out.appendDecimalToken(Int64(opaque))
        } else if let item {
            out.appendToken(item)
        }
        out.appendCRLF()
    }
}

extension TransactionCommand {
    func encode(into out: inout [UInt8]) {
        out.append(contentsOf: "transaction".utf8)
        out.appendToken(transactionKey)
        out.appendToken(sessionId)
        out.appendToken(type.rawValue)
        if let timeoutSeconds { out.appendDecimalToken(Int64(timeoutSeconds)) }
        if let uniqueQualifier { out.appendToken(uniqueQualifier) }
        out.appendDecimalToken(Int64(opaque))
        out.appendCRLF()
    }
}

extension ResultResponse {
    /// `result <code> <bodyLength> <opaque>␍␊`.
    public static func appendHeader(to out: inout [UInt8], code: Int32, bodyLength: Int, opaque: Int32) {
        withUnsafeTemporaryAllocation(byteCount: maxHeaderBytes, alignment: 1) { raw in
            let count = writeHeader(to: raw.baseAddress!, code: code, bodyLength: bodyLength, opaque: opaque)
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[0..<count]))
        }
    }

    /// The most bytes `writeHeader` writes ("result " and three numbers, spaces, CR LF).
    public static let maxHeaderBytes = 72

    /// Writes `result <code> <bodyLength> <opaque>␍␊` at `p` (room for `maxHeaderBytes`) and
    /// returns its length: the runtime encodes answers straight into a socket buffer with it.
    public static func writeHeader(to p: UnsafeMutableRawPointer, code: Int32, bodyLength: Int, opaque: Int32) -> Int {
        var n = 0
        for byte in "result ".utf8 {
            p.storeBytes(of: byte, toByteOffset: n, as: UInt8.self)
            n += 1
        }
        n += DecimalASCII.write(Int64(code), at: p + n)
        p.storeBytes(of: 0x20, toByteOffset: n, as: UInt8.self)
        n += 1
        n += DecimalASCII.write(Int64(bodyLength), at: p + n)
        p.storeBytes(of: 0x20, toByteOffset: n, as: UInt8.self)
        n += 1
        n += DecimalASCII.write(Int64(opaque), at: p + n)
        p.storeBytes(of: 0x0D, toByteOffset: n, as: UInt8.self)
        p.storeBytes(of: 0x0A, toByteOffset: n + 1, as: UInt8.self)
        return n + 2
    }
}

extension ValueResponse {
    /// `value <totalLength> <opaque>␍␊` — what precedes a slice sent straight from a segment file.
    public static func appendHeader(to out: inout [UInt8], bodyLength: Int, opaque: Int32) {
        out.append(contentsOf: "value".utf8)
        out.appendDecimalToken(Int64(bodyLength))
        out.appendDecimalToken(Int64(opaque))
        out.appendCRLF()
    }
}

extension Array where Element == UInt8 {
    mutating func appendLine(_ words: [String], numbers: [Int64]) {
        for (i, word) in words.enumerated() {
            if i > 0 { append(0x20) }
            append(contentsOf: word.utf8)
        }
        for n in numbers { appendDecimalToken(n) }
        appendCRLF()
    }

    @inline(__always)
    mutating func appendCRLF() {
        append(0x0D)
        append(0x0A)
    }

    mutating func appendToken(_ word: String) {
        append(0x20)
        append(contentsOf: word.utf8)
    }

    /// A space then `n` in decimal ASCII, without going through String.
    mutating func appendDecimalToken(_ n: Int64) {
        append(0x20)
        appendDecimal(n)
    }

    /// `n` in decimal ASCII, without going through String.
    public mutating func appendDecimal(_ n: Int64) {
        // Digits are written backwards into a stack buffer and appended with one copy.
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        Swift.withUnsafeMutableBytes(of: &digits) { d in
            let count = DecimalASCII.writeBackwards(n, endingAt: d.baseAddress! + d.count)
            append(contentsOf: UnsafeBufferPointer(start: (d.baseAddress! + d.count - count).assumingMemoryBound(to: UInt8.self),
                                                   count: count))
        }
    }
}

/// Decimal ASCII for the hot encoders, on raw memory.
public enum DecimalASCII {
    /// Writes `n` in decimal so that its last digit is at `end - 1`; returns the byte count
    /// (at most 20). The caller provides at least 20 bytes before `end`.
    @inline(__always)
    public static func writeBackwards(_ n: Int64, endingAt end: UnsafeMutableRawPointer) -> Int {
        // Magnitude as UInt64 so Int64.min does not overflow.
        var m = n < 0 ? UInt64(bitPattern: 0 &- n) : UInt64(n)
        var p = end
        repeat {
            p -= 1
            p.storeBytes(of: UInt8(truncatingIfNeeded: m % 10) &+ 0x30, as: UInt8.self)
            m /= 10
        } while m > 0
        if n < 0 {
            p -= 1
            p.storeBytes(of: 0x2D, as: UInt8.self)
        }
        return end - p
    }

    /// Writes `n` at `start`; returns the byte count. The caller provides at least 20 bytes.
    @inline(__always)
    public static func write(_ n: Int64, at start: UnsafeMutableRawPointer) -> Int {
        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
        return Swift.withUnsafeMutableBytes(of: &scratch) { d in
            let count = writeBackwards(n, endingAt: d.baseAddress! + d.count)
            start.copyMemory(from: d.baseAddress! + d.count - count, byteCount: count)
            return count
        }
    }
}
