import Foundation
import Testing
import ProcessHarness

/// `metaq-server start` refuses what cannot work, in the foreground and in the background (which
/// prints the end of the broker's log), with exit status 1 and a message that names the file and
/// line, or the address (issue 14, DESIGN §8).
@Suite("metaq-server start refusals", .serialized)
struct StartFailureTests {
    static let config = LocalBrokerTests.config

    /// Runs `start` with `server.ini` = `config` (nil: no file written) in both modes; body gets
    /// the directory, and checks each mode's exit status and output.
    func start(config: String?, configPath: ((String) -> String)? = nil, port: Int? = nil,
               _ check: (_ directory: String, _ mode: String, _ status: Int32, _ output: String) -> Void) throws {
        let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-start")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        if let config { try config.write(toFile: directory + "/server.ini", atomically: true, encoding: .utf8) }
        let path = configPath?(directory) ?? directory + "/server.ini"
        for mode in ["--foreground", "background"] {
            let arguments = ["start", "--local", "-f", path, "--data", directory + "/data-\(mode)",
                             "--port", "\(try port ?? LocalProcess.freePort())", "--host", "127.0.0.1", "--dashboard-port", "0"]
            // A start that wrongly succeeds runs on: the foreground one until the timeout, the
            // background one until it is stopped here.
            let result = try ChildProcess.run(BrokerProcess.binary, mode == "background" ? arguments : arguments + [mode],
                                              error: .standardOutput, timeoutSeconds: 30)
            if result.status == 0 && mode == "background" {
                _ = try? ChildProcess.run(BrokerProcess.binary, ["stop", "--data", directory + "/data-\(mode)"])
            }
            let output = String(decoding: result.output, as: UTF8.self)
            check(directory, mode, result.status, output)
            #expect(!output.contains("Usage:"), "a broken config is not a usage error: \(output)")
        }
    }

    @Test(arguments: [
        ("numPartitions=2", "numPartitions=0",
         "server.ini:3: [system] numPartitions: expected an integer in 1...2147483647, got 0; a topic needs at least one partition"),
        ("unflushThreshold=0", "unflushThreshold=0\nmaxSegmentSize=19",
         "server.ini:5: [system] maxSegmentSize: expected an integer in 20...2147483647, got 19; a segment must have room "
            + "for at least one record's 20-byte header"),
        ("[topic=test]", "[topic=test]\nnumPartitions=0", "server.ini:8: [topic=test] numPartitions: expected an integer in 1..."),
        ("[topic=test]", "[topic=test]\n[topic=other]\n[topic=test]\nstat=true",
         "server.ini:9: [topic=test]: repeats the section of line 7; expected each section once"),
    ])
    func unworkableSettingsAreRefused(original: String, replacement: String, message: String) throws {
        try start(config: Self.config.replacingOccurrences(of: original, with: replacement)) { _, mode, status, output in
            #expect(status == 1 && output.contains(message), "\(mode): \(output)")
        }
    }

    @Test func portInUseNamesTheAddress() throws {
        let listener = try Listener()
        try start(config: Self.config, port: listener.port) { _, mode, status, output in
            #expect(status == 1, "\(mode): \(output)")
            #expect(output.contains("Error: cannot listen on 127.0.0.1:\(listener.port): address already in use "
                                    + "(is another broker running?)"), "\(mode): \(output)")
        }
    }

    /// A port out of range is an argument error (it used to reach the bind as a wrapped number).
    @Test func portOutOfRangeIsAnArgumentError() throws {
        let result = try ChildProcess.run(BrokerProcess.binary, ["start", "--local", "--port", "70000", "--foreground"],
                                          error: .standardOutput, timeoutSeconds: 30)
        let output = String(decoding: result.output, as: UTF8.self)
        #expect(result.status == 64 && output.contains("--port 70000 is not a TCP port; expected 1-65535"), "\(output)")
    }

    @Test func directoryGivenAsConfigFile() throws {
        try start(config: nil, configPath: { $0 }) { directory, mode, status, output in
            #expect(status == 1 && output.contains("Error: the config file \(directory) is a directory; expected a "
                                                   + "server.ini file such as \(directory)/server.ini"), "\(mode): \(output)")
        }
    }

    @Test func missingConfigFile() throws {
        try start(config: nil) { directory, mode, status, output in
            #expect(status == 1 && output.contains("Error: the config file \(directory)/server.ini does not exist; "
                                                   + "name the broker's server.ini with -f <path>"), "\(mode): \(output)")
        }
    }

    @Test func configFileThatIsNotUtf8() throws {
        try start(config: nil, configPath: { directory in
            let latin1 = Array(Self.config.utf8.prefix(20)) + Array("hostName=caf".utf8) + [0xE9] + Array("\n".utf8)
                + Array(Self.config.utf8.dropFirst(20))
            #expect(FileManager.default.createFile(atPath: directory + "/latin1.ini", contents: Data(latin1)))
            return directory + "/latin1.ini"
        }) { _, mode, status, output in
            #expect(status == 1 && output.contains("latin1.ini:3: not UTF-8: invalid byte sequence e9 at byte 13 of the line"),
                    "\(mode): \(output)")
        }
    }
}

/// A TCP listener on 127.0.0.1 (any free port) for as long as the value lives.
final class Listener {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard fd >= 0, listening else {
            if fd >= 0 { close(fd) }
            throw HarnessError("cannot listen on 127.0.0.1")
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}
