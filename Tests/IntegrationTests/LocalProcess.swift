import Foundation

/// What the harnesses that run real processes on 127.0.0.1 (`BrokerProcess`, `ZooKeeperServer`)
/// share: free ports, temp directories, stopping by PID.
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

    /// A new, empty directory under the system's temp directory.
    static func makeTemporaryDirectory(prefix: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// SIGTERM by PID, then SIGKILL if it is still running after `graceSeconds`. The exit
    /// status after a clean stop; nil if it had to be killed.
    static func stop(_ process: Process, graceSeconds: Double) -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        // A stopped process would not act on SIGTERM.
        kill(process.processIdentifier, SIGCONT)
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(graceSeconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill9(process); return nil }
        return process.terminationStatus
    }

    /// SIGKILL by PID, and wait for the exit.
    static func kill9(_ process: Process) {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
