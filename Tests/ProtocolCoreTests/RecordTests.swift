import Sim
import Testing
@testable import ProtocolCore

@Suite("Records and CRC32 (reference §1.5)")
struct RecordTests {
    @Test func crc32KnownValues() {
        #expect(CRC32.checksum(bytes("")) == 0)
        #expect(CRC32.checksum(bytes("123456789")) == 0xCBF4_3926)
        #expect(CRC32.checksum(bytes("The quick brown fox jumps over the lazy dog")) == 0x414F_A339)
    }

    /// Slicing-by-8 must agree with the plain bitwise definition at every length and alignment.
    @Test func crc32MatchesBitwiseReference() {
        var rng = SimRandom(seed: 11)
        for _ in 0..<200 {
            let data = rng.bytes(rng.int(in: 0..<100))
            var c: UInt32 = 0xFFFF_FFFF
            for byte in data {
                c ^= UInt32(byte)
                for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
            }
            #expect(CRC32.checksum(data) == ~c)
            let split = data.isEmpty ? 0 : rng.int(in: 0..<data.count)
            let first = CRC32.checksum(Array(data[..<split]))
            let whole = data[split...].withUnsafeBytes { CRC32.checksum($0, continuing: first) }
            #expect(whole == ~c)
        }
    }

    @Test func checksumMismatchIsReportedWithItsOffset() {
        var data = Record.encode(msgId: 1, flag: 0, payload: bytes("aaaa")) + Record.encode(msgId: 2, flag: 0, payload: bytes("bbbb"))
        data[24 + 20] ^= 0xFF
        let elements = Array(RecordIterator(data, baseOffset: 1000))
        #expect(elements.count == 2)
        guard case .damaged(let offset, .checksumMismatch) = elements[1] else {
            Issue.record("expected a checksum mismatch, got \(elements)")
            return
        }
        #expect(offset == 1024)
    }

    @Test func damageKinds() {
        let negative = [0xFF, 0xFF, 0xFF, 0xFF] + [UInt8](repeating: 0, count: 16)
        #expect(negative.withUnsafeBytes { Record.parse($0, at: 0) } == .damaged(.negativeLength(-1)))
        let zeros = [UInt8](repeating: 0, count: 40)
        #expect(zeros.withUnsafeBytes { Record.parse($0, at: 0) } == .damaged(.zeroFill))
        let big = Record.encode(msgId: 1, flag: 0, payload: [UInt8](repeating: 1, count: 100))
        #expect(big.withUnsafeBytes { Record.parse($0, at: 0, maxPayloadBytes: 99) } == .damaged(.lengthTooLarge(100)))
        // A checksummed record with an impossible attribute length: reported, and the walk goes on.
        let badAttribute = Record.encode(msgId: 1, flag: 1, payload: [0, 0, 0, 9, 1])
            + Record.encode(msgId: 2, flag: 0, payload: [7])
        var walk = RecordIterator(badAttribute, baseOffset: 0)
        #expect(walk.next() == .damaged(offset: 0, .badAttributeHeader))
        #expect(walk.next() == .message(Message(id: 2, flag: 0, attribute: nil, data: [7], offset: 25)))
        #expect(walk.consumedBytes == 46)
        // An empty payload with a real id is a valid record, not zero fill.
        let empty = Record.encode(msgId: 5, flag: 0, payload: [UInt8]())
        #expect(empty.withUnsafeBytes { Record.parse($0, at: 0) } == .record(RecordHeader(length: 0, checksum: 0, msgId: 5, flag: 0), payloadStart: 20))
    }

    @Test func attributesRoundTrip() {
        var rng = SimRandom(seed: 3)
        var stream: [UInt8] = []
        var expected: [Message] = []
        for i in 0..<100 {
            let attribute: String? = rng.chance(0.5) ? "attr-\(i)-é" : nil
            let data = rng.bytes(rng.int(in: 0..<64))
            let (flag, payload) = MessagePayload.encode(attribute: attribute, data: data, flag: Int32(rng.int(in: 0..<8)) << 1)
            expected.append(Message(id: Int64(i), flag: flag, attribute: attribute, data: data, offset: Int64(stream.count)))
            Record.append(to: &stream, msgId: Int64(i), flag: flag, payload: payload)
        }
        var iterator = RecordIterator(stream, baseOffset: 0)
        var got: [Message] = []
        while case .message(let m)? = iterator.next() { got.append(m) }
        #expect(got == expected)
        #expect(iterator.consumedBytes == stream.count)
    }
}
