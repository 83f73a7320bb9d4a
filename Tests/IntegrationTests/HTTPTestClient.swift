import Foundation
import ProcessHarness

/// A minimal HTTP/1.1 client on 127.0.0.1 for the tests of the broker's HTTP servers: it sends
/// exactly the bytes given (so tests can pipeline or send malformed requests) and parses answers
/// framed by `Content-Length`.
final class HTTPTestClient {
    struct Response {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    private let raw: RawClient
    private var received: [UInt8] = []

    init(port: Int) throws { raw = try RawClient(port: port) }

    /// One request's bytes: `method target`, Host, Content-Length when there is a body, `extra` headers.
    static func request(_ method: String, _ target: String, body: [UInt8] = [], headers extra: [String] = []) -> [UInt8] {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        for line in extra { head += line + "\r\n" }
        return Array((head + "\r\n").utf8) + body
    }

    func send(_ bytes: [UInt8]) throws { try raw.sendAll(bytes) }

    /// Sends one request and reads its answer.
    func exchange(_ method: String, _ target: String, body: [UInt8] = [], headers: [String] = []) throws -> Response {
        try send(Self.request(method, target, body: body, headers: headers))
        return try response()
    }

    /// One request on a fresh connection, asking for JSON with `json` (the dashboard's switch).
    static func fetch(port: Int, _ method: String, _ target: String, json: Bool = false) throws -> Response {
        try HTTPTestClient(port: port).exchange(method, target, headers: json ? ["Content-Type: application/json"] : [])
    }

    /// The next answer; throws if the connection closes or nothing complete arrives within the deadline.
    func response(timeoutSeconds: Double = 15) throws -> Response {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while true {
            if let response = parse() { return response }
            guard Date() < deadline, let bytes = raw.readSome(until: deadline), !bytes.isEmpty else {
                throw HarnessError("no complete HTTP response; received: \(String(decoding: received.prefix(200), as: UTF8.self))")
            }
            received += bytes
        }
    }

    /// Whether the server closes the connection within the deadline.
    func waitForClose(timeoutSeconds: Double = 15) -> Bool { raw.waitForClose(timeoutSeconds: timeoutSeconds) }

    private func parse() -> Response? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = received.indices.dropLast(3).first(where: { Array(received[$0..<$0 + 4]) == separator }) else { return nil }
        let lines = String(decoding: received[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        let bodyStart = end + 4
        guard received.count >= bodyStart + length else { return nil }
        let body = Array(received[bodyStart..<bodyStart + length])
        received.removeFirst(bodyStart + length)
        return Response(status: status, headers: headers, body: body)
    }
}
