import ProtocolCore
import Testing
@testable import Runtime

/// The HTTP message API's translation of requests into wire commands (reference §7.1), and the
/// query parser both HTTP servers share.
@Suite("HTTP message API requests")
struct MessageAPIRequestTests {
    func parse(_ target: String, contentLength: Int? = nil) -> MessageAPIRequest.Parsed? {
        MessageAPIRequest.parse(HTTPQuery(target: target), contentLength: contentLength, maxBodyBytes: 1024)
    }

    @Test func queriesDecodeEscapesPlusAndKeepTheFirstValue() {
        let query = HTTPQuery(target: "/topics/a%2Fb?x=1+2&y=%41%zz&x=3&=skip&flag")
        #expect(query.path == "/topics/a/b")
        #expect(query["x"] == "1 2")
        #expect(query["y"] == "A%zz")
        #expect(query["flag"] == "")
        #expect(query.parameters.count == 3)
        #expect(query.segments == ["topics", "a", "b"])
        #expect(HTTPQuery(target: "/p%").path == "/p%")
        #expect(HTTPQuery(target: "/%FF").path == "/\u{FFFD}")
    }

    @Test func dispatchIsOnTheCharacterAfterTheSlash() {
        let put = parse("/pxyz/0?topic=t&partition=-1&flag=3&length=2&checksum=%2B7", contentLength: 2)
        #expect(put == .put(line: Array("put t -1 2 3 7 0\r\n".utf8), length: 2))
        #expect(parse("/get?topic=t&partition=1&group=g&offset=5&maxsize=9")
                == .command(Array("get t g 1 5 9 0\r\n".utf8)))
        #expect(parse("/o?topic=t&partition=1&group=g&offset=5") == .command(Array("offset t g 1 5 0\r\n".utf8)))
        #expect(parse("/") == nil)
        #expect(parse("") == nil)
        #expect(parse("/stats?item=x") == nil)
    }

    @Test func putsNeedAContentLengthEqualToLengthWithinTheBound() {
        let target = "/put?topic=t&partition=0&flag=0&length=4"
        #expect(parse(target, contentLength: 4) != nil)
        #expect(parse(target, contentLength: nil) == nil)
        #expect(parse(target, contentLength: 3) == nil)
        #expect(parse("/put?topic=t&partition=0&flag=0&length=2000", contentLength: 2000) == nil)
        #expect(parse("/put?topic=t&partition=0&flag=0&length=4&checksum=", contentLength: 4)
                == .put(line: Array("put t 0 4 0 0\r\n".utf8), length: 4))
    }

    @Test func whatTheWireCannotCarryIsRefused() {
        #expect(MessageAPIRequest.token("a b") == nil)
        #expect(MessageAPIRequest.token("a\u{7F}") == nil)
        #expect(MessageAPIRequest.token("") == nil)
        #expect(MessageAPIRequest.token(String(repeating: "a", count: 1025)) == nil)
        #expect(MessageAPIRequest.token("bad@name") == "bad@name")   // the broker answers it, as over TCP
        #expect(MessageAPIRequest.int32("2147483648") == nil)
        #expect(MessageAPIRequest.int32("-2147483648") == Int32.min)
        #expect(MessageAPIRequest.int64("1e3") == nil)
        #expect(MessageAPIRequest.int64("-") == nil)
        #expect(MessageAPIRequest.int64("99999999999999999999") == nil)
    }
}

extension MessageAPIRequestTests {
    /// Hostile targets: whatever the parameters hold, a request the API accepts is exactly one
    /// frame to the broker's decoder — never a framing error (which would close the connection
    /// without an answer) and never a second command smuggled into the line.
    @Test func everyAcceptedRequestIsExactlyOneWellFormedFrame() throws {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        let plain = ["t", "test", "g", "0", "-1", "7", "12", "%2B3"]
        let hostile = ["%20", "%0D%0A", "%00", "+", "-", "99999999999", "%FF", "a%40b", "", "x y", "%", "\u{7F}",
                       "2147483648", "put t 0 1 0 1", "1%0D%0Aquit"]
        let keys = ["topic", "partition", "group", "offset", "maxsize", "flag", "length", "checksum"]
        var accepted = 0
        for _ in 0..<20_000 {
            let command = ["/put", "/get", "/offset", "/p", "/g/1", "/o"][next(6)]
            let query = keys.filter { _ in next(10) < 9 }.map { key in
                key + "=" + (next(10) < 8 ? plain[next(plain.count)] : hostile[next(hostile.count)])
            }
            let target = command + "?" + query.joined(separator: "&")
            let contentLength = next(3) == 0 ? nil : next(12)
            guard let parsed = parse(target, contentLength: contentLength) else { continue }
            accepted += 1
            var decoder = FrameDecoder()
            switch parsed {
            case .command(let bytes):
                decoder.feed(bytes)
                let frame = try #require(try decoder.next(), "\(target)")
                switch frame {
                case .get, .offset: break
                default: Issue.record("\(target) became \(frame)")
                }
            case .put(let line, let length):
                #expect(length == contentLength)
                decoder.feed(line + [UInt8](repeating: 0x61, count: length))
                guard case .put(let put)? = try decoder.next() else { Issue.record("\(target): no put"); continue }
                #expect(put.body.count == length)
            }
            #expect(try decoder.next() == nil, "\(target): more than one frame")
        }
        #expect(accepted > 100, "the generator must reach accepted requests")
    }
}
