import Foundation
import ProtocolCore
import Runtime
import Testing
import ProcessHarness

/// MetaQ's HTTP message API (reference §7.1) on a real broker in local mode: every row of §7.1's
/// table answered byte for byte as the TCP protocol answers the same request, messages crossing
/// between the two, and bad requests answered `400 Invalid request`.
@Suite("HTTP message API (§7.1)", .serialized)
struct HTTPMessageAPITests {
    static func config(httpPort: Int) -> String {
        """
        [system]
        brokerId=3
        numPartitions=2
        unflushThreshold=0
        [zookeeper]
        zk.zkEnable=false
        [http]
        enableHttp=true
        serverPort=\(httpPort)
        [topic=test]
        """
    }

    func withBroker(_ body: (BrokerProcess, Int) throws -> Void) throws {
        let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-http")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let httpPort = try LocalProcess.freePort()
        let broker = try BrokerProcess(directory: directory, config: Self.config(httpPort: httpPort))
        defer { broker.stopHard() }
        try broker.start()
        try LocalProcess.waitUntilAccepting(port: httpPort, what: "the HTTP message API")
        try body(broker, httpPort)
    }

    /// The TCP answer to `frame` (opaque 0, as the HTTP API sends) as (status, body).
    func tcp(_ frame: Frame, port: Int) throws -> (Int, [UInt8]) {
        let connection = try WireConnection(host: "127.0.0.1", port: port)
        switch try connection.request(frame) {
        case .result(let r): return (Int(r.code), r.body)
        case .value(let v): return (200, v.body)
        default: throw HarnessError("unexpected answer")
        }
    }

    @Test func putOverHTTPIsReadOverTCPAndTheOtherWay() throws {
        try withBroker { broker, httpPort in
            let http = try HTTPTestClient(port: httpPort)
            let payload = Array("over http".utf8)
            let put = try http.exchange("POST", "/put/3?topic=test&partition=0&flag=0&length=\(payload.count)", body: payload)
            #expect(put.status == 200)
            #expect(put.headers["content-type"] == "text/plain")
            let parts = put.text.split(separator: " ")
            #expect(parts.count == 3 && parts[1] == "0" && parts[2] == "0", "\(put.text)")
            let msgId = try #require(Int64(parts[0]))
            // Read back over TCP: the record the HTTP put stored.
            let (code, record) = try tcp(.get(GetCommand(topic: "test", group: "g", partition: 0, offset: 0, maxSize: 1024,
                                                         opaque: 0)), port: broker.port)
            #expect(code == 200)
            #expect(record == Record.encode(msgId: msgId, flag: 0, payload: payload))

            // A TCP put, read over HTTP: the raw record bytes, as the TCP value body.
            let (putCode, putBody) = try tcp(.put(PutCommand(topic: "test", partition: 1, flag: 0, checksum: nil,
                                                             transactionKey: nil, body: Array("over tcp".utf8), opaque: 0)),
                                             port: broker.port)
            #expect(putCode == 200)
            let tcpMsgId = try #require(Int64(String(decoding: putBody, as: UTF8.self).split(separator: " ")[0]))
            let get = try http.exchange("GET", "/get/3?topic=test&partition=1&group=g&offset=0&maxsize=1024")
            #expect(get.status == 200)
            #expect(get.headers["content-type"] == "application/octet-stream")
            #expect(get.body == Record.encode(msgId: tcpMsgId, flag: 0, payload: Array("over tcp".utf8)))
        }
    }

    /// Every row of §7.1's table, success and error answers alike, against TCP.
    @Test func everyRowMatchesTheTCPAnswerByteForByte() throws {
        try withBroker { broker, httpPort in
            let http = try HTTPTestClient(port: httpPort)
            let body = Array("abc".utf8)
            let checksum = CRC32.metaqChecksum(body)
            // Seed partition 0 with a message so gets and offsets have something to answer.
            #expect(try http.exchange("POST", "/put?topic=test&partition=0&flag=0&length=3&checksum=\(checksum)", body: body).status == 200)
            let sealedEnd = Int64(Record.encode(msgId: 0, flag: 0, payload: body).count)

            // (HTTP target, method, body) and the TCP frame the original's processor builds from it.
            let rows: [(method: String, target: String, body: [UInt8], frame: Frame)] = [
                ("GET", "/get?topic=test&partition=0&group=g&offset=0&maxsize=1024", [],
                 .get(GetCommand(topic: "test", group: "g", partition: 0, offset: 0, maxSize: 1024, opaque: 0))),
                ("GET", "/get?topic=test&partition=0&group=g&offset=\(sealedEnd)&maxsize=1024", [],
                 .get(GetCommand(topic: "test", group: "g", partition: 0, offset: sealedEnd, maxSize: 1024, opaque: 0))),
                ("GET", "/get?topic=test&partition=0&group=g&offset=999999&maxsize=1024", [],
                 .get(GetCommand(topic: "test", group: "g", partition: 0, offset: 999_999, maxSize: 1024, opaque: 0))),
                ("GET", "/get?topic=nosuch&partition=0&group=g&offset=0&maxsize=1024", [],
                 .get(GetCommand(topic: "nosuch", group: "g", partition: 0, offset: 0, maxSize: 1024, opaque: 0))),
                ("GET", "/get?topic=test&partition=0&group=g&offset=0&maxsize=0", [],
                 .get(GetCommand(topic: "test", group: "g", partition: 0, offset: 0, maxSize: 0, opaque: 0))),
                ("GET", "/offset?topic=test&partition=0&group=g&offset=1", [],
                 .offset(OffsetCommand(topic: "test", group: "g", partition: 0, offset: 1, opaque: 0))),
                ("GET", "/offset?topic=test&partition=7&group=g&offset=0", [],
                 .offset(OffsetCommand(topic: "test", group: "g", partition: 7, offset: 0, opaque: 0))),
                ("POST", "/put?topic=test&partition=9&flag=0&length=3", body,
                 .put(PutCommand(topic: "test", partition: 9, flag: 0, checksum: nil, transactionKey: nil, body: body, opaque: 0))),
                ("POST", "/put?topic=unknown&partition=0&flag=0&length=3", body,
                 .put(PutCommand(topic: "unknown", partition: 0, flag: 0, checksum: nil, transactionKey: nil, body: body, opaque: 0))),
                ("POST", "/put?topic=test&partition=0&flag=0&length=3&checksum=12345", body,
                 .put(PutCommand(topic: "test", partition: 0, flag: 0, checksum: 12345, transactionKey: nil, body: body, opaque: 0))),
                ("POST", "/put?topic=bad@name&partition=0&flag=0&length=3", body,
                 .put(PutCommand(topic: "bad@name", partition: 0, flag: 0, checksum: nil, transactionKey: nil, body: body, opaque: 0))),
            ]
            for row in rows {
                let answer = try http.exchange(row.method, row.target, body: row.body)
                let (code, expected) = try tcp(row.frame, port: broker.port)
                #expect(answer.status == code, "\(row.target): HTTP \(answer.status) vs TCP \(code)")
                #expect(answer.body == expected, "\(row.target): \(answer.text) vs \(String(decoding: expected, as: UTF8.self))")
            }
            // The two successful puts of the rows and the seed: three stored, the rest refused.
            let (_, stats) = try tcp(.stats(StatsCommand(item: "offsets", opaque: 0)), port: broker.port)
            #expect(String(decoding: stats, as: UTF8.self).contains("test part 0 min_offset 0 max_offset \(sealedEnd)"))
        }
    }

