import Foundation
import ProtocolCore
import Runtime

/// The traffic of `WireFuzzTests`: a seeded mix of frames over a few connections, with what the
/// broker must do for each kind checked as it goes.
struct WireFuzzSession {
    /// A put the broker acknowledged.
    struct Stored: CustomStringConvertible {
        var topic: String
        var partition: Int32
        var offset: Int64
        var body: [UInt8]
        var description: String { "\(topic)-\(partition)@\(offset) (\(body.count) bytes)" }
    }

    let port: Int
    var random: SplitMix64
    let topics: [String]
    let groups = ["g", "../g", "g/../../x", "", "-", "*", "é", String(repeating: "g", count: 300)]
    var connections: [WireConnection?] = [nil, nil, nil]
    var nextOpaque: Int32 = -2_147_483_648
    private(set) var acknowledged: [Stored] = []
    private(set) var unanswered: [String] = []
    private(set) var answered = 0
    private(set) var closedAsExpected = 0

    init(port: Int, seed: UInt64, escapeName: String) {
        self.port = port
        random = SplitMix64(seed: seed)
        topics = ["test", "w-ok", "w-1", "w-/../../escaped", "w-/../../../\(escapeName)", "w-a/b", "w-..",
                  "w-.", "../test", "w-\u{0}x", "w-é", "w-" + String(repeating: "x", count: 200), "nope", "w-", "w-a@b"]
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &random) }
    mutating func pick<T>(_ values: [T]) -> T { values[int(0...values.count - 1)] }

    mutating func run(requests: Int) throws {
        for _ in 0..<requests {
            let slot = int(0...connections.count - 1)
            if connections[slot] == nil { connections[slot] = try WireConnection(host: "127.0.0.1", port: port) }
            let connection = connections[slot]!
            switch int(0...19) {
            case 0: try closing(connection, slot)
            case 1: try cutOff(connection, slot)
            case 2: try ignored(connection)
            default: try wellFormed(connection, slot)
            }
        }
    }

    mutating func opaque() -> Int32 {
        nextOpaque &+= 1
        return nextOpaque
    }

    /// A request the broker must answer, carrying the request's opaque, on an open connection.
    mutating func wellFormed(_ connection: WireConnection, _ slot: Int) throws {
        let (frame, put) = makeRequest()
        try connection.sendRaw(frame.encoded())
        guard let answer = try awaitAnswer(connection, opaque: frame.opaque ?? 0) else {
            unanswered.append("\(frame)")
            connections[slot] = nil
            return
        }
        answered += 1
        guard let put, case .result(let result) = answer, result.code == StatusCode.success else { return }
        let fields = String(decoding: result.body, as: UTF8.self).split(separator: " ")
        guard fields.count == 3, let partition = Int32(fields[1]), let offset = Int64(fields[2]) else {
            unanswered.append("a put answered with \(result)")
            return
        }
        acknowledged.append(Stored(topic: put.topic, partition: partition, offset: offset, body: put.body))
    }

    mutating func makeRequest() -> (Frame, PutCommand?) {
        let opaque = opaque()
        let topic = pick(topics)
        switch int(0...9) {
        case 0...4:
            let body = (0..<pick([0, 1, 5, 100, 1000, 2000, 2028, 2029, 3000])).map { _ in UInt8(int(0...255)) }
            let partition = Int32(pick([-1, 0, 1, 2, 3, -7, 2_147_483_647]))
            let checksum: Int32? = pick([CRC32.metaqChecksum(body), CRC32.metaqChecksum(body), -1, 12345, nil])
            let put = PutCommand(topic: topic, partition: partition, flag: Int32(pick([0, 0, 2, -1])),
                                 checksum: checksum, body: body, opaque: opaque)
            return (.put(put), put)
        case 5:
            return (.get(GetCommand(topic: topic, group: pick(groups), partition: Int32(pick([0, 1, 2, -1, 99])),
                                    offset: pick([0, 1, 20, 4096, -5, Int64.max]), maxSize: Int32(pick([0, -1, 1, 20, 1 << 20])),
                                    opaque: opaque)), nil)
        case 6:
            return (.offset(OffsetCommand(topic: topic, group: pick(groups), partition: Int32(pick([0, 1, -3])),
                                          offset: pick([0, 100, -1, Int64.max]), opaque: opaque)), nil)
        case 7:
            return (.stats(StatsCommand(item: pick([nil, "", "topics", "offsets", "realtime", "help", topic, "reset"]),
                                        opaque: opaque)), nil)
        case 8:
            return (.version(VersionCommand(opaque: opaque)), nil)
        case 9 where int(0...1) == 0:
            // Every type but END, which is never answered (§4.2).
            let type = pick(TransactionType.allCases.filter { $0 != .end })
            return (.transaction(TransactionCommand(transactionKey: pick(["TX:s:1", "XID:1:ab:cd:q", "null", "../x"]),
                                                    sessionId: "s", type: type, opaque: opaque)), nil)
        default:
            return (.sync(SyncCommand(topic: topic, partition: 0, flag: 0, msgId: 123, checksum: -1,
                                      body: Array("abc".utf8), opaque: opaque)), nil)
        }
    }

    /// The answer with `opaque`, skipping answers to nothing pending; nil if the connection closed.
    mutating func awaitAnswer(_ connection: WireConnection, opaque: Int32) throws -> Frame? {
        while let frame = try connection.receive() {
            if frame.opaque == opaque { return frame }
        }
        return nil
    }

    /// A frame the broker cannot decode: it closes the connection without an answer (§1.1).
    mutating func closing(_ connection: WireConnection, _ slot: Int) throws {
        let frames = ["bogus command\r\n", "put test 0 abc 0 1\r\n", "put test 0 99999999 0 -1 1\r\n",
                      String(repeating: "p", count: 5000), "get test g\r\n", "\u{0}\u{0}\u{0}\r\n"]
        try connection.sendRaw(Array(pick(frames).utf8))
        if try connection.receive() == nil { closedAsExpected += 1 } else { unanswered.append("no close after garbage") }
        connections[slot] = nil
    }

    /// A put whose body never comes in full: the client goes away mid-frame.
    mutating func cutOff(_ connection: WireConnection, _ slot: Int) throws {
        let length = pick([10, 1000, 2_000_000])
        try connection.sendRaw(Array("put test 0 \(length) 0 -1 \(opaque())\r\n".utf8) + [UInt8](repeating: 7, count: length / 2))
        connections[slot] = nil
    }

    /// Answers are not requests: the broker drops them; a `version` after them is still answered.
    mutating func ignored(_ connection: WireConnection) throws {
        try connection.sendRaw(Array("result 200 2 \(opaque())\r\nok".utf8) + Array("value 3 \(opaque())\r\nabc".utf8))
        let probe = opaque()
        try connection.send(.version(VersionCommand(opaque: probe)))
        if try awaitAnswer(connection, opaque: probe) != nil { answered += 1 } else { unanswered.append("version after answers") }
    }
}
