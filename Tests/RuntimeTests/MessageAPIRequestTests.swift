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
