import ArgumentParser
import Foundation

/// MetaQ's default data path, `${user.home}/meta` (§8.1).
func defaultDataPath() -> String {
    (ProcessInfo.processInfo.environment["HOME"] ?? ".") + "/meta"
}

/// The pid file of a broker started with `start` (in its data directory).
func readPid(dataPath: String) -> Int32? {
    guard let text = try? String(contentsOfFile: dataPath + "/metaq-server.pid", encoding: .utf8) else { return nil }
    return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop a running broker (SIGTERM through its pid file) and wait for a clean exit.")

    @Option(name: .customLong("data"), help: "The broker's data directory (where its pid file is).")
    var dataPath = defaultDataPath()

    @Option(help: "Seconds to wait for the exit.")
    var timeout = 30

    func run() throws {
        guard let pid = readPid(dataPath: dataPath), kill(pid, 0) == 0 else {
            throw ValidationError("no running broker found through \(dataPath)/metaq-server.pid")
        }
        kill(pid, SIGTERM)
        for _ in 0..<(timeout * 10) {
            if kill(pid, 0) != 0 { print("stopped (pid \(pid))"); return }
            usleep(100_000)
        }
        throw ValidationError("pid \(pid) did not exit within \(timeout) s")
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Say whether a broker runs for a data directory.")

    @Option(name: .customLong("data"), help: "The broker's data directory (where its pid file is).")
    var dataPath = defaultDataPath()

    func run() throws {
        if let pid = readPid(dataPath: dataPath), kill(pid, 0) == 0 {
            print("running (pid \(pid))")
        } else {
            print("not running")
            throw ExitCode(3)
        }
    }
}
