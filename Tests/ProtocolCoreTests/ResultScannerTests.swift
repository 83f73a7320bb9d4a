import Testing
@testable import ProtocolCore

/// `ResultScanner` reads pipelined `result` answers (reference §1.2) the way `FrameDecoder` does,
/// without building frames: the same answers for any chunking, error texts kept, garbage refused.
@Suite("Result scanner (reference §1.2)")
struct ResultScannerTests {
    /// Answers as `FrameDecoder` sees them, reduced to what the scanner reports.
    static func reference(_ stream: [UInt8]) throws -> [ResultScanner.Answer] {
        try decodeAll(stream).map { frame in
            guard case .result(let r) = frame else { throw WireError(.malformedLine, "not a result") }
            return .init(code: r.code, opaque: r.opaque, errorBody: r.code == StatusCode.success ? [] : r.body)
        }
    }

    static func scan(_ stream: [UInt8], chunk: Int, scanner: inout ResultScanner) throws -> [ResultScanner.Answer] {
        var answers: [ResultScanner.Answer] = []
        var start = 0
        while start < stream.count {
            let end = min(stream.count, start + chunk)
            try stream[start..<end].withUnsafeBytes { try scanner.scan($0) { answers.append($0) } }
            start = end
        }
        return answers
    }

    static let stream: [UInt8] = {
        var out: [UInt8] = []
        for i in 0..<40 {
            let code: Int32 = i % 7 == 3 ? 500 : 200
            let body = code == 200 ? bytes("\(1000 + i) 0 \(i * 120)") : bytes("Invalid topic: t\(i)")
            Frame.result(ResultResponse(code: code, body: body, opaque: Int32(i) - 20)).encode(into: &out)
        }
        // An empty body and the extreme opaques.
        Frame.result(ResultResponse(code: 200, body: [], opaque: .max)).encode(into: &out)
        Frame.result(ResultResponse(code: 403, body: bytes("closed"), opaque: .min)).encode(into: &out)
        return out
    }()

    @Test(arguments: [1, 2, 3, 7, 19, 64, 4096])
    func sameAnswersAsTheFrameDecoderForAnyChunking(chunk: Int) throws {
        var scanner = ResultScanner()
        let answers = try Self.scan(Self.stream, chunk: chunk, scanner: &scanner)
        #expect(answers.count == 42)
        #expect(answers == (try Self.reference(Self.stream)))
        #expect(answers.filter { $0.code == 500 }.first?.errorBody == bytes("Invalid topic: t3"))
    }

    @Test func errorTextsAreCutAtTheLimit() throws {
        var out: [UInt8] = []
        Frame.result(ResultResponse(code: 500, body: [UInt8](repeating: 0x41, count: 100), opaque: 1)).encode(into: &out)
        Frame.result(ResultResponse(code: 200, body: bytes("1 0 0"), opaque: 2)).encode(into: &out)
        var scanner = ResultScanner(maxErrorBodyBytes: 10)
        let answers = try Self.scan(out, chunk: 33, scanner: &scanner)
        #expect(answers.map(\.opaque) == [1, 2])
        #expect(answers[0].errorBody == [UInt8](repeating: 0x41, count: 10))
    }

    @Test(arguments: ["value 3 1\r\nabc", "result 200 x 1\r\n", "result 200 3\r\nabc", "result 200 -1 1\r\n",
                      "result 200 0 1 2\r\n", "result 200 0 1\n", "result  200 0 1\r\n", "result 200 0 99999999999\r\n"])
    func anythingButAResultLineIsAnError(text: String) throws {
        var scanner = ResultScanner()
        #expect(throws: WireError.self) { _ = try Self.scan(bytes(text), chunk: 4096, scanner: &scanner) }
        // The stream cannot be re-framed: later bytes fail too.
        #expect(throws: WireError.self) { _ = try Self.scan(bytes("result 200 0 1\r\n"), chunk: 4096, scanner: &scanner) }
    }

    @Test func aLineWithoutEndIsBounded() throws {
        var scanner = ResultScanner(maxLineBytes: 64)
        #expect(throws: WireError.self) {
            _ = try Self.scan([UInt8](repeating: 0x72, count: 100), chunk: 10, scanner: &scanner)
        }
    }
}
