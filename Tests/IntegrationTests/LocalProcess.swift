import Foundation
import Testing
import ProcessHarness

/// What the harnesses that run real processes on 127.0.0.1 (`BrokerProcess`, `ZooKeeperServer`)
/// share: free ports, temp directories, stopping by PID (children are `ChildProcess`es).
enum LocalProcess {
    /// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw HarnessError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port` right now.
    ///
    /// Not `try? WireConnection(...)`: when its connect fails, its init closes the socket and its
    /// deinit closes the same number again; a descriptor another thread opened in between (a NIO
    /// channel, a child's pipe) was then closed under it — a NIO selector assertion crashed a run.
    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// Waits until something accepts on 127.0.0.1:`port` (a broker's second listener: its HTTP
    /// API or dashboard, which open right after the port `BrokerProcess.start` waits for).
    static func waitUntilAccepting(port: Int, timeoutSeconds: Double = 20, what: String) throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while !accepts(port: port) {
            guard Date() < deadline else { throw HarnessError("\(what) on port \(port) did not accept connections within \(timeoutSeconds) s") }
            usleep(20_000)
        }
    }

    /// A new, empty directory under the system's temp directory.
    static func makeTemporaryDirectory(prefix: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// SIGCONT and SIGTERM by PID, then SIGKILL if it is still running after `graceSeconds`.
    /// The exit status after a clean stop; nil if it had to be killed.
    static func stop(_ process: ChildProcess, graceSeconds: Double) -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        // A stopped process would not act on SIGTERM.
        process.send(SIGCONT)
        process.send(SIGTERM)
        if process.waitUntilExit(timeoutSeconds: graceSeconds) { return process.terminationStatus }
        kill9(process)
        return nil
    }

    /// SIGKILL by PID, and wait for the exit — at most `timeoutSeconds`: a test that cannot see
    /// its child end records that, rather than hang the whole run.
    static func kill9(_ process: ChildProcess, timeoutSeconds: Double = 10) {
        guard process.send(SIGKILL) else { return }
        if !process.waitUntilExit(timeoutSeconds: timeoutSeconds) {
            let message = "pid \(process.processIdentifier) (\(process.executable)) not reaped \(timeoutSeconds) s after SIGKILL"
            FileHandle.standardError.write(Data("harness error: \(message)\n".utf8))
            Issue.record(HarnessError(message))
        }
    }
}
