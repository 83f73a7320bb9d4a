import Sim
import Testing
@testable import ProtocolCore

/// The redo log entry codec (reference §4.3): protobuf by hand, bit-exact with the original's
/// `TransactionCommands.proto`, and safe on hostile bytes.
@Suite("Transaction journal codec (reference §4.3)")
struct TxJournalCodecTests {
    static let put = bytes("put test 0 5 0 907060870 TX:s:1 2\r\nhello")
    /// A put in a transaction, as the broker logs it (§4.3: the put's full wire encoding).
    static func putFrame(_ body: [UInt8], checksum: Int32 = -1) -> [UInt8] {
        Frame.put(PutCommand(topic: "t", partition: 0, flag: 0, checksum: checksum, transactionKey: "TX:a:1", body: body, opaque: 1)).encoded()
    }
    static let location0 = TxPartitionLocation(offset: 50, length: 50, checksum: 0x1234_5678, topic: "test", partition: 0)
    static let location1 = TxPartitionLocation(offset: 60, length: 25, checksum: 7, topic: "test", partition: 1)

    static let samples: [(TxJournalEntry, Bool)] = [
        (.appendMessage(messageId: -5_468_932_506_461_929_472, putCommand: put), false),
        (.appendMessage(messageId: 0, putCommand: putFrame([])), false),
        (.appendMessage(messageId: 7, putCommand: putFrame(bytes("hello"), checksum: 907_060_870)), false),
        (.operation(type: .xaPrepare, wasPrepared: false, transactionId: "XID:1:0a0b:0c:XAMessageProducer-host", locations: []), true),
        (.operation(type: .xaCommit, wasPrepared: true, transactionId: "XID:1:0a0b:0c:q", locations: [location1]), false),
        (.operation(type: .xaRollback, wasPrepared: false, transactionId: "XID:1:0a:0b:q", locations: []), false),
        (.operation(type: .localCommit, wasPrepared: false, transactionId: "TX:10.0.0.1-1700000000000-1:7", locations: [location0, location1]), false),
        (.operation(type: .localCommit, wasPrepared: false, transactionId: "TX:s:2", locations: []), false),
        (.operation(type: .localRollback, wasPrepared: false, transactionId: "TX:s:3 é", locations: []), true),
    ]

    @Test func everyEntryKindRoundTrips() {
        for (entry, force) in Self.samples {
            let encoded = TxJournalCodec.encode(entry, force: force)
            #expect(TxJournalCodec.decode(encoded) == .entry(entry, force: force, size: encoded.count), "\(entry)")
            // Followed by more bytes, the entry still ends where it ends.
            let followed = encoded + TxJournalCodec.encode(Self.samples[0].0, force: false)
            #expect(TxJournalCodec.decode(followed, endOfInput: false) == .entry(entry, force: force, size: encoded.count))
        }
    }

    /// The LOCAL_COMMIT of the verified `redo.1` (§4.3: attachment offset=50 len=50 desc `test-0`),
    /// derived by hand from the protobuf rules:
    /// TransactionOperation = 08 04 (type=LOCAL_COMMIT) 10 00 (was_prepared=false)
    ///   1a 06 "TX:s:1" (transaction_id) 20 1a (data_length=26) → 14 bytes;
    /// TxCommand = 08 02 (cmdType=TX_OP) 12 0e <14 bytes> (cmd_content), force unset → 18 bytes;
    /// entry = 00000012 (L=18) | TxCommand | attachment (int64 50, int32 50, int32 checksum,
    /// int32 6, "test-0") = 26 bytes.
    @Test func goldenLocalCommit() {
        let expected = hex("""
            00000012 0802 120e 0804 1000 1a06 54583a733a31 201a
            0000000000000032 00000032 12345678 00000006 746573742d30
            """)
        let entry = TxJournalEntry.operation(type: .localCommit, wasPrepared: false, transactionId: "TX:s:1", locations: [Self.location0])
        #expect(TxJournalCodec.encode(entry, force: false) == expected)
        #expect(TxJournalCodec.decode(expected) == .entry(entry, force: false, size: 48))
    }

