// The redo log's bytes (reference §4.3): `int32 L` big-endian | L bytes of protobuf `TxCommand` |
// the attachment of a commit entry. Field numbers and wire types follow the original's
// `TransactionCommands.proto`; see docs/TRANSACTIONS.md "The redo log on disk" for the layout and
// for the one place we differ on purpose (commit entries carry `data_length`). The format has no
// checksum, so decoding also checks what it can of the content (a whole put with its checksum, a
// transaction key): a torn sector must read as damage, not as an entry.

/// What decoding the bytes at a position found.
public enum TxJournalDecodeResult: Equatable, Sendable {
    /// A whole entry of `size` bytes (length prefix, protobuf and attachment).
    case entry(TxJournalEntry, force: Bool, size: Int)
    /// The bytes end inside the entry: a torn tail, or a read window that is too small.
    case incomplete
    /// The bytes are not an entry.
    case damaged(String)
}

/// Encodes and decodes redo log entries, protobuf by hand.
public enum TxJournalCodec {
    /// Bytes of an attachment element without its description: offset, length, checksum, descLen.
    public static let locationFixedBytes = 20
    /// The longest description (`<topic>-<partition>`) an attachment element may carry.
    public static let maxDescriptionBytes = 1024

    /// The largest entry `decode` accepts: room for a put of `maxPutBytes` plus 64 MiB.
    public static func maxEntryBytes(maxPutBytes: Int) -> Int { 64 << 20 + maxPutBytes }

    /// The default bound: 64 MiB plus a 1 MiB put (MetaQ's default `maxMessageSize`).
    public static let defaultMaxEntryBytes = maxEntryBytes(maxPutBytes: 1 << 20)

    // MARK: Encoding

    /// The whole on-disk entry: `int32 L | TxCommand | attachment`. `force` is written only when
    /// true (the original sets it on prepare only, and proto2 omits unset optional fields).
    public static func encode(_ entry: TxJournalEntry, force: Bool) -> [UInt8] {
        var out: [UInt8] = []
        encode(entry, force: force, into: &out)
        return out
    }

    /// The APPEND_MSG entry of `put` with `messageId`, appended to `out`: the put's request line
    /// and body written in place (`scratch` holds the line), the same bytes as encoding
    /// `.appendMessage(messageId:putCommand: Frame.put(put).encoded())`.
    public static func encodeAppendMessage(messageId: Int64, put: PutCommand, scratch: inout [UInt8], into out: inout [UInt8]) {
        scratch.removeAll(keepingCapacity: true)
        put.encodeHeader(into: &scratch)
        appendMessageEntry(messageId: messageId, putLength: scratch.count + put.body.count, force: false, into: &out) { out in
            out.append(contentsOf: scratch)
            out.append(contentsOf: put.body)
        }
    }

    /// An APPEND_MSG entry around `putLength` bytes of put command, which `writePut` appends:
    /// `TxCommand { 1: cmdType = APPEND_MSG (1), 2: AppendMessageCommand { 1: message_id,
    /// 2: put_command }, [3: force = true] }`, lengths worked out first (no intermediate arrays).
    private static func appendMessageEntry(messageId: Int64, putLength: Int, force: Bool, into out: inout [UInt8],
                                           _ writePut: (inout [UInt8]) -> Void) {
        let appendLength = 1 + varintSize(UInt64(bitPattern: messageId)) + 1 + varintSize(UInt64(putLength)) + putLength
        let commandLength = 2 + 1 + varintSize(UInt64(appendLength)) + appendLength + (force ? 2 : 0)
        out.reserveCapacity(out.count + 4 + commandLength)
        appendInt32(&out, Int32(truncatingIfNeeded: commandLength))
        out.append(0x08)
        out.append(0x01)
        out.append(0x12)
        appendVarint(&out, UInt64(appendLength))
        out.append(0x08)
        appendVarint(&out, UInt64(bitPattern: messageId))
        out.append(0x12)
        appendVarint(&out, UInt64(putLength))
        writePut(&out)
        if force {
            out.append(0x18)
            out.append(0x01)
        }
    }

    /// `encode(_:force:)` appended to `out`. An APPEND_MSG entry — one per transactional put —
    /// is written straight into `out` (`appendMessageEntry`); the bytes are the same.
    public static func encode(_ entry: TxJournalEntry, force: Bool, into out: inout [UInt8]) {
        if case .appendMessage(let messageId, let putCommand) = entry {
            appendMessageEntry(messageId: messageId, putLength: putCommand.count, force: force, into: &out) { out in
                out.append(contentsOf: putCommand)
            }
            return
        }
        var command = TxProtobufWriter()
        var attachment: [UInt8] = []
        switch entry {
        case .appendMessage(let messageId, let putCommand):
            var append = TxProtobufWriter()
            append.varintField(1, messageId)
            append.bytesField(2, putCommand)
            command.varintField(1, 1)
            command.bytesField(2, append.bytes)
        case .operation(let type, let wasPrepared, let transactionId, let locations):
            var operation = TxProtobufWriter()
            operation.varintField(1, Int64(type.rawValue))
            operation.varintField(2, wasPrepared ? 1 : 0)
            operation.bytesField(3, Array(transactionId.utf8))
            if type.isCommit {
                // Always present on commits, even 0: a commit without it is read as the
                // original's (which never sets it) and its attachment is found by parsing.
                attachment = encodeAttachment(locations)
                operation.varintField(4, Int64(attachment.count))
            }
            command.varintField(1, 2)
            command.bytesField(2, operation.bytes)
        }
        if force { command.varintField(3, 1) }
        out.reserveCapacity(out.count + 4 + command.bytes.count + attachment.count)
        appendInt32(&out, Int32(truncatingIfNeeded: command.bytes.count))
        out.append(contentsOf: command.bytes)
        out.append(contentsOf: attachment)
    }

