/// A scanner for a stream of `result <code> <length> <opaque>␍␊<body>` answers (reference §1.2),
/// for pipelining producers that need only each answer's code and opaque: it reads the headers
/// straight from the receive buffer and skips the bodies without allocating, except for the
/// body of a non-200 answer (its error text), which it hands over.
///
/// Any other frame (a `value`, a malformed line) is a protocol error for such a client: it throws
/// and the stream cannot be resumed, as with `FrameDecoder`. A header split across reads is
/// carried over; memory is bounded by `maxLineBytes` for headers and `maxErrorBodyBytes` for
/// error texts (longer texts are cut).
public struct ResultScanner {
    public struct Answer: Equatable, Sendable {
        public var code: Int32
        public var opaque: Int32
        /// The body of a non-200 answer (up to `maxErrorBodyBytes`); empty for 200.
        public var errorBody: [UInt8]
    }

    public let maxLineBytes: Int
    public let maxErrorBodyBytes: Int
    /// The start of a header line that has not fully arrived.
    private var carry: [UInt8] = []
    /// Body bytes of the current answer still to skip (or collect).
    private var bodyLeft = 0
    /// The answer whose body is being read (non-200 ones are reported after their body).
    private var current: Answer?
    private var failure: WireError?

    public init(maxLineBytes: Int = 4096, maxErrorBodyBytes: Int = 4096) {
        self.maxLineBytes = maxLineBytes
        self.maxErrorBodyBytes = maxErrorBodyBytes
    }

    /// Scans `bytes` (any chunking) and calls `onAnswer` for each answer completed by them.
    public mutating func scan(_ bytes: UnsafeRawBufferPointer, _ onAnswer: (Answer) throws -> Void) throws {
        if let failure { throw failure }
        var position = 0
        let count = bytes.count
        while position < count {
            if bodyLeft > 0 {
                let take = min(bodyLeft, count - position)
                if var answer = current, answer.code != StatusCode.success {
                    let room = max(0, maxErrorBodyBytes - answer.errorBody.count)
                    answer.errorBody.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[position..<position + min(take, room)]))
                    current = answer
                }
                position += take
                bodyLeft -= take
                if bodyLeft == 0, let answer = current {
                    current = nil
                    try onAnswer(answer)
                }
                continue
            }
            // A header line: find its LF.
            var end = position
            while end < count && bytes[end] != 0x0A { end += 1 }
            if end == count {
                carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[position..<count]))
                if carry.count > maxLineBytes {
                    return try fail(WireError(.lineTooLong, "no line end within \(maxLineBytes) bytes"))
                }
                return
            }
            let header: (code: Int32, length: Int, opaque: Int32)
            if carry.isEmpty {
                header = try parse(UnsafeRawBufferPointer(rebasing: bytes[position..<end]))
            } else {
                carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[position..<end]))
                let line = carry
                carry.removeAll(keepingCapacity: true)
                header = try line.withUnsafeBytes { try parse($0) }
            }
            position = end + 1
            let answer = Answer(code: header.code, opaque: header.opaque, errorBody: [])
            if header.length == 0 {
                try onAnswer(answer)
            } else {
                current = answer
                bodyLeft = header.length
            }
        }
    }

    /// Parses `result <code> <length> <opaque>` followed by CR (the LF is not included).
    private mutating func parse(_ line: UnsafeRawBufferPointer) throws -> (code: Int32, length: Int, opaque: Int32) {
        let prefix: StaticString = "result "
        var i = 0
        guard line.count > prefix.utf8CodeUnitCount, line.last == 0x0D else { return try fail(bad(line)) }
        while i < prefix.utf8CodeUnitCount {
            guard line[i] == prefix.utf8Start[i] else { return try fail(bad(line)) }
            i += 1
        }
        let end = line.count - 1
        var numbers: (Int64, Int64, Int64) = (0, 0, 0)
        for k in 0..<3 {
            var negative = false
            if i < end, line[i] == UInt8(ascii: "-") {
                negative = true
                i += 1
            }
            let start = i
            var value: Int64 = 0
            while i < end, line[i] >= 0x30, line[i] <= 0x39, i - start < 10 {
                value = value * 10 + Int64(line[i] - 0x30)
                i += 1
            }
            guard i > start, i == end || line[i] == 0x20 else { return try fail(bad(line)) }
            if k < 2 {
                guard i < end else { return try fail(bad(line)) }
                i += 1
            }
            value = negative ? -value : value
            switch k {
            case 0: numbers.0 = value
            case 1: numbers.1 = value
            default: numbers.2 = value
            }
        }
        guard i == end, numbers.1 >= 0, let code = Int32(exactly: numbers.0), let opaque = Int32(exactly: numbers.2) else {
            return try fail(bad(line))
        }
        return (code, Int(numbers.1), opaque)
    }

    private func bad(_ line: UnsafeRawBufferPointer) -> WireError {
        let shown = String(decoding: line.prefix(64), as: UTF8.self)
        return WireError(.malformedLine, "expected a result line, got: \(shown)")
    }

    private mutating func fail<T>(_ error: WireError) throws -> T {
        failure = error
        throw error
    }
}