    /// The original's writer never sets `data_length` on commits (JournalTransactionStore builds the
    /// commit without it) but still writes the attachment after the protobuf. Such an entry reads
    /// with its attachment found by parsing, up to the next entry or the end.
    @Test func goldenCommitAsTheOriginalWritesIt() {
        // TransactionOperation 08 02 10 01 1a 05 "XID:x" (XA_COMMIT, was_prepared=true) = 11 bytes;
        // TxCommand 08 02 12 0b <11> = 15 bytes; then the attachment of `test-1` (26 bytes).
        let original = hex("0000000f 0802 120b 0802 1001 1a05 5849443a78 000000000000003c 00000019 00000007 00000006 746573742d31")
        let entry = TxJournalEntry.operation(type: .xaCommit, wasPrepared: true, transactionId: "XID:x", locations: [Self.location1])
        #expect(TxJournalCodec.decode(original) == .entry(entry, force: false, size: original.count))
        let next = TxJournalCodec.encode(Self.samples[0].0, force: false)
        #expect(TxJournalCodec.decode(original + next, endOfInput: false) == .entry(entry, force: false, size: original.count))
        // Two elements, then the end.
        let two = original + TxJournalCodec.encodeAttachment([Self.location0])
        let both = TxJournalEntry.operation(type: .xaCommit, wasPrepared: true, transactionId: "XID:x", locations: [Self.location1, Self.location0])
        #expect(TxJournalCodec.decode(two) == .entry(both, force: false, size: two.count))
        // Cut inside its only element: a torn tail.
        #expect(TxJournalCodec.decode(Array(original.dropLast(3))) == .incomplete)
        // A window that ends right after the element may be followed by another: ask for more.
        #expect(TxJournalCodec.decode(original, endOfInput: false) == .incomplete)
    }

    /// XA_PREPARE is the one entry the original writes with `force=true` (field 3, 18 01).
    @Test func goldenPrepareWithForce() {
        // TransactionOperation 08 01 10 00 1a 05 "XID:X" = 11 bytes; TxCommand 08 02 12 0b <11> 18 01 = 17.
        let entry = TxJournalEntry.operation(type: .xaPrepare, wasPrepared: false, transactionId: "XID:X", locations: [])
        #expect(TxJournalCodec.encode(entry, force: true) == hex("00000011 0802 120b 0801 1000 1a05 5849443a58 1801"))
    }

    /// message_id is an int64 varint: a negative id takes ten bytes.
    @Test func goldenAppendMessage() {
        let put = bytes("put t 0 1 0 -1 TX:a:1 1\r\nz")
        #expect(put == Self.putFrame(bytes("z")) && put.count == 26)
        let entry = TxJournalEntry.appendMessage(messageId: -1, putCommand: put)
        // AppendMessageCommand 08 ff×9 01 12 1a <26> = 39 bytes; TxCommand 08 01 12 27 <39> = 43.
        let expected = hex("0000002b 0801 1227 08ffffffffffffffffff01 121a") + put
        #expect(TxJournalCodec.encode(entry, force: false) == expected)
        #expect(TxJournalCodec.decode(expected) == .entry(entry, force: false, size: expected.count))
    }

    /// APPEND_MSG entries are written by a direct path (one per transactional put); it must give
    /// the bytes the field-by-field protobuf writer gives, for every size class of its varints.
    @Test func theDirectAppendMessageEncodingMatchesTheProtobufWriter() {
        for messageId in [Int64.min, -1, 0, 1, 127, 128, 1 << 40, .max] {
            for bodySize in [0, 1, 100, 127, 128, 300, 20_000] {
                for force in [false, true] {
                    let put = Self.putFrame([UInt8](repeating: 7, count: bodySize))
                    var append = TxProtobufWriter()
                    append.varintField(1, messageId)
                    append.bytesField(2, put)
                    var command = TxProtobufWriter()
                    command.varintField(1, 1)
                    command.bytesField(2, append.bytes)
                    if force { command.varintField(3, 1) }
                    var expected: [UInt8] = []
                    TxJournalCodec.appendInt32(&expected, Int32(command.bytes.count))
                    expected += command.bytes
                    var out: [UInt8] = [9, 9]
                    TxJournalCodec.encode(.appendMessage(messageId: messageId, putCommand: put), force: force, into: &out)
                    #expect(out == [9, 9] + expected, "id \(messageId), body \(bodySize), force \(force)")
                }
            }
        }
    }

