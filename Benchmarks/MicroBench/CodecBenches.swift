// CRC32 (ours against zlib's), record encoding, and frame decoding.
import CZlib
import ProtocolCore

func zlibCRC32(_ raw: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
    UInt32(truncatingIfNeeded: crc32(UInt(crc), raw.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                     UInt32(raw.count)))
}

/// Our slicing-by-8 `CRC32.checksum` against zlib's `crc32` on the same buffer. Each checksum
/// continues from the previous result, so no call can be hoisted out of the loop.
func benchCRC() throws -> [Row] {
    var rows: [Row] = []
    for (size, label) in [(1024, "1 KiB"), (1 << 20, "1 MiB")] {
        let buffer = pseudoRandomBytes(size, seed: UInt64(size))
        try buffer.withUnsafeBytes { raw in
            let ours = CRC32.checksum(raw)
            let theirs = zlibCRC32(raw)
            let half = size / 2 + 3
            let pieces = CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[half...]),
                                        continuing: CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[..<half])))
            guard ours == theirs, pieces == ours else {
                throw BenchFailure("CRC32 mismatch on \(label): ours \(ours), in pieces \(pieces), zlib \(theirs)")
            }
            rows.append(try measure("crc", "CRC32.checksum (slicing-by-8)", label, opsPerIteration: 1,
                                    bytesPerIteration: size, note: .gigabytes) { iterations in
                var c: UInt32 = 0
                let s = timed { for _ in 0..<iterations { c = CRC32.checksum(raw, continuing: c) } }
                consume(UInt64(c))
                return RunResult(time: s)
            })
            rows.append(try measure("crc", "zlib crc32", label, opsPerIteration: 1,
                                    bytesPerIteration: size, note: .gigabytes) { iterations in
                var c: UInt32 = 0
                let s = timed { for _ in 0..<iterations { c = zlibCRC32(raw, continuing: c) } }
                consume(UInt64(c))
                return RunResult(time: s)
            })
        }
    }
    return rows
}

/// `Record.encode`: a fresh array with the 20-byte header (CRC32 of the payload) and the payload.
func benchEncode() throws -> [Row] {
    var rows: [Row] = []
    for size in [100, 1024] {
        let payload = pseudoRandomBytes(size, seed: 7)
        rows.append(try measure("encode", "Record.encode (+CRC32)", "\(size) B payload", opsPerIteration: 1,
                                bytesPerIteration: Record.size(payloadCount: size)) { iterations in
            var acc: UInt64 = 0
            let s = timed {
                for i in 0..<iterations {
                    let record = Record.encode(msgId: Int64(i), flag: 0, payload: payload)
                    acc &+= UInt64(record.count) &+ UInt64(record[7]) &+ UInt64(record[19])
                }
            }
            consume(acc)
            return RunResult(time: s)
        })
    }
    return rows
}

let topics = ["order-events", "payment-notifications", "user-activity-log", "inventory.updates",
              "meta-test", "com.example.shop.orders"]

/// About `targetBytes` of pipelined `put` frames with 100-byte bodies and checksums.
func putStream(targetBytes: Int) -> (bytes: [UInt8], frames: [Frame]) {
    var bytes: [UInt8] = []
    var frames: [Frame] = []
    var i = 0
    while bytes.count < targetBytes {
        let body = pseudoRandomBytes(100, seed: UInt64(i))
        let frame = Frame.put(PutCommand(topic: topics[i % topics.count], partition: Int32(i % 8), flag: 0,
                                         checksum: CRC32.metaqChecksum(body), body: body,
                                         opaque: Int32(-1_000_000 + i)))
        frame.encode(into: &bytes)
        frames.append(frame)
        i += 1
    }
    return (bytes, frames)
}

/// About `targetBytes` of pipelined `get` lines, as consumers send them.
func getStream(targetBytes: Int) -> (bytes: [UInt8], frames: [Frame]) {
    var bytes: [UInt8] = []
    var frames: [Frame] = []
    var i = 0
    while bytes.count < targetBytes {
        let frame = Frame.get(GetCommand(topic: topics[i % topics.count], group: "meta-consumer-group-\(i % 4)",
                                         partition: Int32(i % 8), offset: Int64(i) * 1_048_576 + 12_345,
                                         maxSize: 1_048_576, opaque: Int32(-2_000_000 + i)))
        frame.encode(into: &bytes)
        frames.append(frame)
        i += 1
    }
    return (bytes, frames)
}

/// Decodes all of `stream` with a fresh decoder, fed `chunk` bytes at a time.
func decodeAll(_ stream: UnsafeRawBufferPointer, chunk: Int, _ each: (Frame) -> Void) throws {
    var decoder = FrameDecoder()
    var start = 0
    while start < stream.count {
        let end = min(start + chunk, stream.count)
        decoder.feed(UnsafeRawBufferPointer(rebasing: stream[start..<end]))
        while let frame = try decoder.next() { each(frame) }
        start = end
    }
    guard decoder.bufferedByteCount == 0 else { throw BenchFailure("decoder left \(decoder.bufferedByteCount) bytes") }
}

/// `FrameDecoder` over a pre-encoded stream; MB/s counts wire bytes.
func benchDecode() throws -> [Row] {
    var rows: [Row] = []
    let streams = [("put, 100 B body", putStream(targetBytes: 1_000_000)),
                   ("get line", getStream(targetBytes: 1_000_000))]
    for (name, stream) in streams {
        for (chunk, label) in [(64 * 1024, "64 KiB chunks"), (1500, "1500 B chunks")] {
            try stream.bytes.withUnsafeBytes { raw in
                var decoded: [Frame] = []
                try decodeAll(raw, chunk: chunk) { decoded.append($0) }
                guard decoded == stream.frames else { throw BenchFailure("decoding \(name) in \(label) differs") }
                let count = stream.frames.count
                rows.append(try measure("decode", "FrameDecoder: \(name)", label, opsPerIteration: count,
                                        bytesPerIteration: raw.count,
                                        note: .text("\(count) frames, \(raw.count) B per pass")) { iterations in
                    var acc: UInt64 = 0
                    var frames = 0
                    let s = try timed {
                        for _ in 0..<iterations {
                            try decodeAll(raw, chunk: chunk) { frame in
                                frames += 1
                                switch frame {
                                case .put(let c): acc &+= UInt64(c.body.count) &+ UInt64(UInt32(bitPattern: c.opaque))
                                case .get(let g): acc &+= UInt64(g.offset) &+ UInt64(UInt32(bitPattern: g.opaque))
                                default: break
                                }
                            }
                        }
                    }
                    guard frames == count * iterations else { throw BenchFailure("decoded \(frames) frames") }
                    consume(acc)
                    return RunResult(time: s)
                })
            }
        }
    }
    return rows
}
