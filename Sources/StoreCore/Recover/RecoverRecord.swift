import ProtocolCore

/// A message handed off after its last retry (reference §5.2), as the recover store keeps it.
public struct RecoveredMessage: Equatable, Sendable {
    public var topic: String
    public var group: String
    /// The broker the message was fetched from (§3.1 broker id).
    public var brokerId: Int32
    /// Partition inside its broker.
    public var partition: Int32
    /// The message as delivered: id, flag, attribute, data and its offset in the partition.
    public var message: Message

    public init(topic: String, group: String, brokerId: Int32, partition: Int32, message: Message) {
        self.topic = topic
        self.group = group
        self.brokerId = brokerId
        self.partition = partition
        self.message = message
    }
}

/// The byte layout of a recover store file (see `RecoverStore` for the format).
enum RecoverRecord {
    static let magic: [UInt8] = Array("MQRC".utf8)
    static let version: UInt32 = 1
    static let headerSize = 8
    /// `length` and `CRC32` before each record body.
    static let frameSize = 8
    /// Larger lengths are taken for torn bytes: no message body comes near it (§1.5: 2 MiB reads).
    static let maxBodySize = 64 << 20
    static let kindMessage: UInt8 = 1
    static let kindRemoval: UInt8 = 2

    enum Decoded: Equatable {
        case message(RecoveredMessage)
        case removal(msgId: Int64)
    }

    static func header() -> [UInt8] {
        var bytes = magic
        bytes.appendUInt32(version)
        return bytes
    }

    static func encode(_ recovered: RecoveredMessage) -> [UInt8] {
        let message = recovered.message
        let (flag, payload) = MessagePayload.encode(attribute: message.attribute, data: message.data, flag: message.flag)
        var body: [UInt8] = [kindMessage]
        body.appendUInt64(UInt64(bitPattern: message.id))
        body.appendUInt32(UInt32(bitPattern: flag))
        body.appendString(recovered.topic)
        body.appendUInt32(UInt32(bitPattern: recovered.brokerId))
        body.appendUInt32(UInt32(bitPattern: recovered.partition))
        body.appendUInt64(UInt64(bitPattern: message.offset))
        body.appendString(recovered.group)
        body.append(contentsOf: payload)
        return framed(body)
    }

    static func encodeRemoval(msgId: Int64) -> [UInt8] {
        var body: [UInt8] = [kindRemoval]
        body.appendUInt64(UInt64(bitPattern: msgId))
        return framed(body)
    }

    private static func framed(_ body: [UInt8]) -> [UInt8] {
        precondition(body.count <= maxBodySize, "recover record too large")
        return ChecksummedFrame.wrap(body)
    }

    /// The record at `at` and its size in bytes, or nil when the bytes there are not a whole,
    /// checksummed record (a torn tail).
    static func decode(_ bytes: [UInt8], at: Int) -> (Decoded, size: Int)? {
        guard bytes.count - at >= frameSize else { return nil }
        let length = Int(bytes.uint32(at: at))
        guard length >= 9, length <= maxBodySize, bytes.count - at - frameSize >= length else { return nil }
        let body = bytes[(at + frameSize)..<(at + frameSize + length)]
        guard CRC32.checksum(body) == bytes.uint32(at: at + 4) else { return nil }
        var reader = Reader(bytes: body)
        guard let decoded = decodeBody(&reader) else { return nil }
        return (decoded, frameSize + length)
    }

    /// The whole records of a file, in order, from the header on. Bytes that are not a record
    /// but are followed by one are damage (skipped and listed, so the records after them are
    /// kept); bytes after the last record are a torn tail (`end` is where it starts).
    static func scan(_ bytes: [UInt8]) -> (records: [(Decoded, size: Int)], end: Int, damaged: [Range<Int>]) {
        var records: [(Decoded, size: Int)] = []
        var damaged: [Range<Int>] = []
        var at = headerSize
        while at < bytes.count {
            if let record = decode(bytes, at: at) {
                records.append(record)
                at += record.size
                continue
            }
            // A record is only taken after damage when its checksum holds: random bytes pass
            // with a chance of 2^-32 per position.
            guard let next = (at + 1..<bytes.count).first(where: { decode(bytes, at: $0) != nil }) else { break }
            damaged.append(at..<next)
            at = next
        }
        return (records, min(at, bytes.count), damaged)
    }

