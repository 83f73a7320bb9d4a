import ProtocolCore

/// The byte layout of a spool file (see `SpoolStore` for the format). The framing — length,
/// CRC32, body — is the recover store's (`RecoverRecord`); the magic and the bodies are the spool's.
enum SpoolRecord {
    static let magic: [UInt8] = Array("MQSP".utf8)
    static let version: UInt32 = 1
    static let headerSize = 8
    /// `length` and `CRC32` before each record body.
    static let frameSize = 8
    /// Larger lengths are taken for torn bytes; a put's payload is bounded far below it.
    static let maxBodySize = RecoverRecord.maxBodySize
    static let kindMessage: UInt8 = 1
    static let kindRemoval: UInt8 = 2
    /// Kind byte and the 8-byte sequence, common to both kinds.
    static let minimumBodySize = 9

    enum Decoded: Equatable {
        case message(SpooledMessage)
        /// Messages up to `through` are gone; the first record that may hold a later one starts
        /// at `headOffset`.
        case removal(through: UInt64, headOffset: Int64)
    }

    static func header() -> [UInt8] {
        var bytes = magic
        bytes.appendUInt32(version)
        return bytes
    }

    static func encode(_ message: SpooledMessage) -> [UInt8] {
        var body: [UInt8] = [kindMessage]
        body.reserveCapacity(13 + message.payload.count)
        body.appendUInt64(message.sequence)
        body.appendUInt32(UInt32(bitPattern: message.flag))
        body.append(contentsOf: message.payload)
        return framed(body)
    }

    static func encodeRemoval(through: UInt64, headOffset: Int64) -> [UInt8] {
        var body: [UInt8] = [kindRemoval]
        body.appendUInt64(through)
        body.appendUInt64(UInt64(bitPattern: headOffset))
        return framed(body)
    }

    private static func framed(_ body: [UInt8]) -> [UInt8] {
        precondition(body.count <= maxBodySize, "spool record too large")
        return ChecksummedFrame.wrap(body)
    }

    /// The body length announced by the frame at `at`, or nil when it cannot be a record's.
    static func bodyLength(_ bytes: [UInt8], at: Int) -> Int? {
        guard bytes.count - at >= frameSize else { return nil }
        let length = Int(bytes.uint32(at: at))
        return length >= minimumBodySize && length <= maxBodySize ? length : nil
    }

    /// The record at `at` and its size, or nil when the bytes there are not a whole, checksummed
    /// record of a known kind.
    static func decode(_ bytes: [UInt8], at: Int) -> (Decoded, size: Int)? {
        guard let length = bodyLength(bytes, at: at), bytes.count - at - frameSize >= length else { return nil }
        let body = bytes[(at + frameSize)..<(at + frameSize + length)]
        guard CRC32.checksum(body) == bytes.uint32(at: at + 4) else { return nil }
        var reader = RecoverRecord.Reader(bytes: body)
        guard let kind = reader.byte(), let sequence = reader.uint64() else { return nil }
        switch kind {
        case kindMessage:
            guard let flag = reader.uint32().map(Int32.init(bitPattern:)) else { return nil }
            return (.message(SpooledMessage(sequence: sequence, flag: flag, payload: Array(reader.rest()))), frameSize + length)
        case kindRemoval:
            guard let head = reader.uint64().map(Int64.init(bitPattern:)), reader.atEnd else { return nil }
            return (.removal(through: sequence, headOffset: head), frameSize + length)
        default:
            return nil
        }
    }
}
