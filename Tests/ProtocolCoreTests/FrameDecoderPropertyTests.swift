import Sim
import Testing
@testable import ProtocolCore

/// Random command sequences and random chunkings decode to the same frames; random bytes never
/// crash the decoder or grow its memory beyond what was fed.
@Suite("Frame decoder properties")
struct FrameDecoderPropertyTests {
    @Test func randomSequencesSurviveAnyChunking() throws {
        for seed in UInt64(0)..<300 {
            var rng = SimRandom(seed: seed)
            let frames = (0..<rng.int(in: 1..<40)).map { _ in FrameGenerator.frame(&rng) }
            var stream: [UInt8] = []
            for frame in frames { frame.encode(into: &stream) }
            let decoded = try decodeChunked(stream, rng: &rng)
            #expect(decoded == frames, "seed \(seed)")
        }
    }

    @Test func oneByteAtATimeAndOneMegabyteAtOnce() throws {
        var rng = SimRandom(seed: 7)
        var frames: [Frame] = []
        var stream: [UInt8] = []
        while stream.count < 1 << 20 {
            let frame = FrameGenerator.frame(&rng)
            frames.append(frame)
            frame.encode(into: &stream)
        }
        #expect(try decodeAll(stream) == frames)
        var decoder = FrameDecoder()
        var decoded: [Frame] = []
        for byte in stream.prefix(64 * 1024) {
            decoder.feed(CollectionOfOne(byte))
            while let frame = try decoder.next() { decoded.append(frame) }
        }
        #expect(decoded == Array(frames.prefix(decoded.count)))
        #expect(decoded.count > 100)
    }

    /// Fuzz: random bytes, biased towards real command words, in random chunks.
    @Test func randomBytesNeverCrashAndStayBounded() {
        let limits = FrameDecoder.Limits(maxLineBytes: 256, maxBodyBytes: 4096)
        let words = ["put ", "get ", "offset ", "stats ", "sync ", "value ", "result ", "version ", "transaction ",
                     "quit", " ", "\r\n", "-1 ", "0 ", "2147483647 ", "99999999999999999999 ", "t ", "\r", "\n"]
        var errors = 0
        for seed in UInt64(0)..<500 {
            var rng = SimRandom(seed: seed)
            var decoder = FrameDecoder(limits: limits)
            var fed = 0
            var consumed = 0
            loop: for _ in 0..<rng.int(in: 1..<60) {
                let chunk = rng.chance(0.5) ? Array(rng.pick(words).utf8) : rng.bytes(rng.int(in: 0..<300))
                decoder.feed(chunk)
                fed += chunk.count
                do {
                    while try decoder.next() != nil { consumed += 1 }
                } catch {
                    errors += 1
                    break loop
                }
                #expect(decoder.bufferedByteCount <= fed, "seed \(seed)")
                #expect(decoder.bufferedByteCount <= limits.maxLineBytes + limits.maxBodyBytes + 600, "seed \(seed)")
            }
        }
        #expect(errors > 100)
    }

    private func decodeChunked(_ stream: [UInt8], rng: inout SimRandom) throws -> [Frame] {
        var decoder = FrameDecoder()
        var frames: [Frame] = []
        var i = 0
        while i < stream.count {
            let n = min(stream.count - i, rng.chance(0.3) ? 1 : rng.int(in: 1..<200))
            decoder.feed(stream[i..<i + n])
            i += n
            while let frame = try decoder.next() { frames.append(frame) }
        }
        #expect(decoder.bufferedByteCount == 0)
        return frames
    }
}

/// Random frames whose encoding decodes back to themselves (tokens without spaces; keys and
/// qualifiers that the optional-token rules cannot mistake for numbers).
enum FrameGenerator {
    static func frame(_ rng: inout SimRandom) -> Frame {
        switch rng.int(in: 0..<10) {
        case 0:
            let checksum: Int32? = rng.chance(0.7) ? Int32(rng.int(in: -1..<Int(Int32.max))) : nil
            return .put(PutCommand(topic: word(&rng), partition: int32(&rng), flag: int32(&rng), checksum: checksum,
                                   transactionKey: rng.chance(0.3) ? "TX:" + word(&rng) : nil,
                                   body: rng.bytes(rng.int(in: 0..<300)), opaque: int32(&rng)))
        case 1:
            return .get(GetCommand(topic: word(&rng), group: word(&rng), partition: int32(&rng),
                                   offset: Int64(bitPattern: rng.next()), maxSize: int32(&rng), opaque: int32(&rng)))
        case 2:
            return .offset(OffsetCommand(topic: word(&rng), group: word(&rng), partition: int32(&rng),
                                         offset: Int64(bitPattern: rng.next()), opaque: int32(&rng)))
        case 3:
            let opaque: Int32? = rng.chance(0.5) ? int32(&rng) : nil
            let item: String? = opaque != nil ? (rng.chance(0.5) ? "" : word(&rng)) : (rng.chance(0.5) ? word(&rng) : nil)
            return .stats(StatsCommand(item: item, opaque: opaque))
        case 4: return .version(VersionCommand(opaque: rng.chance(0.5) ? int32(&rng) : nil))
        case 5: return .quit
        case 6:
            return .transaction(TransactionCommand(
                transactionKey: "XID:" + word(&rng), sessionId: word(&rng), type: rng.pick(TransactionType.allCases),
                timeoutSeconds: rng.chance(0.5) ? Int32(rng.int(in: 0..<1000)) : nil,
                uniqueQualifier: rng.chance(0.5) ? "q" + word(&rng) : nil, opaque: int32(&rng)))
        case 7:
            return .sync(SyncCommand(topic: word(&rng), partition: int32(&rng), flag: int32(&rng),
                                     msgId: Int64(bitPattern: rng.next()), checksum: rng.chance(0.5) ? int32(&rng) : nil,
                                     body: rng.bytes(rng.int(in: 0..<100)), opaque: int32(&rng)))
        case 8:
            return .result(ResultResponse(code: rng.pick([200, 301, 400, 403, 404, 500, 503]),
                                          body: rng.bytes(rng.int(in: 0..<100)), opaque: int32(&rng)))
        default:
            return .value(ValueResponse(body: rng.bytes(rng.int(in: 0..<500)), opaque: int32(&rng)))
        }
    }

    static func word(_ rng: inout SimRandom) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789_-*.")
        return String((0..<rng.int(in: 1..<12)).map { _ in rng.pick(alphabet) })
    }

    static func int32(_ rng: inout SimRandom) -> Int32 { Int32(truncatingIfNeeded: rng.next()) }
}