    private static func decodeBody(_ reader: inout Reader) -> Decoded? {
        guard let kind = reader.byte(), let id = reader.uint64().map(Int64.init(bitPattern:)) else { return nil }
        if kind == kindRemoval { return reader.atEnd ? .removal(msgId: id) : nil }
        guard kind == kindMessage,
              let flag = reader.uint32().map(Int32.init(bitPattern:)),
              let topic = reader.string(),
              let brokerId = reader.uint32().map(Int32.init(bitPattern:)),
              let partition = reader.uint32().map(Int32.init(bitPattern:)),
              let offset = reader.uint64().map(Int64.init(bitPattern:)),
              let group = reader.string(),
              let (attribute, data) = MessagePayload.decode(flag: flag, payload: reader.rest()) else { return nil }
        let message = Message(id: id, flag: flag, attribute: attribute, data: Array(data), offset: offset)
        return .message(RecoveredMessage(topic: topic, group: group, brokerId: brokerId, partition: partition, message: message))
    }

    /// Reads big-endian fields from a record body.
    struct Reader {
        let bytes: ArraySlice<UInt8>
        var index: Int

        init(bytes: ArraySlice<UInt8>) {
            self.bytes = bytes
            self.index = bytes.startIndex
        }

        var atEnd: Bool { index == bytes.endIndex }

        mutating func byte() -> UInt8? {
            guard index < bytes.endIndex else { return nil }
            defer { index += 1 }
            return bytes[index]
        }

        mutating func uint32() -> UInt32? {
            guard bytes.endIndex - index >= 4 else { return nil }
            defer { index += 4 }
            return (0..<4).reduce(0) { $0 << 8 | UInt32(bytes[index + $1]) }
        }

        mutating func uint64() -> UInt64? {
            guard let high = uint32(), let low = uint32() else { return nil }
            return UInt64(high) << 32 | UInt64(low)
        }

        /// A UInt16 length, then that many bytes of UTF-8.
        mutating func string() -> String? {
            guard bytes.endIndex - index >= 2 else { return nil }
            let count = Int(bytes[index]) << 8 | Int(bytes[index + 1])
            guard bytes.endIndex - index - 2 >= count else { return nil }
            defer { index += 2 + count }
            return String(decoding: bytes[(index + 2)..<(index + 2 + count)], as: UTF8.self)
        }

        mutating func rest() -> ArraySlice<UInt8> {
            defer { index = bytes.endIndex }
            return bytes[index...]
        }
    }
}

extension [UInt8] {
    mutating func appendUInt32(_ value: UInt32) {
        append(contentsOf: [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16),
                            UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)])
    }

    mutating func appendUInt64(_ value: UInt64) {
        appendUInt32(UInt32(value >> 32))
        appendUInt32(UInt32(truncatingIfNeeded: value))
    }

    mutating func appendString(_ string: String) {
        let utf8 = Array(string.utf8)
        precondition(utf8.count <= Int(UInt16.max), "name too long for a recover record")
        append(UInt8(utf8.count >> 8))
        append(UInt8(truncatingIfNeeded: utf8.count))
        append(contentsOf: utf8)
    }

    func uint32(at index: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 << 8 | UInt32(self[index + $1]) }
    }
}

/// The redelivery rounds (`RecoverRounds`) tell stored messages apart by topic and id.
extension RecoveredMessage: RecoverRoundItem {
    public var msgId: Int64 { message.id }
}
