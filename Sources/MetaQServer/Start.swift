import ArgumentParser
import Dispatch
import BrokerCore
import Foundation
import Logging
import ProtocolCore
import Runtime
import StoreCore

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the broker.",
        discussion: """
            Reads MetaQ's server.ini, opens and recovers every partition under the data path, and \
            serves MetaQ's TCP protocol. By default the broker runs in the background: this command \
            returns once it listens (exit 0) or failed to start (exit 1, with the end of its log), and \
            the broker logs to <data>/metaq-server.log. With --foreground it stays attached and logs to \
            standard error (for service managers and containers). SIGTERM or SIGINT stop it gracefully: \
            no new connections, every log synced and closed. `metaq-server stop` sends SIGTERM through \
            the pid file <data>/metaq-server.pid.

            A slave (replication) runs with its master's brokerId and a slaveId of its own, given \
            either in the [replication] section of server.ini or with --slave <file> (the original's \
            async_slave.properties). It copies its master's partitions; the master is master=host:port \
            when set, else the broker ZooKeeper names in /meta/brokers/ids/<brokerId>/master (cluster \
            mode). Without ZooKeeper a slave needs master=host:port.
            """)

    @Flag(help: "Local mode: no ZooKeeper registration, whatever [zookeeper] says. Without it the broker registers in the ZooKeeper of zk.zkConnect (cluster mode) unless zk.zkEnable=false.")
    var local = false

    @Option(name: [.customShort("f"), .customLong("config")], help: "The server.ini to use.")
    var configPath = "conf/server.ini"

    @Option(name: .customLong("data"), help: "Data directory (overrides dataPath of [system]).")
    var dataPath: String?

    @Option(help: "TCP port (overrides serverPort of [system]).")
    var port: Int?

    @Option(help: "Address to listen on.")
    var host = "0.0.0.0"

    @Option(name: .customLong("dashboard-port"), help: "Dashboard HTTP port (overrides dashboardHttpPort of [system]; 0 turns the dashboard off).")
    var dashboardPort: Int?

    @Flag(help: "Stay in the foreground and log to standard error instead of running in the background.")
    var foreground = false

    @Option(help: ArgumentHelp(
        "The least level logged: trace, debug, info, notice, warning, error or critical.",
        discussion: "Default: $METAQ_LOG_LEVEL, else info.", valueName: "level"))
    var logLevel: String?

    @Option(help: ArgumentHelp(
        "Log line format: text (default) or json (one object per line, for log shippers).",
        discussion: "Default: $METAQ_LOG_FORMAT, else text.", valueName: "format"))
    var logFormat: String?

    @Option(name: .customLong("slave"), help: ArgumentHelp(
        "Start as a slave with the settings of this properties file (the original's async_slave.properties).",
        discussion: "Keys: slaveId (required, 0-1023), slaveGroup, slaveMaxDelayInMills, autoSyncMasterConfig "
            + "(false only) and master=host:port. Instead of slaveId in [replication] of server.ini, not together with it.",
        valueName: "file"))
    var slavePath: String?

    @Flag(help: ArgumentHelp(
        "Start as a gregor slave of an original samsa master (its synchronous replication).",
        discussion: "As the original's `metaServer.sh start gregor`: no ZooKeeper (local mode), topic "
            + "_metaq_slave_status_test added (1 partition), and the master's `sync` requests stored with its msgId "
            + "(acceptSync=true in [replication]). The samsa master names this broker in its `slave` property."))
    var gregor = false

    func validate() throws {
        if let port, !(1...65535).contains(port) {
            throw ValidationError("--port \(port) is not a TCP port; expected 1-65535")
        }
        if let dashboardPort, !(0...65535).contains(dashboardPort) {
            throw ValidationError("--dashboard-port \(dashboardPort) is not a TCP port; expected 1-65535, or 0 for no dashboard")
        }
        do { _ = try logSettings() } catch { throw ValidationError(error.description) }
    }

    /// --log-level/--log-format over METAQ_LOG_LEVEL/METAQ_LOG_FORMAT over info/text (docs/OPERATIONS.md, "Logging").
    func logSettings() throws(LogSettingsError) -> LogSettings {
        try LogSettings(level: logLevel, format: logFormat, environment: ProcessInfo.processInfo.environment)
    }

    /// SIGTERM and SIGINT: the signals that stop the broker gracefully.
    static var stopSignals: sigset_t {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        return signals
    }

    /// The topic a samsa master tests its gregor slave with (§6.2).
    static let slaveStatusTopic = "_metaq_slave_status_test"

    /// The broker's last log lines, for the dashboard's logging page (`Start.recentLogs.lines()`).
    static let recentLogs = RecentLogLines()

    /// Set in the environment of the background broker by its launcher.
    static let detachedVariable = "METAQ_SERVER_DETACHED"

    func run() throws {
        try logSettings().bootstrap(recent: Self.recentLogs)
        // A write past RLIMIT_FSIZE must fail with EFBIG (and fail its partition like any disk
        // error) rather than kill the broker with SIGXFSZ; a log line to a closed pipe must not
        // kill it with SIGPIPE before NIO's first socket would ignore that.
        signal(SIGXFSZ, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        let logger = Logger(label: "metaq-server")
        var config = try loadConfig(configPath)
        if let slavePath { config.replication.slave = try loadSlave(slavePath, into: config) }
        if gregor {
            config.replication.acceptSync = true
            if !config.topics.contains(where: { $0.name == Self.slaveStatusTopic }) {
                var section = TopicSection(name: Self.slaveStatusTopic, line: 0)
                section.numPartitions = 1
                config.topics.append(section)
            }
        }
        let clusterMode = config.zooKeeper.isEnabled && !local && !gregor
        if clusterMode && (config.zooKeeper.connect ?? "").isEmpty {
            throw StartFailure("cluster mode needs zk.zkConnect in [zookeeper] of \(configPath) (host:port[,host:port…]); or start with --local, or set zk.zkEnable=false")
        }
        if let slave = config.replication.slave, !clusterMode, slave.master == nil {
            let source = slavePath ?? "[replication] of \(configPath)"
            throw StartFailure("""
                this broker is a slave (slaveId=\(slave.slaveId)) without ZooKeeper, so nothing names its master: \
                set master=host:port (the master's address) in \(source), or run in cluster mode, where \
                \(config.zooKeeper.root)/brokers/ids/\(config.brokerId)/master names it
                """)
        }
        if let dataPath { config.dataPath = dataPath }
        if let port { config.serverPort = port }
        let data = config.dataPath ?? defaultDataPath()
        do { try FileStorage().makeDirectory(data) } catch { throw StartFailure("cannot create data directory \(data): \(error)") }
        if !foreground { return try launchInBackground(dataPath: data) }
        // Block SIGTERM/SIGINT here, before the first thread exists, so every thread inherits the
        // block: the main thread takes them with sigwait once the broker is up (also one that
        // arrived during start-up and is pending), and a thread that did not block them could
        // take one itself — a stop request lost, or the broker killed without a stop.
        var stopSignals = Self.stopSignals
        pthread_sigmask(SIG_BLOCK, &stopSignals, nil)
        if ProcessInfo.processInfo.environment[Self.detachedVariable] != nil {
            // The background broker: its own session, so a closing terminal does not hang it up.
            setsid()
            signal(SIGHUP, SIG_IGN)
        }
        let descriptorsBefore = DescriptorLimit.read()
        let descriptors = DescriptorLimit.raiseToMaximum()
        let server = try makeServer(config: config, dataPath: data, logger: logger)
        report(descriptors, before: descriptorsBefore, budget: server.descriptorBudget, logger: logger)
        if clusterMode && config.replication.failover { server.awaitElection() }
        let bound = try server.start(host: host, port: config.serverPort)
        if config.http.isEnabled {
            let httpPort: Int
            do { httpPort = try server.startHTTP(host: host, port: config.http.port) } catch {
                throw StartFailure("\(error) (the HTTP message API: serverPort of [http] in \(configPath))")
            }
            logger.info("HTTP message API listening", metadata: ["port": "\(httpPort)"])
        }
        // `POST /reload-config` runs the same reload as `metaq-server reload` (reference §8.4).
        let dashboard = try startDashboard(server: server, config: config, dataPath: data, serverPort: bound,
                                           clusterMode: clusterMode, logger: logger, reload: { server.reload() })
        var cluster: BrokerClusterMember?
        if clusterMode, let connect = config.zooKeeper.connect {
            let uri = "meta://\(advertisedHost(config)):\(bound)"
            let member = BrokerClusterMember(server: server, uri: uri, logger: logger)
            do { try member.start(connect: connect, sessionTimeoutMs: config.zooKeeper.sessionTimeoutMs) } catch {
                throw StartFailure("cannot open a ZooKeeper session to \(connect): \(error)")
            }
            logger.info("cluster mode", metadata: ["zkConnect": "\(connect)", "zkRoot": "\(config.zooKeeper.root)", "uri": "\(uri)"])
            cluster = member
        }
        let pidFile = data + "/metaq-server.pid"
        do { try "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8) } catch {
            logger.warning("cannot write the pid file; `metaq-server stop` will not find this broker", metadata: ["path": "\(pidFile)"])
        }
        var started: Logger.Metadata = [
            "version": "\(Self.version)", "port": "\(bound)", "dataPath": "\(data)", "brokerId": "\(config.brokerId)",
            "topics": "\(config.topics.map(\.name))",
            "flush": "\(config.flushPolicy.isGroupCommit ? "group commit" : "unflushThreshold=\(config.flushPolicy.unflushThreshold) unflushInterval=\(config.flushPolicy.unflushIntervalMs)ms")",
        ]
        if let slave = config.replication.slave {
            started["slave"] = "slaveId=\(slave.slaveId) slaveGroup=\(slave.slaveGroup) master=\(slave.master ?? "from ZooKeeper")"
        }
        logger.info("metaq-server started", metadata: started)
        waitForSignal(server: server, cluster: cluster, dashboard: dashboard, pidFile: pidFile, logger: logger)
    }

    /// Logs the descriptor limit, and warns when it is below what the broker may need: running out
    /// later would refuse connections and fail reads and segment rolls under load.
    func report(_ raised: (limits: DescriptorLimit.Limits, errno: Int32?), before: DescriptorLimit.Limits,
                budget: DescriptorBudget, logger: Logger) {
        let limit = raised.limits.current
        var metadata: Logger.Metadata = [
            "limit": "\(limit)", "hardLimit": "\(raised.limits.maximum)", "needed": "\(budget.needed)",
            "partitions": "\(budget.partitions)", "maxConnections": "\(budget.maxConnections)",
            "headroom": "\(DescriptorBudget.headroom)",
        ]
        if limit != before.current { metadata["raisedFrom"] = "\(before.current)" }
        if let code = raised.errno { metadata["raiseFailed"] = "\(String(cString: strerror(code)))" }
        logger.info("file descriptor limit", metadata: metadata)
        guard UInt64(budget.needed) > limit else { return }
        logger.warning("""
            the file descriptor limit \(limit) is below the \(budget.needed) the broker may need \
            (\(budget.partitions) partitions + maxConnections \(budget.maxConnections) + \(DescriptorBudget.headroom)): \
            raise the hard limit (ulimit -Hn, LimitNOFILE= of a systemd unit) or lower maxConnections
            """)
    }

    /// The host in the URI the broker registers (§3.1): `hostName` of [system], else `--host`
    /// when it names one address, else this machine's first non-loopback IPv4 address.
    func advertisedHost(_ config: ServerConfig) -> String {
        if let name = config.hostName, !name.isEmpty { return name }
        if host != "0.0.0.0" && host != "::" { return host }
        return NetworkAddresses.firstNonLoopbackIPv4() ?? "127.0.0.1"
    }

    static let version = "1.4.6.2-swift"

    /// Starts this same command with `--foreground` as a detached process logging to
    /// `<data>/metaq-server.log`, and waits until it has written its pid file (it listens then)
    /// or exited.
    func launchInBackground(dataPath: String) throws {
        if let pid = readPid(dataPath: dataPath), isAlive(pid) {
            throw StartFailure("a broker already runs for \(dataPath) (pid \(pid)); stop it first")
        }
        let logPath = dataPath + "/metaq-server.log"
        guard FileManager.default.fileExists(atPath: logPath) || FileManager.default.createFile(atPath: logPath, contents: nil),
              let log = FileHandle(forWritingAtPath: logPath) else {
            throw StartFailure("cannot open the log file \(logPath)")
        }
        log.seekToEndOfFile()
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        child.arguments = Array(CommandLine.arguments.dropFirst()) + ["--foreground"]
        child.environment = ProcessInfo.processInfo.environment.merging([Self.detachedVariable: "1"]) { $1 }
        child.standardInput = FileHandle.nullDevice
        child.standardOutput = log
        child.standardError = log
        try child.run()
        let pid = child.processIdentifier
        for _ in 0..<600 {
            if !child.isRunning {
                let tail = (try? String(contentsOfFile: logPath, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
                throw StartFailure("the broker exited during start-up (status \(child.terminationStatus)); end of \(logPath):\n\(tail)")
            }
            if readPid(dataPath: dataPath) == pid {
                print("metaq-server started in the background (pid \(pid)); log: \(logPath)")
                return
            }
            usleep(50_000)
        }
        throw StartFailure("the broker (pid \(pid)) did not start listening within 30 s; see \(logPath)")
    }

    func makeServer(config: ServerConfig, dataPath: String, logger: Logger) throws -> BrokerServer {
        var seed: UInt64 = 0
        withUnsafeMutableBytes(of: &seed) { arc4random_buf($0.baseAddress!, 8) }
        // The `config` command answers these bytes until a `reload` reads the file again.
        let configFile = (try? ConfigFile.read(configPath)) ?? []
        let settings = BrokerNode.Settings(
            brokerURI: "meta://\(config.hostName ?? "localhost"):\(config.serverPort)", version: Self.version,
            configFile: configFile, archiver: ZipSegmentArchiver(), seed: seed)
        let clock = NodeClock(now: Clocks.monotonic(), wallMs: Clocks.wallMs())
        let (node, report) = try BrokerNode.open(storage: FileStorage(), config: config, defaultDataPath: dataPath,
                                                 settings: settings, clock: clock)
        for (partition, recovery) in report.recoveries { logger.info("recovered \(partition): \(recovery)") }
        let skipped = report.recoveries.filter(\.report.lastSegmentScanSkipped).count
        logger.info("recovery: \(skipped) of \(report.recoveries.count) partition(s) skipped the last segment's scan after a clean stop")
        for notice in report.notices { logger.warning("\(notice)") }
        logger.info("transactions recovered: \(report.transactions)")
        if report.autoCreatedPartitions >= report.maxAutoCreatedPartitions {
            logger.warning("""
                \(report.autoCreatedPartitions) partitions of topics without their own [topic=...] section \
                exist; with maxAutoCreatedPartitions=\(report.maxAutoCreatedPartitions) puts cannot create more
                """)
        }
        return BrokerServer(node: node, logger: logger, configPath: configPath)
    }

    func waitForSignal(server: BrokerServer, cluster: BrokerClusterMember?, dashboard: DashboardServer?, pidFile: String,
                       logger: Logger) -> Never {
        // SIGTERM and SIGINT are blocked in every thread since the start of `run()`; the main
        // thread takes them here, one that arrived during start-up included. (A dispatch signal
        // source was used before: until its handler was registered, `dispatchMain`'s sigsuspend
        // let a SIGTERM sent right after start-up take its default action and kill the broker
        // without a stop.)
        var stopSignals = Self.stopSignals
        var received: Int32 = 0
        while sigwait(&stopSignals, &received) != 0 {}
        dashboard?.stop()
        if let cluster {
            logger.info("stopping: removing the ZooKeeper registration", metadata: ["signal": "\(received)"])
            cluster.stop()
        }
        logger.info("stopping: closing connections, syncing and closing every log", metadata: ["signal": "\(received)"])
        let problem: String?
        do {
            problem = Self.describe(failures: try server.stop())
        } catch {
            problem = "the stop failed: \(error)"
        }
        try? FileManager.default.removeItem(atPath: pidFile)
        guard let problem else {
            logger.info("metaq-server stopped")
            Foundation.exit(0)
        }
        // A service manager (and `metaq-server stop`'s caller reading the log) must not take this
        // for a clean stop: data may be missing, so the exit status says so.
        logger.critical("metaq-server stopped with errors (exit status 1): \(problem)")
        Foundation.exit(1)
    }
}

/// The server.ini at `path`, or a start-up failure that names the file and what is wrong with it
/// (it is not a usage error, so no usage text).
func loadConfig(_ path: String) throws -> ServerConfig {
    do {
        return try ConfigFile.load(path)
    } catch let error as ConfigFileError where error.problem == .missing {
        let directory = path.hasPrefix("/") ? "" : " (relative to \(FileManager.default.currentDirectoryPath))"
        throw StartFailure("\(error)\(directory); name the broker's server.ini with -f <path>")
    } catch {
        throw StartFailure("\(error)")
    }
}

extension Start {
    /// The slave settings of `--slave <file>`; a start-up failure when the file cannot be read or
    /// parsed, or when server.ini already makes the broker a slave.
    func loadSlave(_ path: String, into config: ServerConfig) throws -> ReplicationConfig.Slave {
        if let configured = config.replication.slave {
            throw StartFailure("--slave \(path) and slaveId=\(configured.slaveId) in [replication] of \(configPath) both "
                + "configure this slave; keep one of them")
        }
        do {
            return try ConfigFile.loadSlave(path)
        } catch let error as ConfigFileError {
            switch error.problem {
            case .missing: throw StartFailure("the slave file \(path) given with --slave does not exist")
            case .isDirectory: throw StartFailure("the slave file \(path) is a directory; expected an async_slave.properties file")
            default: throw StartFailure("\(error)")
            }
        } catch {
            throw StartFailure("\(error)")
        }
    }

    /// What an operator must know about partitions whose log failed by the end of a stop; nil
    /// when there are none.
    static func describe(failures: [(partition: TopicPartition, failure: LogFailure)]) -> String? {
        guard !failures.isEmpty else { return nil }
        let list = failures.map { "\($0.partition) (\($0.failure))" }.joined(separator: ", ")
        return "\(failures.count) partition(s) failed a write or sync: \(list); messages written to them since "
            + "their last successful sync may be lost; fix the disk, then restart (recovery keeps every intact record)"
    }
}

/// A start-up failure reported as `Error: <text>` with exit status 1 (no usage text: the
/// arguments were fine).
struct StartFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
