/// A message as MetaQ clients see it: an id, a flag, an optional attribute and data.
public struct Message: Equatable, Sendable {
    public var id: Int64
    public var flag: Int32
    public var attribute: String?
    public var data: [UInt8]
    /// Absolute offset of the record in its partition (reference §2.3).
    public var offset: Int64

    public init(id: Int64, flag: Int32, attribute: String?, data: [UInt8], offset: Int64) {
        self.id = id
        self.flag = flag
        self.attribute = attribute
        self.data = data
        self.offset = offset
    }
}

/// The payload encoding of `put` bodies and records (reference §1.4.1): with an attribute,
/// `int32 attrLen | attribute (UTF-8) | data` and flag bit 0 set; otherwise just the data.
public enum MessagePayload {
    public static let attributeFlag: Int32 = 1

    /// The payload bytes and the flag (bit 0 set iff there is an attribute; other bits of `flag` kept).
    public static func encode(attribute: String?, data: [UInt8], flag: Int32 = 0) -> (flag: Int32, payload: [UInt8]) {
        guard let attribute else { return (flag & ~attributeFlag, data) }
        let attr = Array(attribute.utf8)
        var payload: [UInt8] = []
        payload.reserveCapacity(4 + attr.count + data.count)
        payload.appendBigEndian(Int32(attr.count))
        payload.append(contentsOf: attr)
        payload.append(contentsOf: data)
        return (flag | attributeFlag, payload)
    }

    /// Splits a payload into attribute and data; nil when the attribute header is inconsistent.
    public static func decode(flag: Int32, payload: ArraySlice<UInt8>) -> (attribute: String?, data: ArraySlice<UInt8>)? {
        guard flag & attributeFlag != 0 else { return (nil, payload) }
        guard payload.count >= 4 else { return nil }
        let s = payload.startIndex
        let n = Int(Int32(bitPattern: UInt32(payload[s]) << 24 | UInt32(payload[s + 1]) << 16
                          | UInt32(payload[s + 2]) << 8 | UInt32(payload[s + 3])))
        guard n >= 0, payload.count - 4 >= n else { return nil }
        let attr = String(decoding: payload[(s + 4)..<(s + 4 + n)], as: UTF8.self)
        return (attr, payload[(s + 4 + n)...])
    }
}

/// Walks the records of a byte range such as a `get` response body (reference §5.1): yields whole
/// verified records, stops at a cut trailing record, and reports damage with its offset.
public struct RecordIterator: IteratorProtocol, Sequence {
    public enum Element: Equatable, Sendable {
        case message(Message)
        /// The rest of the bytes (starting at `offset`) are a cut record: fetch again from there.
        case incomplete(offset: Int64)
        /// The bytes at `offset` are not a valid record. Iteration stops here — except for
        /// `.badAttributeHeader`, a whole checksummed record whose attribute length does not fit
        /// its payload: the chain of records is intact, so iteration goes on after it.
        case damaged(offset: Int64, RecordDamage)
    }

    private let bytes: [UInt8]
    private let baseOffset: Int64
    private let maxPayloadBytes: Int
    private var index = 0
    private var finished = false

    /// `baseOffset` is the partition offset of `bytes[0]`.
    public init(_ bytes: [UInt8], baseOffset: Int64, maxPayloadBytes: Int = Int(Int32.max)) {
        self.bytes = bytes
        self.baseOffset = baseOffset
        self.maxPayloadBytes = maxPayloadBytes
    }

    /// Bytes of whole records consumed so far: the next fetch offset is `baseOffset + consumedBytes`.
    public var consumedBytes: Int { index }

    public mutating func next() -> Element? {
        guard !finished, index < bytes.count else { return nil }
        let start = index
        let parsed = bytes.withUnsafeBytes { Record.parse($0, at: start, maxPayloadBytes: maxPayloadBytes) }
        let offset = baseOffset + Int64(start)
        switch parsed {
        case .incomplete:
            finished = true
            return .incomplete(offset: offset)
        case .damaged(let damage):
            finished = true
            return .damaged(offset: offset, damage)
        case .record(let header, let payloadStart):
            let payload = bytes[payloadStart..<payloadStart + Int(header.length)]
            index = payloadStart + Int(header.length)
            guard let (attribute, data) = MessagePayload.decode(flag: header.flag, payload: payload) else {
                return .damaged(offset: offset, .badAttributeHeader)
            }
            return .message(Message(id: header.msgId, flag: header.flag, attribute: attribute,
                                    data: Array(data), offset: offset))
        }
    }
}
