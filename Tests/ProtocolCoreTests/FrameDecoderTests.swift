import Testing
@testable import ProtocolCore

/// Parsing rules of reference §1.1 and §1.3.
@Suite("Frame decoder rules (reference §1.1, §1.3)")
struct FrameDecoderTests {
    @Test func fourPutForms() throws {
        let oldPut = try decodeAll(bytes("put t 0 2 0 -7\r\nhi"))
        #expect(oldPut == [.put(PutCommand(topic: "t", partition: 0, flag: 0, checksum: nil, body: bytes("hi"), opaque: -7))])
        let withChecksum = try decodeAll(bytes("put t 1 2 0 12345 8\r\nhi"))
        #expect(withChecksum == [.put(PutCommand(topic: "t", partition: 1, flag: 0, checksum: 12345, body: bytes("hi"), opaque: 8))])
        // 7 tokens whose 6th does not start with a digit or '-': an old client's transaction key.
        let oldTx = try decodeAll(bytes("put t 1 2 0 TX:s1:3 8\r\nhi"))
        #expect(oldTx == [.put(PutCommand(topic: "t", partition: 1, flag: 0, checksum: nil, transactionKey: "TX:s1:3", body: bytes("hi"), opaque: 8))])
        let newTx = try decodeAll(bytes("put t -1 2 1 -1 TX:s1:3 -2147483648\r\nhi"))
        #expect(newTx == [.put(PutCommand(topic: "t", partition: -1, flag: 1, checksum: -1, transactionKey: "TX:s1:3", body: bytes("hi"), opaque: .min))])
        for frame in oldPut + withChecksum + oldTx + newTx {
            #expect(try decodeAll(frame.encoded()) == [frame])
        }
    }

    @Test func checksumMinusOneDisablesTheCheck() throws {
        guard case .put(let put) = try decodeAll(bytes("put t 0 1 0 -1 1\r\nx"))[0] else { Issue.record("not a put"); return }
        #expect(!put.requiresChecksumCheck)
        #expect(PutCommand(topic: "t", partition: 0, flag: 0, checksum: 5, body: [], opaque: 1).requiresChecksumCheck)
    }

    @Test func versionIsAnyVToken() throws {
        #expect(try decodeAll(bytes("version\r\n")) == [.version(VersionCommand(opaque: nil))])
        #expect(try decodeAll(bytes("vxyz 5\r\n")) == [.version(VersionCommand(opaque: 5))])
        #expect(Frame.version(VersionCommand(opaque: nil)).opaque == Int32.max)
    }

    @Test func anySTokenOtherThanStatsIsSync() throws {
        let frames = try decodeAll(bytes("sxx t 3 2 0 -99 7\r\nab"))
        #expect(frames == [.sync(SyncCommand(topic: "t", partition: 3, flag: 0, msgId: -99, checksum: nil, body: bytes("ab"), opaque: 7))])
        let withChecksum = SyncCommand(topic: "t", partition: 3, flag: 1, msgId: 42, checksum: 77, body: bytes("cd"), opaque: -3)
        #expect(Frame.sync(withChecksum).encoded() == bytes("sync t 3 2 1 42 77 -3\r\ncd"))
        #expect(try decodeAll(bytes("sync t 3 2 1 42 77 -3\r\ncd")) == [.sync(withChecksum)])
    }

    /// §1.4.6: one token after `stats` is the item; the Java client sends `stats  <opaque>`.
    @Test func statsItemAndOpaque() throws {
        #expect(try decodeAll(bytes("stats\r\n")) == [.stats(StatsCommand(item: nil, opaque: nil))])
        #expect(try decodeAll(bytes("stats 1\r\n")) == [.stats(StatsCommand(item: "1", opaque: nil))])
        #expect(try decodeAll(bytes("stats  5\r\n")) == [.stats(StatsCommand(item: "", opaque: 5))])
        #expect(try decodeAll(bytes("stats topics -5\r\n")) == [.stats(StatsCommand(item: "topics", opaque: -5))])
        // Trailing empty tokens are dropped as Java's split does.
        #expect(try decodeAll(bytes("stats offsets \r\n")) == [.stats(StatsCommand(item: "offsets", opaque: nil))])
        #expect(Frame.stats(StatsCommand(item: nil, opaque: 5)).encoded() == bytes("stats  5\r\n"))
        #expect(Frame.stats(StatsCommand(item: nil, opaque: nil)).opaque == Int32.max)
    }

    @Test func quitAndOffset() throws {
        #expect(try decodeAll(bytes("quit\r\n")) == [.quit])
        #expect(Frame.quit.opaque == nil)
        let offset = OffsetCommand(topic: "test", group: "g", partition: 0, offset: 999_999, opaque: 4)
        #expect(try decodeAll(bytes("offset test g 0 999999 4\r\n")) == [.offset(offset)])
        #expect(Frame.offset(offset).encoded() == bytes("offset test g 0 999999 4\r\n"))
    }

