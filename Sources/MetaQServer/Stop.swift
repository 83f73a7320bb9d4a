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

/// Whether `pid` is a live process (an exited one not yet reaped — a zombie — counts as gone).
func isAlive(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return true }
    let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
    return state != "Z" && state != "X"
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop a running broker (SIGTERM through its pid file) and wait for a clean exit.")

    @Option(name: .customLong("data"), help: "The broker's data directory (where its pid file is).")
    var dataPath = defaultDataPath()

    @Option(help: "Seconds to wait for the exit.")
    var timeout = 30

    func run() throws {
        guard let pid = readPid(dataPath: dataPath), isAlive(pid) else {
            throw ValidationError("no running broker found through \(dataPath)/metaq-server.pid")
        }
        kill(pid, SIGTERM)
        for _ in 0..<(timeout * 10) {
            if !isAlive(pid) { print("stopped (pid \(pid))"); return }
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
        if let pid = readPid(dataPath: dataPath), isAlive(pid) {
            print("running (pid \(pid))")
        } else {
            print("not running")
            throw ExitCode(3)
        }
    }
}