    @Test func badRequestsAreAnswered400AndTheConnectionServesOn() throws {
        try withBroker { _, httpPort in
            let http = try HTTPTestClient(port: httpPort)
            let bad: [(String, String, [UInt8])] = [
                ("GET", "/", []),
                ("GET", "/x/y", []),
                ("GET", "/get?topic=test&partition=0&group=g&offset=0", []),                // no maxsize
                ("GET", "/get?topic=test&partition=zero&group=g&offset=0&maxsize=10", []),  // not a number
                ("GET", "/offset?topic=test&partition=0&group=g%20x&offset=0", []),         // a space in a name
                ("GET", "/offset?topic=te%0D%0Ast&partition=0&group=g&offset=0", []),       // CR LF in a name
                ("GET", "/offset?topic=test&partition=99999999999&group=g&offset=0", []),   // beyond Int32
                ("POST", "/put?topic=test&partition=0&flag=0&length=5", Array("abc".utf8)), // length ≠ body
                ("POST", "/put?topic=test&partition=0&flag=0&length=-1", []),
                ("POST", "/put?topic=test&partition=0&flag=0&length=3&checksum=x", Array("abc".utf8)),
            ]
            for (method, target, body) in bad {
                let answer = try http.exchange(method, target, body: body)
                #expect(answer.status == 400, "\(target)")
                #expect(answer.text == "Invalid request", "\(target)")
            }
            // Still served after all of them, on the same connection.
            let put = try http.exchange("POST", "/put?topic=test&partition=0&flag=0&length=2", body: Array("ok".utf8))
            #expect(put.status == 200)
            #expect(put.text.hasSuffix(" 0 0"))
        }
    }

    /// curl asks for `100 Continue` before a body over 1 MiB and waits a second for it otherwise.
    @Test func expectContinueIsAnsweredBeforeTheBody() throws {
        try withBroker { _, httpPort in
            let http = try HTTPTestClient(port: httpPort)
            let body = [UInt8](repeating: 0x42, count: 4096)
            let request = HTTPTestClient.request("POST", "/put?topic=test&partition=0&flag=0&length=\(body.count)", body: body,
                                                 headers: ["Expect: 100-continue"])
            try http.send(Array(request.dropLast(body.count)))
            #expect(try http.response().status == 100)
            try http.send(body)
            let put = try http.response()
            #expect(put.status == 200 && put.text.hasSuffix(" 0 0"), "\(put.text)")
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        try withBroker { _, httpPort in
            let http = try HTTPTestClient(port: httpPort)
            var bytes: [UInt8] = []
            for i in 0..<20 {
                let body = Array("m\(i)".utf8)
                bytes += HTTPTestClient.request("POST", "/put?topic=test&partition=1&flag=0&length=\(body.count)", body: body)
                bytes += HTTPTestClient.request("GET", "/offset?topic=test&partition=1&group=g&offset=0")
            }
            try http.send(bytes)
            var previousOffset: Int64 = -1
            for _ in 0..<20 {
                let put = try http.response()
                #expect(put.status == 200)
                let offset = try #require(Int64(put.text.split(separator: " ")[2]))
                #expect(offset > previousOffset)
                previousOffset = offset
                let offsetAnswer = try http.response()
                #expect(offsetAnswer.status == 200 && offsetAnswer.text == "0")
            }
            // `Connection: close` is honoured after the answer.
            let last = try http.exchange("GET", "/offset?topic=test&partition=1&group=g&offset=0", headers: ["Connection: close"])
            #expect(last.status == 200 && last.headers["connection"] == "close")
            #expect(http.waitForClose())
        }
    }
}
