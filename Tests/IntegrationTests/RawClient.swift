import Foundation
import ProtocolCore
import ProcessHarness

/// A bare TCP client on 127.0.0.1 for the limit tests: it sends without blocking (a broker that
/// does not read must not hang the test) and tells a connection the broker closed from a silent one.
final class RawClient {
    let fd: Int32
    private var decoder = FrameDecoder()

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        // No close on failure: `deinit` runs after the throw and closes `fd` (once).
        guard connected else { throw HarnessError("connect to 127.0.0.1:\(port): errno \(errno)") }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    deinit { Glibc.close(fd) }

    /// Sends as much of `bytes` as the socket takes now; how much that was.
    @discardableResult
    func sendSome(_ bytes: [UInt8]) -> Int {
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        return max(0, n)
    }

    /// Sends all of `bytes`, waiting for room up to `timeoutSeconds`.
    func sendAll(_ bytes: [UInt8], timeoutSeconds: Double = 15) throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        var sent = 0
        while sent < bytes.count {
            sent += sendSome(Array(bytes[sent...]))
            guard sent < bytes.count else { return }
            guard Date() < deadline else { throw HarnessError("sent \(sent) of \(bytes.count) bytes in \(timeoutSeconds) s") }
            var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&descriptor, 1, 50)
        }
    }

    /// The next frame from the broker; nil if it closed the connection or sent none in time.
    func receive(timeoutSeconds: Double = 15) throws -> Frame? {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while true {
            if let frame = try decoder.next() { return frame }
            guard let bytes = read(until: deadline), !bytes.isEmpty else { return nil }
            decoder.feed(bytes)
        }
    }

    /// Waits until the broker closes the connection (true) or `timeoutSeconds` pass (false),
    /// dropping whatever arrives meanwhile.
    func waitForClose(timeoutSeconds: Double = 15) -> Bool {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while let bytes = read(until: deadline) {
            if bytes.isEmpty { return true }
        }
        return false
    }

    /// Bytes read once the socket is readable: empty at end of stream (or a reset), nil at the deadline.
    func readSome(until deadline: Date) -> [UInt8]? { read(until: deadline) }

    private func read(until deadline: Date) -> [UInt8]? {
        while Date() < deadline {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let waitMs = Int32(max(1, min(200, deadline.timeIntervalSinceNow * 1000)))
            guard poll(&descriptor, 1, waitMs) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { return Array(buffer[0..<n]) }
            if n == 0 || (errno != EAGAIN && errno != EINTR) { return [] }
        }
        return nil
    }
}
