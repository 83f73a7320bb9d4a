import Foundation
import ProcessHarness

/// Three (or `size`) of Debian's ZooKeeper 3.8 servers on 127.0.0.1 as one ensemble, each with
/// its own data directory, `myid` and free client, peer and election ports; stopped by PID.
/// `ZooKeeperServer` is the standalone server; this one is for what only a quorum shows (a
/// leader dying, a server rejoining). Servers are addressed by index (0-based; `myid` is
/// index + 1).
final class ZooKeeperEnsemble {
    /// One server's fixed facts: its ports and files.
    struct Member {
        let id: Int
        let clientPort: Int
        let peerPort: Int
        let electionPort: Int
        let directory: String
        var configPath: String { directory + "/zoo.cfg" }
        var logPath: String { directory + "/zk.log" }
        var connectString: String { "127.0.0.1:\(clientPort)" }
    }

    /// What a server that serves clients reports of itself.
    struct Status: Equatable {
        /// `Mode:` of `srvr`: `leader` or `follower` (`standalone`, `observer`, `read-only` never occur here).
        let mode: String
        /// A leader's `zk_synced_followers` of `mntr`: the followers that finished syncing with
        /// it and take its proposals. nil for a follower.
        let syncedFollowers: Int?
    }

    let directory: String
    let members: [Member]
    /// Indexed like `members`; nil for a server that is not running.
    private var processes: [ChildProcess?]

    /// `127.0.0.1:p1,127.0.0.1:p2,…`, for `ZooKeeperSession`, `MetaQClient` and `zk.zkConnect`.
    var connectString: String { members.map(\.connectString).joined(separator: ",") }

    /// An ensemble of `size` servers, started and serving (one leader, the rest followers), at
    /// most `timeoutSeconds` per attempt. `freePort()` only says a port was free a moment ago:
    /// when a server could not bind one of its ports, the whole ensemble is tried again on fresh
    /// ports (at most 3 times).
    static func started(size: Int = 3, timeoutSeconds: Double = 90) throws -> ZooKeeperEnsemble {
        var attempt = 1
        while true {
            let ensemble = try ZooKeeperEnsemble(size: size)
            do {
                try ensemble.start(timeoutSeconds: timeoutSeconds)
                return ensemble
            } catch {
                let portTaken = ensemble.members.indices.contains { ensemble.log($0).contains("Address already in use") }
                ensemble.stop()
                guard portTaken && attempt < 3 else { throw error }
                attempt += 1
            }
        }
    }

