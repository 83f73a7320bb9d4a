// server.ini's bytes as text, before any line is parsed.
//
// MetaQ reads the file through Java's default charset, which replaces undecodable bytes with U+FFFD
// without a word. A replaced byte in a topic name, a path or a host name would make the broker use
// a name the operator never wrote, so a file that is not UTF-8 is refused, naming the line and byte
// of the first invalid sequence.

extension ServerConfig {
    /// Parses the bytes of a MetaQ `server.ini`, which must be UTF-8 (a byte-order mark is allowed).
    ///
    /// - Throws: ``ConfigError`` of kind ``ConfigError/Kind/invalidEncoding`` at the first invalid
    ///   UTF-8 sequence, or whatever parsing the decoded text throws.
    public init(parsing bytes: [UInt8], path: String) throws(ConfigError) {
        try self.init(parsing: try ConfigText.decode(bytes, path: path), path: path)
    }
}

enum ConfigText {
    /// `bytes` as a string, or an error at the first byte that is not valid UTF-8. Lines are
    /// counted as ``IniReader`` counts them (`\n`, `\r\n` and `\r` each end one), so the line
    /// number matches every other error about the same file.
    static func decode(_ bytes: [UInt8], path: String) throws(ConfigError) -> String {
        if bytes.starts(with: [0xFF, 0xFE]) || bytes.starts(with: [0xFE, 0xFF]) {
            let mark = bytes.prefix(2).map(hex).joined(separator: " ")
            throw ConfigError(kind: .invalidEncoding, path: path, line: 1,
                              message: "not UTF-8: the file starts with a UTF-16 byte-order mark (\(mark)); save it as UTF-8")
        }
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        var line = 1
        var lineStart = 0
        var afterCarriageReturn = false
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                let byte = encoded.count == 1 ? encoded.first! : 0
                if byte == 0x0D || (byte == 0x0A && !afterCarriageReturn) { line += 1 }
                if byte == 0x0D || byte == 0x0A { lineStart = offset + 1 }
                afterCarriageReturn = byte == 0x0D
                offset += encoded.count
            case .error(let length):
                let sequence = bytes[offset..<offset + length].map(hex).joined(separator: " ")
                throw ConfigError(kind: .invalidEncoding, path: path, line: line,
                                  message: "not UTF-8: invalid byte sequence \(sequence) at byte \(offset - lineStart + 1) "
                                      + "of the line (byte \(offset + 1) of the file); save the file as UTF-8")
            case .emptyInput:
                return String(decoding: bytes, as: UTF8.self)
            }
        }
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16)
        return byte < 16 ? "0" + digits : digits
    }
}