    /// The node encodes a transactional put's entry from the put itself (line and body written in
    /// place): the same bytes as encoding the put first.
    @Test func anAppendMessageFromThePutIsTheSameEntry() {
        var scratch: [UInt8] = [1, 2, 3]
        for bodySize in [0, 5, 127, 128, 5_000] {
            for checksum: Int32? in [-1, 12345] {
                let put = PutCommand(topic: "topic", partition: 3, flag: 1, checksum: checksum, transactionKey: "XID:1:0a:0b:q",
                                     body: [UInt8](repeating: 1, count: bodySize), opaque: 77)
                var out: [UInt8] = [9]
                TxJournalCodec.encodeAppendMessage(messageId: -5, put: put, scratch: &scratch, into: &out)
                let expected = TxJournalCodec.encode(.appendMessage(messageId: -5, putCommand: Frame.put(put).encoded()), force: false)
                #expect(out == [9] + expected, "body \(bodySize)")
            }
        }
    }

    @Test func everyTruncationIsIncompleteOrDamaged() {
        for (entry, force) in Self.samples {
            let encoded = TxJournalCodec.encode(entry, force: force)
            for length in 0..<encoded.count {
                for endOfInput in [true, false] {
                    switch TxJournalCodec.decode(Array(encoded.prefix(length)), endOfInput: endOfInput) {
                    case .incomplete, .damaged: break
                    case .entry(_, _, let size): Issue.record("\(entry) cut at \(length) decoded as an entry of \(size)")
                    }
                }
            }
        }
    }