    /// The configuration of `size` servers in a fresh temp directory; `start()` launches them.
    init(size: Int = 3) throws {
        let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-zk-ensemble")
        self.directory = directory
        var ports: [Int] = []
        while ports.count < 3 * size {
            let port = try LocalProcess.freePort()
            if !ports.contains(port) { ports.append(port) }
        }
        members = (0..<size).map { index in
            Member(id: index + 1, clientPort: ports[3 * index], peerPort: ports[3 * index + 1],
                   electionPort: ports[3 * index + 2], directory: "\(directory)/zk\(index + 1)")
        }
        processes = Array(repeating: nil, count: size)
        let servers = members.map { "server.\($0.id)=127.0.0.1:\($0.peerPort):\($0.electionPort)" }.joined(separator: "\n")
        for member in members {
            try FileManager.default.createDirectory(atPath: member.directory + "/data", withIntermediateDirectories: true)
            try "\(member.id)\n".write(toFile: member.directory + "/data/myid", atomically: true, encoding: .utf8)
            // initLimit 100 ticks (20 s) for a follower's first sync and syncLimit 25 ticks (5 s)
            // before a silent peer is dropped: a loaded CI machine must not break the quorum by
            // itself (a killed peer is noticed at once: its sockets close). forceSync=no: the
            // faults here are process kills, which keep written bytes, and three servers
            // fsyncing every transaction on one busy disk slowed every write.
            let config = ZooKeeperServer.baseConfig + """
                initLimit=100
                syncLimit=25
                forceSync=no
                dataDir=\(member.directory)/data
                clientPort=\(member.clientPort)
                clientPortAddress=127.0.0.1
                \(servers)

                """
            try config.write(toFile: member.configPath, atomically: true, encoding: .utf8)
            guard FileManager.default.createFile(atPath: member.logPath, contents: nil) else {
                throw HarnessError("cannot create \(member.logPath)")
            }
        }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Launches every server and waits until the ensemble serves; the leader's index.
    @discardableResult
    func start(timeoutSeconds: Double = 90) throws -> Int {
        for index in members.indices { try launch(index) }
        return try waitUntilServing(timeoutSeconds: timeoutSeconds)
    }

    /// What server `index` answers to `srvr` (and, as a leader, to `mntr`), or nil when it does
    /// not serve clients (not running, electing, syncing with its leader: "This ZooKeeper
    /// instance is not currently serving requests").
    func status(_ index: Int, timeoutMs: Int = 1000) -> Status? {
        let port = members[index].clientPort
        guard let mode = Self.value("Mode: ", in: ZooKeeperServer.fourLetterWord("srvr", port: port, timeoutMs: timeoutMs)) else {
            return nil
        }
        guard mode == "leader" else { return Status(mode: mode, syncedFollowers: nil) }
        let synced = Self.value("zk_synced_followers\t", in: ZooKeeperServer.fourLetterWord("mntr", port: port, timeoutMs: timeoutMs))
        return Status(mode: mode, syncedFollowers: synced.flatMap { Int($0) } ?? 0)
    }

    /// The rest of the first line of `answer` that starts with `key`.
    private static func value(_ key: String, in answer: String?) -> String? {
        answer?.split(separator: "\n").first { $0.hasPrefix(key) }.map { String($0.dropFirst(key.count)) }
    }

    /// The index of the server that says it leads, if exactly one running server does now.
    func leader() -> Int? {
        let leaders = runningIndices.filter { status($0)?.mode == "leader" }
        return leaders.count == 1 ? leaders[0] : nil
    }

    /// Whether server `index` was started and has not been killed or stopped (nor died).
    func isRunning(_ index: Int) -> Bool { processes[index]?.isRunning == true }

    var runningIndices: [Int] { members.indices.filter { isRunning($0) } }

    /// Waits until a majority runs and every running server serves, one as leader and the others
    /// as followers, and the leader counts every other running server among its synced
    /// followers (a follower's own "follower" may be a moment stale after its leader died: only
    /// the leader's count says they follow it); the leader's index. Throws, with the logs, after
    /// `timeoutSeconds` or when a server it started has exited by itself.
    @discardableResult
    func waitUntilServing(timeoutSeconds: Double = 90) throws -> Int {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        var serving: [Int: Status] = [:]
        repeat {
            if let died = members.indices.first(where: { processes[$0] != nil && !isRunning($0) }) {
                throw HarnessError("ZooKeeper server \(members[died].id) exited; logs:\n" + logs())
            }
            let running = runningIndices
            serving = [:]
            for index in running { serving[index] = status(index) }
            let leaders = running.filter { serving[$0]?.mode == "leader" }
            if 2 * running.count > members.count, serving.count == running.count, leaders.count == 1,
               serving.values.filter({ $0.mode == "follower" }).count == running.count - 1,
               serving[leaders[0]]?.syncedFollowers == running.count - 1 {
                return leaders[0]
            }
            usleep(100_000)
        } while Date() < deadline
        let seen = runningIndices.map { "server \(members[$0].id): " + (serving[$0].map { $0.mode + ($0.syncedFollowers.map { " of \($0) synced followers" } ?? "") } ?? "not serving") }
        throw HarnessError("the ensemble \(connectString) did not serve within \(timeoutSeconds) s (\(seen.joined(separator: "; "))); logs:\n"
                           + logs())
    }

    /// SIGKILL to server `index` by PID, and wait until it is reaped.
    func kill(_ index: Int) {
        guard let process = processes[index] else { return }
        LocalProcess.kill9(process)
        processes[index] = nil
    }

    /// Starts server `index` again (same ports, data and `myid`) and waits until the ensemble,
    /// with it, serves again; the leader's index.
    @discardableResult
    func restart(_ index: Int, timeoutSeconds: Double = 90) throws -> Int {
        kill(index)
        try launch(index)
        return try waitUntilServing(timeoutSeconds: timeoutSeconds)
    }

    /// SIGTERM to every running server by PID (SIGKILL after 5 s). Safe to call again.
    func stop() {
        for index in members.indices {
            guard let process = processes[index] else { continue }
            _ = LocalProcess.stop(process, graceSeconds: 5)
            processes[index] = nil
        }
    }

    func log(_ index: Int) -> String { (try? String(contentsOfFile: members[index].logPath, encoding: .utf8)) ?? "" }

    /// The last 40 lines of each server's log, for failure messages.
    func logs() -> String {
        members.indices.map { index in
            let tail = log(index).split(separator: "\n", omittingEmptySubsequences: false).suffix(40).joined(separator: "\n")
            return "--- server \(members[index].id) (\(members[index].logPath)):\n" + tail
        }.joined(separator: "\n")
    }

    private func launch(_ index: Int) throws {
        let member = members[index]
        let process = try ZooKeeperServer.serverProcess(mainClass: "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                                                        configPath: member.configPath, logPath: member.logPath)
        try process.run()
        processes[index] = process
    }
}
