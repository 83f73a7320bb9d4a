import ArgumentParser
import Dispatch
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
            serves MetaQ's TCP protocol. The process stays in the foreground (run it under your service \
            manager, or with &); SIGTERM or SIGINT stop it gracefully: no new connections, every log \
            synced and closed. `metaq-server stop` sends SIGTERM through the pid file.
            """)

    @Flag(help: "Local mode: no ZooKeeper registration (cluster mode is not available yet).")
    var local = false

    @Option(name: [.customShort("f"), .customLong("config")], help: "The server.ini to use.")
    var configPath = "conf/server.ini"

    @Option(name: .customLong("data"), help: "Data directory (overrides dataPath of [system]).")
    var dataPath: String?

    @Option(help: "TCP port (overrides serverPort of [system]).")
    var port: Int?

    @Option(help: "Address to listen on.")
    var host = "0.0.0.0"

    @Flag(help: "Stay in the foreground (the only mode so far; accepted for scripts).")
    var foreground = false

    func run() throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let logger = Logger(label: "metaq-server")
        let text: String
        do { text = try String(contentsOfFile: configPath, encoding: .utf8) } catch {
            throw ValidationError("cannot read \(configPath): \(error.localizedDescription)")
        }
        var config: ServerConfig
        do { config = try ServerConfig(parsing: text, path: configPath) } catch { throw ValidationError("\(error)") }
        if config.zooKeeper.isEnabled && !local {
            throw ValidationError("cluster mode (ZooKeeper) is not available yet: start with --local, or set zk.zkEnable=false in \(configPath)")
        }
        if let dataPath { config.dataPath = dataPath }
        if let port { config.serverPort = port }
        let data = config.dataPath ?? defaultDataPath()
        do { try FileStorage().makeDirectory(data) } catch { throw ValidationError("cannot create data directory \(data): \(error)") }
        let server = try makeServer(config: config, dataPath: data, logger: logger)
        let bound = try server.start(host: host, port: config.serverPort)
        server.scheduleRetention()
        let pidFile = data + "/metaq-server.pid"
        do { try "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8) } catch {
            logger.warning("cannot write the pid file; `metaq-server stop` will not find this broker", metadata: ["path": "\(pidFile)"])
        }
        logger.info("metaq-server started", metadata: [
            "version": "\(Self.version)", "port": "\(bound)", "dataPath": "\(data)", "brokerId": "\(config.brokerId)",
            "topics": "\(config.topics.map(\.name))",
            "flush": "\(config.flushPolicy.isGroupCommit ? "group commit" : "unflushThreshold=\(config.flushPolicy.unflushThreshold) unflushInterval=\(config.flushPolicy.unflushIntervalMs)ms")",
        ])
        waitForSignal(server: server, pidFile: pidFile, logger: logger)
    }

    static let version = "1.4.6.2-swift"

    func makeServer(config: ServerConfig, dataPath: String, logger: Logger) throws -> BrokerServer {
        let storage = FileStorage()
        let stores = PartitionStores(storage: storage, config: config, defaultDataPath: dataPath)
        let reports = try stores.openAll(now: .zero)
        for (partition, report) in reports.sorted(by: { $0.key < $1.key }) {
            logger.info("recovered \(partition): \(report)")
        }
        let reservation = try IdReservationFile.load(storage: storage, dataPath: dataPath)
        let settings = BrokerMachine.Settings(
            brokerId: config.brokerId, brokerURI: "meta://\(config.hostName ?? "localhost"):\(config.serverPort)",
            port: config.serverPort, version: Self.version, maxTransferSize: Int32(clamping: config.maxTransferSize),
            updateConsumerOffsets: config.updateConsumerOffsets, topics: stores.topicRules())
        var seed: UInt64 = 0
        withUnsafeMutableBytes(of: &seed) { arc4random_buf($0.baseAddress!, 8) }
        let machine = BrokerMachine(settings: settings, partitionsWithData: Set(stores.partitions),
                                    idReservationMs: reservation, seed: seed)
        return BrokerServer(machine: machine, stores: stores, configPath: configPath, logger: logger)
    }

    func waitForSignal(server: BrokerServer, pidFile: String, logger: Logger) -> Never {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let sources = [SIGTERM, SIGINT].map { DispatchSource.makeSignalSource(signal: $0, queue: .main) }
        for source in sources {
            source.setEventHandler {
                logger.info("stopping: closing connections, syncing and closing every log")
                do { try server.stop() } catch { logger.error("stop failed: \(error)") }
                try? FileManager.default.removeItem(atPath: pidFile)
                logger.info("metaq-server stopped")
                Foundation.exit(0)
            }
            source.resume()
        }
        dispatchMain()
    }
}