    static func varintSize(_ value: UInt64) -> Int {
        var size = 1
        var rest = value >> 7
        while rest != 0 {
            size += 1
            rest >>= 7
        }
        return size
    }

    static func appendVarint(_ out: inout [UInt8], _ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        out.append(UInt8(rest))
    }

    /// A commit's attachment: per location `int64 offset | int32 length | int32 checksum |
    /// int32 descLen | desc`, big-endian, in the order given.
    public static func encodeAttachment(_ locations: [TxPartitionLocation]) -> [UInt8] {
        var out: [UInt8] = []
        for location in locations {
            let description = Array(location.description.utf8)
            appendInt64(&out, location.offset)
            appendInt32(&out, location.length)
            appendInt32(&out, location.checksum)
            appendInt32(&out, Int32(truncatingIfNeeded: description.count))
            out.append(contentsOf: description)
        }
        return out
    }

    // MARK: Decoding

    /// Decodes the entry at the start of `bytes`. `endOfInput` says that no bytes follow the
    /// buffer (the end of the file); otherwise `.incomplete` asks for a larger window. Never traps.
    public static func decode(_ bytes: UnsafeRawBufferPointer, endOfInput: Bool,
                              maxEntryBytes: Int = defaultMaxEntryBytes) -> TxJournalDecodeResult {
        guard bytes.count >= 4 else { return .incomplete }
        let length = Int(readInt32(bytes, at: 0))
        guard length > 0 else { return .damaged("entry length \(length) is not positive") }
        guard length <= maxEntryBytes - 4 else {
            return .damaged("entry length \(length) exceeds the limit of \(maxEntryBytes) bytes")
        }
        guard bytes.count >= 4 + length else { return .incomplete }
        do throws(TxProtobufError) {
            let command = try readCommand(bytes, range: 4..<(4 + length))
            return try finish(command, bytes, headerEnd: 4 + length, endOfInput: endOfInput, maxEntryBytes: maxEntryBytes)
        } catch {
            return .damaged(error.reason)
        }
    }

    /// `decode` over an array (tests, small buffers).
    public static func decode(_ bytes: [UInt8], endOfInput: Bool = true,
                              maxEntryBytes: Int = defaultMaxEntryBytes) -> TxJournalDecodeResult {
        bytes.withUnsafeBytes { decode($0, endOfInput: endOfInput, maxEntryBytes: maxEntryBytes) }
    }

    /// Decodes one attachment element at `index`; nil when the bytes do not hold a valid one
    /// (`incomplete` says whether more bytes could make them one).
    static func readLocation(_ bytes: UnsafeRawBufferPointer, at index: Int, end: Int)
        -> (location: TxPartitionLocation?, size: Int, incomplete: Bool) {
        guard end - index >= locationFixedBytes else { return (nil, 0, true) }
        let offset = readInt64(bytes, at: index)
        let length = readInt32(bytes, at: index + 8)
        let checksum = readInt32(bytes, at: index + 12)
        let descLength = Int(readInt32(bytes, at: index + 16))
        guard descLength > 0, descLength <= maxDescriptionBytes else { return (nil, 0, false) }
        let size = locationFixedBytes + descLength
        guard end - index >= size else { return (nil, 0, true) }
        let start = index + locationFixedBytes
        guard let description = utf8String(bytes, start..<(start + descLength)),
              let (topic, partition) = splitDescription(description) else { return (nil, 0, false) }
        return (TxPartitionLocation(offset: offset, length: length, checksum: checksum,
                                    topic: topic, partition: partition), size, false)
    }

    /// `<topic>-<partition>` split at the last dash; the partition is a non-negative Int32.
    static func splitDescription(_ description: String) -> (String, Int32)? {
        guard let dash = description.lastIndex(of: "-") else { return nil }
        let topic = description[..<dash]
        let digits = description[description.index(after: dash)...]
        guard !topic.isEmpty, !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let partition = Int32(digits) else { return nil }
        return (String(topic), partition)
    }

    static func utf8String(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String? {
        String(validating: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    static func readInt32(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Int32 {
        var value: UInt32 = 0
        for i in 0..<4 { value = value << 8 | UInt32(bytes[index + i]) }
        return Int32(bitPattern: value)
    }

    static func readInt64(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Int64 {
        var value: UInt64 = 0
        for i in 0..<8 { value = value << 8 | UInt64(bytes[index + i]) }
        return Int64(bitPattern: value)
    }

    static func appendInt32(_ out: inout [UInt8], _ value: Int32) {
        let bits = UInt32(bitPattern: value)
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: bits >> UInt32(shift))) }
    }

    static func appendInt64(_ out: inout [UInt8], _ value: Int64) {
        let bits = UInt64(bitPattern: value)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
    }
}
