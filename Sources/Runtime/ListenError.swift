import Glibc
import NIOCore

/// Why the broker could not listen, in an operator's words: the address and port, what went wrong
/// and the usual cause, e.g. `cannot listen on 0.0.0.0:8123: address already in use (is another
/// broker running?)` rather than NIO's `bind(descriptor:ptr:bytes:): Address already in use
/// (errno: 98)`.
public struct ListenError: Error, CustomStringConvertible {
    /// `host:port`, an IPv6 host in brackets.
    public let address: String
    public let reason: String

    init(host: String, port: Int, _ error: any Error) {
        address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        guard let io = error as? IOError else {
            reason = "\(error)"
            return
        }
        switch io.errnoCode {
        case EADDRINUSE: reason = "address already in use (is another broker running?)"
        case EACCES: reason = "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        case EADDRNOTAVAIL: reason = "address not available (is \(host) an address of this machine?)"
        default: reason = SystemErrors.describe(io.errnoCode)
        }
    }

    public var description: String { "cannot listen on \(address): \(reason)" }
}
