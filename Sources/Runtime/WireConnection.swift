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
    /// Receive buffer, reused by every `recv`.
    var chunk = [UInt8](repeating: 0, count: 256 << 10)
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
            // No close here: every stored property is set, so `deinit` runs after the throw and
            // closes `fd`; a second close could hit a descriptor another thread opened meanwhile.
            throw Failure(description: "cannot connect to meta://\(host):\(port): \(String(cString: strerror(code)))")
        }
        // No Nagle: a pipelining sender would otherwise hold each small batch of requests until
        // the broker's answer to the previous one acknowledges it, adding a round trip to the
        // latency of every batch after the first.
        var noDelay: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
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
        while true {
            if let frame = try decoder.next() { return frame }
            guard readOnce() else { return nil }
        }
    }

    /// Calls `body` with every frame already received, reading from the socket (once, blocking)
    /// only when none is buffered. False when the broker closed the connection or nothing came
    /// within the timeout. Pipelining clients use this to take many answers per system call.
    public func receiveAvailable(_ body: (Frame) throws -> Void) throws -> Bool {
        var any = false
        while true {
            while let frame = try decoder.next() {
                any = true
                try body(frame)
            }
            if any { return true }
            guard readOnce() else { return false }
        }
    }

    /// One `recv` (blocking up to the receive timeout) handing the raw bytes to `body`, for
    /// clients that scan answers themselves (`ResultScanner`); false when the broker closed the
    /// connection or nothing came. Not to be mixed with `receive()` on the same connection.
    public func receiveRaw(_ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Bool {
        precondition(decoder.bufferedByteCount == 0, "receiveRaw after receive() on one connection")
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return false }
        try chunk.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        return true
    }

    /// Whether a frame is buffered or bytes arrive within `milliseconds` (poll), so a caller
    /// with its own schedule (a rate-limited load generator) is not stuck in `recv`.
    public func waitReadable(milliseconds: Int32) -> Bool {
        if decoder.bufferedByteCount > 0 { return true }
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, milliseconds) > 0
    }

    private func readOnce() -> Bool {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return false }
        chunk.withUnsafeBytes { decoder.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        return true
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