    @Test func randomBytesNeverCrash() {
        var rng = SimRandom(seed: 42)
        var entries = 0
        for round in 0..<20_000 {
            var buffer: [UInt8]
            if round % 2 == 0 {
                buffer = (0..<Int.random(in: 0...80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                // A valid entry with a few bytes changed: reaches the deep paths.
                let (entry, force) = Self.samples[Int.random(in: 0..<Self.samples.count, using: &rng)]
                buffer = TxJournalCodec.encode(entry, force: force)
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    buffer[Int.random(in: 0..<buffer.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            }
            if case .entry(_, _, let size) = TxJournalCodec.decode(buffer, endOfInput: round % 3 != 0) {
                #expect(size > 0 && size <= buffer.count)
                entries += 1
            }
        }
        #expect(entries > 0)
    }

    /// TxCommand with extra fields of every skippable wire type (varint, fixed64, bytes, fixed32)
    /// before and after the known ones: protobuf readers skip unknown fields.
    @Test func unknownFieldsAreSkipped() {
        let operation = hex("0805 1000 1a04 54583a78")
        let command = hex("7801") + hex("8101 0102030405060708") + hex("0802") + hex("9a0102 ffff") + hex("120a") + operation + hex("a5010a0b0c0d")
        let entry = TxJournalEntry.operation(type: .localRollback, wasPrepared: false, transactionId: "TX:x", locations: [])
        let bytes = [0, 0, 0, UInt8(command.count)] + command
        #expect(TxJournalCodec.decode(bytes) == .entry(entry, force: false, size: bytes.count))
    }

    @Test func hostileInputsAreDamaged() {
        func entry(_ command: [UInt8]) -> [UInt8] {
            int32(command.count) + command
        }
        func op(_ operation: [UInt8]) -> [UInt8] { entry(hex("0802 12") + [UInt8(operation.count)] + operation) }
        let putBad = Self.putFrame(bytes("hello"), checksum: 907_060_871)
        let putTwice = Self.putFrame(bytes("z")) + bytes("x")
        let cases: [(String, [UInt8])] = [
            ("negative length", hex("ffffffff 0802")),
            ("zero length", hex("00000000 0802")),
            ("huge length", hex("7fffffff")),
            ("unknown TxCommandType", entry(hex("0803 1200"))),
            ("missing cmdType", entry(hex("1200"))),
            ("missing cmd_content", entry(hex("0801"))),
            ("truncated varint", entry(hex("08"))),
            ("eleven-byte varint", entry(hex("08ffffffffffffffffffff01 1200"))),
            ("content longer than the message", entry(hex("0801 1205 00"))),
            ("group wire type", entry(hex("0b 0801 1200"))),
            ("field number zero", entry(hex("0001 0801 1200"))),
            ("unknown TransactionType", op(hex("0806 1000 1a04 54583a78"))),
            ("TransactionType zero", op(hex("0800 1000 1a04 54583a78"))),
            ("missing was_prepared", op(hex("0804 1a04 54583a78 2000"))),
            ("missing transaction_id", op(hex("0804 1000 2000"))),
            ("transaction_id not UTF-8", op(hex("0805 1000 1a02 c328"))),
            ("negative data_length", op(hex("0804 1000 1a04 54583a78 20ffffffffffffffffff01"))),
            ("data_length on a rollback", op(hex("0805 1000 1a04 54583a78 2004") + hex("00000000"))),
            ("missing message_id", entry(hex("0801 1202 1200"))),
            ("cmdType as bytes", entry(hex("0a00 1200"))),
            ("attachment element too short", op(hex("0804 1000 1a04 54583a78 2003")) + hex("000000")),
            ("attachment description not topic-partition", op(hex("0804 1000 1a04 54583a78 2018")) + hex("0000000000000000 00000000 00000000 00000004 74657374")),
            ("put_command not a put", entry(hex("0801 120a 0801 1206 70757420 0d0a"))),
            ("put_command body not matching its checksum", entry(hex("0801 12") + [UInt8(putBad.count + 4)] + hex("0800 12") + [UInt8(putBad.count)] + putBad)),
            ("put_command followed by more bytes", entry(hex("0801 12") + [UInt8(putTwice.count + 4)] + hex("0800 12") + [UInt8(putTwice.count)] + putTwice)),
            ("transaction_id not a transaction key", op(hex("0805 1000 1a01 78"))),
            ("transaction_id with a zero byte", op(hex("0805 1000 1a05 54583a0000"))),
            ("attachment descLen beyond data_length", op(hex("0804 1000 1a04 54583a78 2016")) + hex("0000000000000000 00000000 00000000 00000009 746573742d30")),
        ]
        for (name, bytes) in cases {
            guard case .damaged = TxJournalCodec.decode(bytes) else {
                Issue.record("\(name): \(TxJournalCodec.decode(bytes))")
                continue
            }
        }
    }

    @Test func entriesOverTheBoundAreDamaged() {
        let entry = TxJournalEntry.appendMessage(messageId: 1, putCommand: Self.putFrame([UInt8](repeating: 7, count: 100)))
        let encoded = TxJournalCodec.encode(entry, force: false)
        #expect(TxJournalCodec.decode(encoded, maxEntryBytes: encoded.count) == .entry(entry, force: false, size: encoded.count))
        guard case .damaged = TxJournalCodec.decode(encoded, maxEntryBytes: encoded.count - 1) else {
            Issue.record("an entry over the bound was accepted")
            return
        }
        // A data_length beyond the bound is refused before the attachment is awaited.
        let commit = op(hex("0804 1000 1a04 54583a78 20ffffffff07"))
        guard case .damaged = TxJournalCodec.decode(commit, endOfInput: false) else {
            Issue.record("a 2 GiB data_length was awaited")
            return
        }
        #expect(TxJournalCodec.maxEntryBytes(maxPutBytes: 1 << 20) == 65 << 20)
    }

    private func op(_ operation: [UInt8]) -> [UInt8] {
        let command = hex("0802 12") + [UInt8(operation.count)] + operation
        return int32(command.count) + command
    }
}

private func int32(_ value: Int) -> [UInt8] {
    [UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
}
