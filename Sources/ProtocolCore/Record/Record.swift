/// MetaQ's record layout, identical on disk and in a `get` response body (reference §1.5):
///
///     int32 length | int32 checksum | int64 msgId | int32 flag | payload (length bytes)
///
/// all big-endian; `checksum = CRC32(payload) & 0x7FFFFFFF`. Records are concatenated with no
/// padding; a record at offset `o` is followed by the next one at `o + 20 + length`.
public enum Record {
    public static let headerSize = 20

    /// The bytes of one record.
    public static func encode(msgId: Int64, flag: Int32, payload: some Collection<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(headerSize + payload.count)
        append(to: &out, msgId: msgId, flag: flag, payload: payload)
        return out
    }

    /// Appends one record to `buffer` (batches are built this way: one contiguous write, §2.4).
    public static func append(
        to buffer: inout [UInt8], msgId: Int64, flag: Int32, payload: some Collection<UInt8>
    ) {
        append(to: &buffer, msgId: msgId, flag: flag, payload: payload, checksum: CRC32.metaqChecksum(payload))
    }

    /// `append(to:msgId:flag:payload:)` with the payload's checksum already known
    /// (`CRC32.metaqChecksum(payload)`, e.g. verified against a put's checksum).
    public static func append(
        to buffer: inout [UInt8], msgId: Int64, flag: Int32, payload: some Collection<UInt8>, checksum: Int32
    ) {
        precondition(payload.count <= Int(Int32.max), "record payload exceeds Int32.max bytes")
        buffer.appendBigEndian(Int32(payload.count))
        buffer.appendBigEndian(checksum)
        buffer.appendBigEndian(msgId)
        buffer.appendBigEndian(flag)
        buffer.append(contentsOf: payload)
    }

    /// `append(to:msgId:flag:payload:checksum:)` for an array payload: not generic, so callers in
    /// other modules (the log's staging buffer) get a direct call and a single memcpy.
    public static func append(to buffer: inout [UInt8], msgId: Int64, flag: Int32, payload: [UInt8], checksum: Int32) {
        precondition(payload.count <= Int(Int32.max), "record payload exceeds Int32.max bytes")
        buffer.appendBigEndian(Int32(payload.count))
        buffer.appendBigEndian(checksum)
        buffer.appendBigEndian(msgId)
        buffer.appendBigEndian(flag)
        payload.withUnsafeBufferPointer { buffer.append(contentsOf: $0) }
    }

    /// The size a record with `payloadCount` payload bytes takes.
    public static func size(payloadCount: Int) -> Int { headerSize + payloadCount }
}

/// A decoded record header.
public struct RecordHeader: Equatable, Sendable {
    public var length: Int32
    public var checksum: Int32
    public var msgId: Int64
    public var flag: Int32

    public init(length: Int32, checksum: Int32, msgId: Int64, flag: Int32) {
        self.length = length
        self.checksum = checksum
        self.msgId = msgId
        self.flag = flag
    }

    /// Bytes the whole record occupies.
    public var recordSize: Int { Record.headerSize + Int(length) }
}

/// Why the bytes at a position are not a valid record.
public enum RecordDamage: Equatable, Sendable, CustomStringConvertible {
    case negativeLength(Int32)
    /// Length above the configured maximum: garbage, or a record no client could read.
    case lengthTooLarge(Int32)
    /// A header of 20 zero bytes. CRC32 of an empty payload is 0, so zero fill (what a file
    /// system may leave after a crash in an extended region) would otherwise pass as a record.
    case zeroFill
    case checksumMismatch(stored: Int32, computed: Int32)
    /// Flag bit 0 says there is an attribute, but its length header does not fit the payload.
    case badAttributeHeader

    public var description: String {
        switch self {
        case .negativeLength(let n): return "negative record length \(n)"
        case .lengthTooLarge(let n): return "record length \(n) exceeds the maximum"
        case .zeroFill: return "zero-filled header"
        case .checksumMismatch(let stored, let computed):
            return "checksum mismatch (stored \(stored), computed \(computed))"
        case .badAttributeHeader: return "attribute length does not fit the payload"
        }
    }
}

/// The result of looking for a record at a position in a byte range.
public enum RecordParse: Equatable, Sendable {
    /// A whole, checksum-verified record; its payload is `payloadStart ..< payloadStart + length`.
    case record(RecordHeader, payloadStart: Int)
    /// The bytes end before the record does (a cut trailing record; MetaQ slices are not aligned).
    case incomplete
    case damaged(RecordDamage)
}

extension Record {
    /// Parses the record starting at `index` of `bytes`, verifying its checksum.
    public static func parse(
        _ bytes: UnsafeRawBufferPointer, at index: Int, maxPayloadBytes: Int = Int(Int32.max)
    ) -> RecordParse {
        guard bytes.count - index >= headerSize else { return .incomplete }
        let header = RecordHeader(
            length: bytes.int32BE(at: index), checksum: bytes.int32BE(at: index + 4),
            msgId: bytes.int64BE(at: index + 8), flag: bytes.int32BE(at: index + 16))
        if header.length < 0 { return .damaged(.negativeLength(header.length)) }
        if Int(header.length) > maxPayloadBytes { return .damaged(.lengthTooLarge(header.length)) }
        if header.length == 0 && header.checksum == 0 && header.msgId == 0 && header.flag == 0 {
            return .damaged(.zeroFill)
        }
        let payloadStart = index + headerSize
        guard bytes.count - payloadStart >= Int(header.length) else { return .incomplete }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[payloadStart..<payloadStart + Int(header.length)])
        let computed = CRC32.metaqChecksum(payload)
        if computed != header.checksum {
            return .damaged(.checksumMismatch(stored: header.checksum, computed: computed))
        }
        return .record(header, payloadStart: payloadStart)
    }
}
