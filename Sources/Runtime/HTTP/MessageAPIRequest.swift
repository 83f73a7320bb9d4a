import ProtocolCore

/// MetaQ's HTTP message API (reference §7.1) as requests of the TCP protocol: a request becomes
/// the very `put`, `get` or `offset` frame a TCP client would send, encoded and handed to the same
/// connection code (`ConnectionHandler`), so an HTTP put is the same put with the same durability
/// and its answer the same bytes.
///
/// Dispatch on the character after the first `/` of the path (`/p…` put, `/g…` get, `/o…` offset);
/// the rest of the path is ignored, as the original's Jetty handler does (its client puts a broker id
/// there for a load balancer). Anything the wire could not carry or the original could not parse —
/// a missing or non-numeric parameter, whitespace or a control byte in a name, a body whose size is
/// not `length` — is answered `400 Invalid request` here, never sent on. (The original answered some
/// of these 500 with a Java exception's message; COMPATIBILITY.md lists the difference.)
enum MessageAPIRequest {
    /// The answer to a request that is not one.
    static let invalid = "Invalid request"

    /// The opaque the original's HTTP processor gives every command (its answers carry it; HTTP
    /// answers do not show it).
    static let opaque: Int32 = 0

    /// What a request becomes on the wire.
    enum Parsed: Equatable {
        /// A put's command line; its body (`length` bytes, the request's body) follows as it arrives.
        case put(line: [UInt8], length: Int)
        /// A get or offset command.
        case command([UInt8])
    }

    /// The wire bytes for `query`, or nil when the request is invalid. A put needs a
    /// `Content-Length` equal to its `length` parameter (`contentLength`; nil for a chunked body),
    /// at most `maxBodyBytes` (the wire decoder's bound).
    static func parse(_ query: HTTPQuery, contentLength: Int?, maxBodyBytes: Int) -> Parsed? {
        let path = Array(query.path.utf8)
        guard path.count >= 2 else { return nil }
        switch path[1] {
        case UInt8(ascii: "p"):
            guard let topic = token(query["topic"]), let partition = int32(query["partition"]),
                  let flag = int32(query["flag"]), let length = int32(query["length"]), length >= 0,
                  Int(length) == contentLength, Int(length) <= maxBodyBytes else { return nil }
            // A blank checksum is no checksum, as the original's `isNotBlank` test.
            var checksum: Int32?
            if let text = query["checksum"], !text.allSatisfy({ $0 == " " }) {
                guard let value = int32(text) else { return nil }
                checksum = value
            }
            var line: [UInt8] = []
            PutCommand(topic: topic, partition: partition, flag: flag, checksum: checksum, transactionKey: nil, body: [],
                       opaque: opaque).encodeHeader(into: &line, bodyLength: Int(length))
            return .put(line: line, length: Int(length))
        case UInt8(ascii: "g"):
            guard let topic = token(query["topic"]), let group = token(query["group"]),
                  let partition = int32(query["partition"]), let offset = int64(query["offset"]),
                  let maxSize = int32(query["maxsize"]) else { return nil }
            return .command(Frame.get(GetCommand(topic: topic, group: group, partition: partition, offset: offset,
                                                 maxSize: maxSize, opaque: opaque)).encoded())
        case UInt8(ascii: "o"):
            guard let topic = token(query["topic"]), let group = token(query["group"]),
                  let partition = int32(query["partition"]), let offset = int64(query["offset"]) else { return nil }
            return .command(Frame.offset(OffsetCommand(topic: topic, group: group, partition: partition, offset: offset,
                                                       opaque: opaque)).encoded())
        default:
            return nil
        }
    }

    /// The longest name taken: the command line must stay far below the decoder's 4,096-byte limit.
    static let maxTokenBytes = 1024

    /// A name the wire can carry as one token: not empty, no space or control byte. Whether it is a
    /// valid topic or group is the broker's decision, answered as over TCP.
    static func token(_ text: String?) -> String? {
        guard let text, !text.isEmpty, text.utf8.count <= maxTokenBytes,
              text.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else { return nil }
        return text
    }

    /// Java's `Integer.parseInt`: optional sign, decimal digits, within range.
    static func int32(_ text: String?) -> Int32? { int64(text).flatMap { Int32(exactly: $0) } }

    static func int64(_ text: String?) -> Int64? {
        guard let text, !text.isEmpty, text.utf8.count <= 20 else { return nil }
        let digits = text.first == "-" || text.first == "+" ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int64(text.first == "+" ? String(digits) : text)
    }
}
