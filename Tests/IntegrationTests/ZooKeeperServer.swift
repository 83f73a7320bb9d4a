import Foundation
import ProcessHarness

/// Debian's ZooKeeper 3.8 server, started by hand on 127.0.0.1 with its own temp data
/// directory and port, stopped by PID (toolchain.md §2).
final class ZooKeeperServer {
    let directory: String
    let port: Int
    private var process: ChildProcess?

    var connectString: String { "127.0.0.1:\(port)" }
    var logPath: String { directory + "/zk.log" }

    /// The server jar (its manifest's Class-Path names every dependency), if installed.
    static let jar: String? = {
        let known = "/usr/share/java/zookeeper.jar"
        let listed = run("/usr/bin/dpkg", ["-L", "libzookeeper-java"])?
            .split(separator: "\n").map(String.init).first { $0.hasSuffix("/zookeeper.jar") }
        return [listed, known].compactMap { $0 }.first { FileManager.default.fileExists(atPath: $0) }
    }()

    static let java: String? = ["/usr/bin/java", "/usr/lib/jvm/default-java/bin/java"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Whether this machine can run the server (`scripts/install-deps.sh` installs it).
    static var isInstalled: Bool { jar != nil && java != nil }

    /// What every test server's `zoo.cfg` holds, standalone or in an ensemble: tickTime 200 ms
    /// allows session timeouts from 400 ms (2 ticks) to 20 s; no admin HTTP server (it would need
    /// a port of its own); every four-letter word, for the probes.
    static let baseConfig = """
        tickTime=200
        minSessionTimeout=400
        maxSessionTimeout=20000
        admin.enableServer=false
        4lw.commands.whitelist=*

        """

    /// slf4j's simple binding (Debian's libslf4j-java, a dependency of libzookeeper-java): the
    /// jar's manifest names only slf4j's API, so without it the server logs nothing at all.
    static let logBinding = "/usr/share/java/slf4j-simple.jar"

    /// A JVM running ZooKeeper's `mainClass` on `configPath`, its log (INFO, with times; the line
    /// per four-letter word, one every probe, only from WARN) appended to `logPath`; not yet
    /// started. Shared by the standalone server and `ZooKeeperEnsemble`.
    static func serverProcess(mainClass: String, configPath: String, logPath: String) throws -> ChildProcess {
        guard let jar, let java else { throw HarnessError("ZooKeeper or java not installed") }
        let classPath = FileManager.default.fileExists(atPath: logBinding) ? jar + ":" + logBinding : jar
        let logOptions = ["-Dorg.slf4j.simpleLogger.showDateTime=true", "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
                          "-Dorg.slf4j.simpleLogger.log.org.apache.zookeeper.server.NIOServerCnxn=warn"]
        return ChildProcess(java, ["-Xmx256m"] + logOptions + ["-cp", classPath, mainClass, configPath],
                            output: .file(logPath), error: .standardOutput)
    }

    /// A server configuration in a fresh temp directory; `start()` launches it.
    init() throws {
        directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-zk")
        port = try LocalProcess.freePort()
        let config = Self.baseConfig + """
            dataDir=\(directory)/data
            clientPort=\(port)
            clientPortAddress=127.0.0.1

            """
        try config.write(toFile: directory + "/zoo.cfg", atomically: true, encoding: .utf8)
        guard FileManager.default.createFile(atPath: logPath, contents: nil) else {
            throw HarnessError("cannot create \(logPath)")
        }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Launches the server (again, after `stop()`: same port and data directory) and waits
    /// until it answers `ruok` with `imok` and serves requests, at most `timeoutSeconds`.
    func start(timeoutSeconds: Double = 20) throws {
        stop()
        let process = try Self.serverProcess(mainClass: "org.apache.zookeeper.server.ZooKeeperServerMain",
                                             configPath: directory + "/zoo.cfg", logPath: logPath)
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline && process.isRunning {
            // Every probe has its own bound: a probe sent during startup once hung forever.
            // `imok` only says the process is up; until `srvr` shows a mode the server still
            // turns clients away ("not currently serving requests").
            if fourLetterWord("ruok", timeoutMs: 500) == "imok",
               fourLetterWord("srvr", timeoutMs: 500)?.contains("Mode: ") == true { return }
            usleep(50_000)
        }
        stop()
        throw HarnessError("ZooKeeper did not answer ruok on \(connectString); log:\n" + log())
    }

    /// SIGTERM by PID, SIGKILL after 5 s. Safe to call when not running.
    func stop() {
        guard let process else { return }
        _ = LocalProcess.stop(process, graceSeconds: 5)
        self.process = nil
    }

    /// SIGSTOP: the server neither answers nor closes connections until `resume()`.
    func suspend() {
        process?.send(SIGSTOP)
    }

    /// SIGCONT after `suspend()`.
    func resume() {
        process?.send(SIGCONT)
    }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Sends a four-letter word (`ruok`, `dump`, `mntr`, `cons`…) and returns the answer, or
    /// nil if there is none within `timeoutMs` (connect, send and the whole answer included).
    func fourLetterWord(_ word: String, timeoutMs: Int = 2000) -> String? {
        Self.fourLetterWord(word, port: port, timeoutMs: timeoutMs)
    }

    /// `fourLetterWord` for the server whose client port is `port` on 127.0.0.1.
    static func fourLetterWord(_ word: String, port: Int, timeoutMs: Int = 2000) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        guard Self.connect(fd, port: port, deadline: deadline) else { return nil }
        let bytes = Array(word.utf8)
        guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { return nil }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let remainingMs = Int(deadline.timeIntervalSinceNow * 1000)
            guard remainingMs > 0 else { return nil }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(remainingMs)) > 0 else { return nil }
            let count = recv(fd, &buffer, buffer.count, 0)
            if count == 0 { return String(decoding: answer, as: UTF8.self) }
            guard count > 0 else { return nil }
            answer += buffer[..<count]
        }
    }

    /// A non-blocking connect to 127.0.0.1:`port` bounded by `deadline`; leaves `fd` non-blocking.
    private static func connect(_ fd: Int32, port: Int, deadline: Date) -> Bool {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc == 0 { return true }
        guard errno == EINPROGRESS else { return false }
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&poller, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000))) > 0 else { return false }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0
    }

    /// Runs a tool and returns its standard output (nil if it cannot run or fails).
    private static func run(_ executable: String, _ arguments: [String]) -> String? {
        guard FileManager.default.isExecutableFile(atPath: executable),
              let result = try? ChildProcess.run(executable, arguments, timeoutSeconds: 30), result.status == 0 else { return nil }
        return String(decoding: result.output, as: UTF8.self)
    }
}
