import Glibc
import Testing
@testable import Runtime

@Suite("WireConnection socket options")
struct WireConnectionTests {
    /// A pipelining sender (the load generator, the tools) with Nagle on holds each small batch
    /// of puts until the broker's answer to the previous batch acknowledges it; under group
    /// commit that added a whole sync cycle to the latency of most puts.
    @Test("connections disable Nagle (TCP_NODELAY)")
    func noDelay() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(listener >= 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw -> Bool in
                bind(listener, raw, length) == 0 && listen(listener, 1) == 0 && getsockname(listener, raw, &length) == 0
            }
        }
        try #require(bound)
        let connection = try WireConnection(host: "127.0.0.1", port: Int(UInt16(bigEndian: address.sin_port)))
        var value: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        #expect(getsockopt(connection.fd, Int32(IPPROTO_TCP), TCP_NODELAY, &value, &size) == 0)
        #expect(value != 0)
    }
}
