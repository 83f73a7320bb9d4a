import Foundation
import ProtocolCore
import Runtime
import ProcessHarness

/// A real `metaq-server` process on 127.0.0.1 with its own temp data directory, stopped by PID.
final class BrokerProcess {
    let directory: String
    let port: Int
    let process = ChildProcess()
    let logPath: String
    /// Start with `--local` (the default); false to check that cluster mode is refused.
    var local = true
    /// A command the broker is started through, e.g. `["/usr/bin/prlimit", "--nofile=64:64", "--"]`
    /// (it must exec the broker, so the process stays the broker's).
    var launcher: [String] = []
    /// More arguments of `start`, e.g. `["--slave", path]`.
    var extraArguments: [String] = []
    /// The dashboard's port (`--dashboard-port`); 0, the default here, turns it off so brokers of
    /// parallel tests do not all want 8120.
    var dashboardPort = 0

    /// The `metaq-server` binary built beside the test bundle.
    static var binary: String { product("metaq-server") }

    /// A product of this package, built beside the test bundle.
    static func product(_ name: String) -> String {
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let beside = runner.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/\(name)").path
    }

    /// Runs the `metaq` tool against this broker; its exit status and standard output.
    func tool(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
        try Self.tool(arguments + ["--server", "meta://127.0.0.1:\(port)"], input: input)
    }

    /// Runs the `metaq` tool; its exit status and standard output (standard error is dropped).
    static func tool(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
        let result = try ChildProcess.run(product("metaq"), arguments, input: input.map { Array($0.utf8) })
        return (result.status, String(decoding: result.output, as: UTF8.self))
    }

    /// A broker on `port`, or on a free port when nil (a restart passes the port it had before).
    init(directory: String, config: String, port: Int? = nil) throws {
        self.directory = directory
        self.port = try port ?? LocalProcess.freePort()
        logPath = directory + "/broker.log"
        try config.write(toFile: directory + "/server.ini", atomically: true, encoding: .utf8)
        guard FileManager.default.createFile(atPath: logPath, contents: nil) else { throw HarnessError("cannot create \(logPath)") }
    }

    func start() throws {
        try spawn()
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if LocalProcess.accepts(port: port) { return }
            guard process.isRunning else { break }
            usleep(50_000)
        }
        stopHard()
        throw HarnessError("broker did not accept connections; log:\n" + log())
    }

    /// Starts the process without waiting for it to listen.
    func spawn() throws {
        let arguments = (local ? ["start", "--local"] : ["start"]) + ["-f", directory + "/server.ini",
                         "--data", directory + "/data", "--port", "\(port)", "--host", "127.0.0.1", "--foreground",
                         "--dashboard-port", "\(dashboardPort)"]
            + extraArguments
        process.executable = launcher.first ?? Self.binary
        process.arguments = launcher.isEmpty ? arguments : Array(launcher.dropFirst()) + [Self.binary] + arguments
        process.standardOutput = .file(logPath)
        process.standardError = .standardOutput
        try process.run()
    }

    /// SIGTERM by PID; the exit status after a clean stop.
    func stop(timeoutSeconds: Double = 15) -> Int32? {
        LocalProcess.stop(process, graceSeconds: timeoutSeconds)
    }

    func stopHard() {
        LocalProcess.kill9(process)
    }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The last non-empty line of the log.
    func lastLogLine() -> String {
        log().split(separator: "\n").last.map(String.init) ?? ""
    }

    /// Waits until the log has `occurrence` lines containing `text`; the last of them, or nil after
    /// `timeoutSeconds`.
    func waitForLog(_ text: String, occurrence: Int = 1, timeoutSeconds: Double = 15,
                    pollMicroseconds: UInt32 = 20_000) -> String? {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        repeat {
            let lines = logLines(containing: text)
            if lines.count >= occurrence { return lines[occurrence - 1] }
            usleep(pollMicroseconds)
        } while Date() < deadline
        return nil
    }

    func logLines(containing text: String) -> [String] {
        log().split(separator: "\n").filter { $0.contains(text) }.map(String.init)
    }

    /// Every message of `topic`-`partition` from its first offset to its end, by offset (1 MiB gets).
    func readAll(topic: String = "test", partition: Int32) throws -> [Int64: Message] {
        let connection = try WireConnection(host: "127.0.0.1", port: port)
        var stored: [Int64: Message] = [:]
        var offset: Int64 = 0
        while case .value(let value) = try connection.request(.get(GetCommand(topic: topic, group: "g", partition: partition,
                                                                              offset: offset, maxSize: 1 << 20, opaque: 1))) {
            var records = RecordIterator(value.body, baseOffset: offset)
            while case .message(let m)? = records.next() { stored[m.offset] = m }
            guard records.consumedBytes > 0 else { break }
            offset += Int64(records.consumedBytes)
        }
        return stored
    }

    /// The broker's resident memory in bytes (`VmRSS` of /proc/<pid>/status).
    func residentBytes() -> Int? {
        let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return Int(line.dropFirst("VmRSS:".count).split(whereSeparator: \.isWhitespace).first ?? "").map { $0 * 1024 }
    }
}