    /// §4.2: with 6 tokens the optional token is a timeout if all digits, else a unique qualifier.
    @Test func transactionOptionalTokens() throws {
        let begin = try decodeAll(bytes("transaction TX:s:1 s BEGIN 30 -9\r\n"))
        #expect(begin == [.transaction(TransactionCommand(transactionKey: "TX:s:1", sessionId: "s", type: .begin, timeoutSeconds: 30, opaque: -9))])
        let xa = try decodeAll(bytes("transaction XID:1:ab:cd:q s PREPARE q 3\r\n"))
        #expect(xa == [.transaction(TransactionCommand(transactionKey: "XID:1:ab:cd:q", sessionId: "s", type: .prepare, uniqueQualifier: "q", opaque: 3))])
        let both = TransactionCommand(transactionKey: "null", sessionId: "s", type: .recover, timeoutSeconds: 5, uniqueQualifier: "q", opaque: 1)
        #expect(try decodeAll(Frame.transaction(both).encoded()) == [.transaction(both)])
        #expect(throws: WireError.self) { try decodeAll(bytes("transaction TX:s:1 s DANCE 1\r\n")) }
    }

    /// §1.1: `bogus command␍␊` → the connection is closed with no reply.
    @Test func unknownCommandsClose() {
        for line in ["bogus command\r\n", "puts t 0 1 0 1\r\nx", " put t 0 1 0 1\r\nx", "\r\n", "Get t g 0 0 1 1\r\n"] {
            #expect {
                try decodeAll(bytes(line))
            } throws: { error in
                let wire = error as? WireError
                return wire?.kind == .unknownCommand && wire?.disposition == .closeConnection
            }
        }
    }

    @Test func malformedLinesClose() {
        let lines = ["put t 0 1 0\r\nx", "put t x 1 0 1\r\nx", "get t g 0 0 1\r\n", "offset t g 0 1\r\n",
                     "get t g 0 0 99999999999 1\r\n", "result 200 1\r\nx", "value 5\r\n", "put t 0 1 0 1 2 3 4\r\nx",
                     "get t g 0 9223372036854775808 1 1\r\n", "get t g 0 1-2 1 1\r\n"]
        for line in lines {
            #expect {
                try decodeAll(bytes(line))
            } throws: { error in
                (error as? WireError).map { $0.kind == .malformedLine && $0.disposition == .closeConnection } ?? false
            }
        }
    }

    @Test func bodyLimitIsCheckedBeforeAllocating() throws {
        var decoder = FrameDecoder(limits: .init(maxLineBytes: 128, maxBodyBytes: 1024))
        decoder.feed(bytes("put t 0 2147483647 0 1\r\n"))
        #expect(throws: WireError.self) { try decoder.next() }
        do { _ = try decoder.next() } catch { #expect(error.kind == .bodyTooLarge) }
        #expect(decoder.bufferedByteCount == 0)
        #expect {
            try decodeAll(bytes("value -1 3\r\n"))
        } throws: { ($0 as? WireError)?.kind == .negativeBodyLength }
    }

    @Test func lineLimit() throws {
        var decoder = FrameDecoder(limits: .init(maxLineBytes: 64, maxBodyBytes: 1024))
        decoder.feed([UInt8](repeating: UInt8(ascii: "g"), count: 64))
        #expect(try decoder.next() == nil)
        decoder.feed([UInt8(ascii: "g")])
        #expect(throws: WireError.self) { try decoder.next() }
    }

    @Test func errorsPoisonTheStream() throws {
        var decoder = FrameDecoder()
        decoder.feed(bytes("bogus\r\nversion 1\r\n"))
        #expect(throws: WireError.self) { try decoder.next() }
        #expect(throws: WireError.self) { try decoder.next() }
    }

    @Test func partialFramesWait() throws {
        var decoder = FrameDecoder()
        decoder.feed(bytes("put t 0 5 0 1\r\nhel"))
        #expect(try decoder.next() == nil)
        decoder.feed(bytes("lo"))
        #expect(try decoder.next() == .put(PutCommand(topic: "t", partition: 0, flag: 0, checksum: nil, body: bytes("hello"), opaque: 1)))
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedByteCount == 0)
        // A CR at the end of a chunk, its LF in the next one.
        decoder.feed(bytes("version 3\r"))
        #expect(try decoder.next() == nil)
        decoder.feed(bytes("\n"))
        #expect(try decoder.next() == .version(VersionCommand(opaque: 3)))
    }
}
