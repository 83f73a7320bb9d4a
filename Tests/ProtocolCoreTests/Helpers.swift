@testable import ProtocolCore

/// Bytes from a string with ␍␊ written as "\r\n".
func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

func hex(_ s: String) -> [UInt8] {
    let digits = s.filter { $0.isHexDigit }
    var out: [UInt8] = []
    var i = digits.startIndex
    while i < digits.endIndex {
        let j = digits.index(after: i)
        out.append(UInt8(digits[i...j], radix: 16)!)
        i = digits.index(after: j)
    }
    return out
}

/// Decodes all frames from `stream` fed in one piece.
func decodeAll(_ stream: [UInt8], limits: FrameDecoder.Limits = .init()) throws -> [Frame] {
    var decoder = FrameDecoder(limits: limits)
    decoder.feed(stream)
    var frames: [Frame] = []
    while let frame = try decoder.next() { frames.append(frame) }
    return frames
}
