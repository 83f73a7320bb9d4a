import Glibc
import ProtocolCore

/// A blocking MetaQ wire connection for tools and tests (the broker itself uses NIO): send
/// frames, receive frames decoded by `FrameDecoder`, with a receive timeout.
public final class WireConnection {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    let fd: Int32
    var decoder = FrameDecoder(limits: .init(maxLineBytes: 4096, maxBodyBytes: 64 << 20))
    public let host: String
    public let port: Int

    /// Connects to `host:port` (an IPv4 address or `localhost`).
    public init(host: String, port: Int, timeoutSeconds: Int = 10) throws {
        self.host = host
        self.port = port
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host == "localhost" ? "127.0.0.1" : host)
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else {
            let code = errno
            Glibc.close(fd)
            throw Failure(description: "cannot connect to meta://\(host):\(port): \(String(cString: strerror(code)))")
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    public func send(_ frame: Frame) throws { try sendRaw(frame.encoded()) }

    public func sendRaw(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send to meta://\(host):\(port) failed: errno \(errno)") }
            sent += n
        }
    }

    /// The next frame; nil when the broker closed the connection or nothing came within the timeout.
    public func receive() throws -> Frame? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let frame = try decoder.next() { return frame }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            decoder.feed(chunk[0..<n])
        }
    }

    /// Sends `frame` and waits for the answer carrying its opaque.
    public func request(_ frame: Frame) throws -> Frame {
        try send(frame)
        while let answer = try receive() {
            if answer.opaque == frame.opaque { return answer }
        }
        throw Failure(description: "no answer from meta://\(host):\(port)")
    }
}
