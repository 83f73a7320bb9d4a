// The few protobuf (proto2) wire rules the redo log needs, by hand: varints, length-delimited
// fields, and skipping unknown fields. Reading is bounds-checked everywhere: hostile bytes give an
// error value, never a trap.

/// Why protobuf bytes could not be read.
struct TxProtobufError: Error, Equatable {
    var reason: String
}

/// Appends protobuf fields to a byte array.
struct TxProtobufWriter {
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    mutating func tag(_ field: Int, wireType: UInt8) {
        varint(UInt64(field) << 3 | UInt64(wireType))
    }

    /// An int32/int64/enum/bool field (wire type 0); negative values take ten bytes, as in protobuf.
    mutating func varintField(_ field: Int, _ value: Int64) {
        tag(field, wireType: 0)
        varint(UInt64(bitPattern: value))
    }

    /// A bytes/string/message field (wire type 2).
    mutating func bytesField(_ field: Int, _ value: [UInt8]) {
        tag(field, wireType: 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }
}

/// One field as read: its number and its value.
enum TxProtobufValue {
    case varint(UInt64)
    case bytes(Range<Int>)
}

/// Reads the fields of one message from `bytes[range]`.
struct TxProtobufReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var index: Int
    let end: Int

    init(_ bytes: UnsafeRawBufferPointer, range: Range<Int>) {
        self.bytes = bytes
        index = range.lowerBound
        end = range.upperBound
    }

    var isAtEnd: Bool { index >= end }

    /// A varint of at most ten bytes; longer or cut off is an error.
    mutating func varint() throws(TxProtobufError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard index < end else { throw TxProtobufError(reason: "truncated varint") }
            let byte = bytes[index]
            index += 1
            if shift == 63 && byte > 1 { throw TxProtobufError(reason: "varint overflows 64 bits") }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
            if shift > 63 { throw TxProtobufError(reason: "varint longer than ten bytes") }
        }
    }

    /// The next field, or nil at the end of the message. Unknown fields are for the caller to
    /// ignore; fixed64/fixed32 values are skipped here (none of our fields use them), and groups
    /// (wire types 3 and 4, deprecated) are refused.
    mutating func nextField() throws(TxProtobufError) -> (field: Int, value: TxProtobufValue?)? {
        guard !isAtEnd else { return nil }
        let key = try varint()
        let field = key >> 3
        guard field >= 1, field <= 536_870_911 else { throw TxProtobufError(reason: "invalid field number \(field)") }
        switch key & 7 {
        case 0:
            return (Int(field), .varint(try varint()))
        case 1:
            try skip(8)
            return (Int(field), nil)
        case 2:
            let length = try varint()
            guard length <= UInt64(end - index) else {
                throw TxProtobufError(reason: "field \(field) claims \(length) bytes, \(end - index) remain")
            }
            let start = index
            index += Int(length)
            return (Int(field), .bytes(start..<index))
        case 5:
            try skip(4)
            return (Int(field), nil)
        default:
            throw TxProtobufError(reason: "unsupported wire type \(key & 7) for field \(field)")
        }
    }

    private mutating func skip(_ count: Int) throws(TxProtobufError) {
        guard end - index >= count else { throw TxProtobufError(reason: "truncated fixed-size field") }
        index += count
    }
}

extension TxProtobufValue {
    /// The varint of a field declared as a varint type; another wire type is an error.
    func varintValue(field: String) throws(TxProtobufError) -> UInt64 {
        guard case .varint(let value) = self else { throw TxProtobufError(reason: "\(field) is not a varint") }
        return value
    }

    func bytesRange(field: String) throws(TxProtobufError) -> Range<Int> {
        guard case .bytes(let range) = self else { throw TxProtobufError(reason: "\(field) is not length-delimited") }
        return range
    }
}
