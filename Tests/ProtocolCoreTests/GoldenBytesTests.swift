import Testing
@testable import ProtocolCore

/// The worked examples of reference §1.6, verified byte-for-byte against a live MetaQ 1.4.6 broker.
@Suite("Golden bytes (reference §1.6)")
struct GoldenBytesTests {
    static let helloRecord = hex("00000005 3610a686 b41a72dc6bc00000 00000000 68656c6c6f")
    static let helloRecord2 = hex("00000005 3610a686 b41a72dc6cc00000 00000000 68656c6c6f")

    @Test func putWithoutAttribute() throws {
        let put = PutCommand(topic: "test", partition: 0, flag: 0, checksum: CRC32.metaqChecksum(bytes("hello")),
                             body: bytes("hello"), opaque: 2)
        let expected = hex("70 75 74 20 74 65 73 74 20 30 20 35 20 30 20 39 30 37 30 36 30 38 37 30 20 32 0d 0a 68 65 6c 6c 6f")
        #expect(Frame.put(put).encoded() == expected)
        #expect(try decodeAll(expected) == [.put(put)])
        #expect(CRC32.checksum(bytes("hello")) == 0x3610_A686)
    }

    @Test func putResponse() throws {
        let wire = bytes("result 200 24 2\r\n-5468932506461929472 0 0")
        let response = ResultResponse(code: 200, text: "-5468932506461929472 0 0", opaque: 2)
        #expect(Frame.result(response).encoded() == wire)
        #expect(try decodeAll(wire) == [.result(response)])
    }

    @Test func putWithAttribute() throws {
        let (flag, payload) = MessagePayload.encode(attribute: "myattr", data: bytes("world"))
        #expect(flag == 1)
        #expect(payload == hex("00 00 00 06 6d 79 61 74 74 72 77 6f 72 6c 64"))
        let put = PutCommand(topic: "test", partition: 1, flag: flag, checksum: CRC32.metaqChecksum(payload),
                             body: payload, opaque: 5)
        let expected = bytes("put test 1 15 1 1751672651 5\r\n") + payload
        #expect(Frame.put(put).encoded() == expected)
        #expect(try decodeAll(expected) == [.put(put)])
        #expect(try decodeAll(bytes("result 200 24 5\r\n-5468932506403209216 1 0"))
                == [.result(ResultResponse(code: 200, text: "-5468932506403209216 1 0", opaque: 5))])
    }

    @Test func getAndValue() throws {
        let get = GetCommand(topic: "test", group: "group1", partition: 0, offset: 0, maxSize: 1024, opaque: 9)
        #expect(Frame.get(get).encoded() == bytes("get test group1 0 0 1024 9\r\n"))
        #expect(try decodeAll(bytes("get test group1 0 0 1024 9\r\n")) == [.get(get)])
        let body = Self.helloRecord + Self.helloRecord2
        let wire = bytes("value 50 9\r\n") + body
        #expect(Frame.value(ValueResponse(body: body, opaque: 9)).encoded() == wire)
        #expect(try decodeAll(wire) == [.value(ValueResponse(body: body, opaque: 9))])
    }

    @Test func recordsEncodeExactly() {
        #expect(Record.encode(msgId: -5_468_932_506_461_929_472, flag: 0, payload: bytes("hello")) == Self.helloRecord)
        let (flag, payload) = MessagePayload.encode(attribute: "myattr", data: bytes("world"))
        #expect(Record.encode(msgId: Int64(bitPattern: 0xB41A_72DC_6F40_0000), flag: flag, payload: payload)
                == hex("0000000f 6868674b b41a72dc6f400000 00000001 00000006 6d7961747472 776f726c64"))
    }

    @Test func getResponseRecordsIterate() {
        let body = Self.helloRecord + Self.helloRecord2
        let messages = RecordIterator(body, baseOffset: 0).compactMap { element -> Message? in
            if case .message(let m) = element { return m } else { return nil }
        }
        #expect(messages.map(\.offset) == [0, 25])
        #expect(messages.map(\.id) == [-5_468_932_506_461_929_472, Int64(bitPattern: 0xB41A_72DC_6CC0_0000)])
        #expect(messages.allSatisfy { $0.data == bytes("hello") && $0.attribute == nil })
    }

    /// `get test group1 0 0 10 10` returned 10 bytes of a 25-byte record (§1.4.2): a cut record.
    @Test func cutRecordIsLeftForLater() {
        var iterator = RecordIterator(Array(Self.helloRecord.prefix(10)), baseOffset: 0)
        #expect(iterator.next() == .incomplete(offset: 0))
        #expect(iterator.next() == nil)
        #expect(iterator.consumedBytes == 0)
    }

    @Test func otherObservedResponses() throws {
        let cases: [(String, ResultResponse)] = [
            ("result 200 16 1\r\n1.4.6.3-SNAPSHOT", ResultResponse(code: 200, text: "1.4.6.3-SNAPSHOT", opaque: 1)),
            ("result 400 30 13\r\nBad request,invalid max size:0",
             ResultResponse(code: 400, text: "Bad request,invalid max size:0", opaque: 13)),
            ("result 404 47 12\r\nThe topic `test` in partition `7` is not exists",
             ResultResponse(code: 404, text: "The topic `test` in partition `7` is not exists", opaque: 12)),
        ]
        for (wire, response) in cases {
            #expect(Frame.result(response).encoded() == bytes(wire))
            #expect(try decodeAll(bytes(wire)) == [.result(response)])
        }
        #expect(try decodeAll(bytes("version 1\r\n")) == [.version(VersionCommand(opaque: 1))])
        #expect(try decodeAll(bytes("get test group1 0 0 0 13\r\n"))
                == [.get(GetCommand(topic: "test", group: "group1", partition: 0, offset: 0, maxSize: 0, opaque: 13))])
    }

    @Test func statsResponseExample() throws {
        let body = "STATS\r\npid 19721\r\nbroker_id 0\r\nport 8123\r\nEND\r\n"
        let wire = bytes("result 200 \(body.utf8.count) 7\r\n\(body)")
        #expect(try decodeAll(wire) == [.result(ResultResponse(code: 200, text: body, opaque: 7))])
    }
}
