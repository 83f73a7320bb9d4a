// Decoding the protobuf messages of an entry and its attachment. Required fields that are missing,
// enum values the original does not define, and strings that are not UTF-8 make the entry damaged;
// unknown fields are skipped as protobuf says.

/// `TxCommand` as read: the command type, where its content lies, and the force flag.
struct TxDecodedCommand {
    var type: UInt64
    var content: Range<Int>
    var force: Bool
}

/// What follows the protobuf of an entry.
enum TxEntryShape {
    case appendMessage(messageId: Int64, putCommand: [UInt8])
    case operation(type: TxOperationType, wasPrepared: Bool, transactionId: String, dataLength: Int?)
}

extension TxJournalCodec {
    static func readCommand(_ bytes: UnsafeRawBufferPointer, range: Range<Int>) throws(TxProtobufError) -> TxDecodedCommand {
        var reader = TxProtobufReader(bytes, range: range)
        var type: UInt64?
        var content: Range<Int>?
        var force = false
        while let (field, value) = try reader.nextField() {
            switch field {
            case 1: type = try required(value, "TxCommand.cmdType").varintValue(field: "TxCommand.cmdType")
            case 2: content = try required(value, "TxCommand.cmd_content").bytesRange(field: "TxCommand.cmd_content")
            case 3: force = try required(value, "TxCommand.force").varintValue(field: "TxCommand.force") != 0
            default: continue
            }
        }
        guard let type else { throw TxProtobufError(reason: "TxCommand without cmdType") }
        guard let content else { throw TxProtobufError(reason: "TxCommand without cmd_content") }
        return TxDecodedCommand(type: type, content: content, force: force)
    }

    static func readShape(_ bytes: UnsafeRawBufferPointer, _ command: TxDecodedCommand) throws(TxProtobufError) -> TxEntryShape {
        switch command.type {
        case 1: return try readAppend(bytes, range: command.content)
        case 2: return try readOperation(bytes, range: command.content)
        default: throw TxProtobufError(reason: "unknown TxCommandType \(command.type)")
        }
    }

    static func readAppend(_ bytes: UnsafeRawBufferPointer, range: Range<Int>) throws(TxProtobufError) -> TxEntryShape {
        var reader = TxProtobufReader(bytes, range: range)
        var messageId: Int64?
        var put: Range<Int>?
        while let (field, value) = try reader.nextField() {
            switch field {
            case 1: messageId = Int64(bitPattern: try required(value, "message_id").varintValue(field: "message_id"))
            case 2: put = try required(value, "put_command").bytesRange(field: "put_command")
            default: continue
            }
        }
        guard let messageId else { throw TxProtobufError(reason: "AppendMessageCommand without message_id") }
        guard let put else { throw TxProtobufError(reason: "AppendMessageCommand without put_command") }
        let putCommand = Array(bytes[put])
        try validatePut(putCommand)
        return .appendMessage(messageId: messageId, putCommand: putCommand)
    }

    static func readOperation(_ bytes: UnsafeRawBufferPointer, range: Range<Int>) throws(TxProtobufError) -> TxEntryShape {
        var reader = TxProtobufReader(bytes, range: range)
        var typeNumber: UInt64?
        var wasPrepared: Bool?
        var transactionId: Range<Int>?
        var dataLength: Int?
        while let (field, value) = try reader.nextField() {
            switch field {
            case 1: typeNumber = try required(value, "type").varintValue(field: "type")
            case 2: wasPrepared = try required(value, "was_prepared").varintValue(field: "was_prepared") != 0
            case 3: transactionId = try required(value, "transaction_id").bytesRange(field: "transaction_id")
            case 4:
                // int32: protobuf keeps the low 32 bits of the varint.
                let raw = try required(value, "data_length").varintValue(field: "data_length")
                dataLength = Int(Int32(truncatingIfNeeded: raw))
            default: continue
            }
        }
        guard let typeNumber else { throw TxProtobufError(reason: "TransactionOperation without type") }
        guard typeNumber <= 5, let type = TxOperationType(rawValue: Int32(typeNumber)) else {
            throw TxProtobufError(reason: "unknown TransactionType \(typeNumber)")
        }
        guard let wasPrepared else { throw TxProtobufError(reason: "TransactionOperation without was_prepared") }
        guard let transactionId else { throw TxProtobufError(reason: "TransactionOperation without transaction_id") }
        guard let id = utf8String(bytes, transactionId) else { throw TxProtobufError(reason: "transaction_id is not UTF-8") }
        try validateTransactionId(id)
        if let dataLength, dataLength < 0 { throw TxProtobufError(reason: "negative data_length \(dataLength)") }
        return .operation(type: type, wasPrepared: wasPrepared, transactionId: id, dataLength: dataLength)
    }

    /// The redo log has no checksum of its own: a sector torn inside an unsynced entry can leave its
    /// framing intact and its content zeroed. A put must therefore be exactly one put frame of the
    /// wire protocol, with a body matching its checksum when it has one (not -1).
    static func validatePut(_ put: [UInt8]) throws(TxProtobufError) {
        var decoder = FrameDecoder(limits: FrameDecoder.Limits(maxLineBytes: 4096, maxBodyBytes: max(put.count, 1)))
        decoder.feed(put)
        let frame: Frame?
        do throws(WireError) {
            frame = try decoder.next()
        } catch {
            throw TxProtobufError(reason: "put_command is not a put: \(error)")
        }
        guard case .put(let command)? = frame, decoder.bufferedByteCount == 0 else {
            throw TxProtobufError(reason: "put_command is not exactly one put")
        }
        if command.requiresChecksumCheck, CRC32.metaqChecksum(command.body) != command.checksum {
            throw TxProtobufError(reason: "put_command's body does not match its checksum")
        }
    }

