/// A broker address from a `meta://host:port` URI (reference §1.7; IPv6 hosts in brackets).
///
/// Pure, so that the config parser (a slave's `master`), the machines and the runtime's
/// connections read an address the same way.
public struct BrokerAddress: Hashable, Sendable, CustomStringConvertible {
    public let host: String
    public let port: Int
    /// `meta://host:port` (built once: every send result carries it).
    public let uri: String

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
        uri = host.utf8.contains(UInt8(ascii: ":")) ? "meta://[\(host)]:\(port)" : "meta://\(host):\(port)"
    }

    /// Reads `meta://host:port` or `host:port`; a path or query after the port (readers of a
    /// slave's znode append `?slaveId=<n>`, §3.1) is ignored. Nil without a host or a port in
    /// 1...65535.
    public init?(uri: String) {
        var rest = Substring(uri)
        if rest.hasPrefix("meta://") { rest = rest.dropFirst("meta://".count) }
        if let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) { rest = rest[..<slash] }
        let host: Substring
        let portText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            guard after.hasPrefix(":") else { return nil }
            portText = after.dropFirst()
        } else {
            guard let colon = rest.lastIndex(of: ":") else { return nil }
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (1...65_535).contains(port) else { return nil }
        self.init(host: String(host), port: port)
    }

    /// Reads an address an operator wrote: exactly `host:port` or `meta://host:port` (IPv6 hosts in
    /// brackets), with no path, query or whitespace. Nil otherwise.
    public init?(configured text: String) {
        var rest = Substring(text)
        if rest.hasPrefix("meta://") { rest = rest.dropFirst("meta://".count) }
        guard !rest.contains(where: { $0 == "/" || $0 == "?" || $0 == "#" || $0.isWhitespace }) else { return nil }
        self.init(uri: String(rest))
    }

    public var description: String { uri }
}