    /// A transaction id is `TX:…` or `XID:…` (§4.1) of printable characters; anything else is
    /// a torn or foreign entry.
    static func validateTransactionId(_ id: String) throws(TxProtobufError) {
        guard id.hasPrefix("TX:") || id.hasPrefix("XID:"), id.utf8.count <= 4096,
              !id.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw TxProtobufError(reason: "transaction_id \(String(reflecting: String(id.prefix(64)))) is not a transaction key")
        }
    }

    private static func required(_ value: TxProtobufValue?, _ field: String) throws(TxProtobufError) -> TxProtobufValue {
        guard let value else { throw TxProtobufError(reason: "\(field) has a fixed-size wire type") }
        return value
    }

    /// The entry once its protobuf is read: the attachment of a commit, if any, follows.
    static func finish(_ command: TxDecodedCommand, _ bytes: UnsafeRawBufferPointer, headerEnd: Int,
                       endOfInput: Bool, maxEntryBytes: Int) throws(TxProtobufError) -> TxJournalDecodeResult {
        switch try readShape(bytes, command) {
        case .appendMessage(let messageId, let putCommand):
            return .entry(.appendMessage(messageId: messageId, putCommand: putCommand), force: command.force, size: headerEnd)
        case .operation(let type, let wasPrepared, let transactionId, let dataLength):
            guard type.isCommit else {
                guard (dataLength ?? 0) == 0 else { throw TxProtobufError(reason: "data_length \(dataLength ?? 0) on a \(type) entry") }
                return .entry(.operation(type: type, wasPrepared: wasPrepared, transactionId: transactionId, locations: []),
                              force: command.force, size: headerEnd)
            }
            let attachment: (locations: [TxPartitionLocation], end: Int)
            if let dataLength {
                guard dataLength <= maxEntryBytes - headerEnd else {
                    throw TxProtobufError(reason: "data_length \(dataLength) exceeds the limit of \(maxEntryBytes) bytes")
                }
                guard bytes.count >= headerEnd + dataLength else { return .incomplete }
                attachment = (try readAttachment(bytes, headerEnd..<(headerEnd + dataLength)), headerEnd + dataLength)
            } else {
                guard let found = try readUndeclaredAttachment(bytes, from: headerEnd, endOfInput: endOfInput,
                                                               maxEntryBytes: maxEntryBytes) else { return .incomplete }
                attachment = found
            }
            return .entry(.operation(type: type, wasPrepared: wasPrepared, transactionId: transactionId,
                                     locations: attachment.locations), force: command.force, size: attachment.end)
        }
    }

    /// Exactly the elements of `range`; anything left over is damage.
    static func readAttachment(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) throws(TxProtobufError) -> [TxPartitionLocation] {
        var index = range.lowerBound
        var locations: [TxPartitionLocation] = []
        while index < range.upperBound {
            let (location, size, _) = readLocation(bytes, at: index, end: range.upperBound)
            guard let location else { throw TxProtobufError(reason: "unreadable attachment element at byte \(index - range.lowerBound)") }
            locations.append(location)
            index += size
        }
        return locations
    }

    /// The attachment of a commit written by the original, which never sets `data_length`: one or
    /// more elements, up to the end of the input or to the next whole entry. An element starts with
    /// an int64 offset whose high half is a length prefix no valid entry has (0 below 4 GiB), so the
    /// two cannot be confused in practice. Nil asks for more bytes.
    static func readUndeclaredAttachment(_ bytes: UnsafeRawBufferPointer, from start: Int, endOfInput: Bool,
                                         maxEntryBytes: Int) throws(TxProtobufError) -> (locations: [TxPartitionLocation], end: Int)? {
        var index = start
        var locations: [TxPartitionLocation] = []
        var cutOff = false
        while index < bytes.count {
            let next = entryStart(bytes, at: index)
            if next == .yes { break }
            let (location, size, incomplete) = readLocation(bytes, at: index, end: bytes.count)
            if let location {
                guard index + size <= maxEntryBytes else { throw TxProtobufError(reason: "attachment exceeds the limit of \(maxEntryBytes) bytes") }
                locations.append(location)
                index += size
                continue
            }
            if !endOfInput && (incomplete || next == .needMore) { return nil }
            cutOff = incomplete
            break
        }
        if index == bytes.count && !endOfInput { return nil }
        guard !locations.isEmpty else {
            // A torn commit: its attachment is missing or cut off at the end of the input.
            if endOfInput && (index == bytes.count || cutOff) { return nil }
            throw TxProtobufError(reason: "commit without data_length and without a readable attachment")
        }
        return (locations, index)
    }

    enum EntryStart { case yes, no, needMore }

    /// Whether a whole entry header (length prefix and a valid protobuf) starts at `index`.
    static func entryStart(_ bytes: UnsafeRawBufferPointer, at index: Int) -> EntryStart {
        guard bytes.count - index >= 4 else { return .needMore }
        let length = Int(readInt32(bytes, at: index))
        guard length > 0, length <= defaultMaxEntryBytes else { return .no }
        guard bytes.count - index - 4 >= length else { return .needMore }
        do throws(TxProtobufError) {
            _ = try readShape(bytes, try readCommand(bytes, range: (index + 4)..<(index + 4 + length)))
            return .yes
        } catch {
            return .no
        }
    }
}
