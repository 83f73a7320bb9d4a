import Foundation
import Logging
import NIOCore
import Runtime
import StoreCore

extension Start {
    /// Starts the dashboard (reference §7.2) on `dashboardHttpPort` of [system] (or
    /// `--dashboard-port`), bound on the broker's `--host`; nil when the port is 0 (off). A bind
    /// failure is a start-up failure naming the key. The hooks for /metrics, /reload-config and
    /// /logging are the lead's to pass once those exist.
    func startDashboard(server: BrokerServer, config: ServerConfig, dataPath: String, serverPort: Int, clusterMode: Bool,
                        logger: Logger,
                        metrics: (@Sendable () -> EventLoopFuture<String>)? = nil,
                        reload: (@Sendable () -> EventLoopFuture<String>)? = nil,
                        logLines: @escaping @Sendable () -> [String] = { [] }) throws -> DashboardServer? {
        let port = dashboardPort ?? config.dashboardHttpPort
        guard port != 0 else {
            logger.info("dashboard off (dashboardHttpPort=0)")
            return nil
        }
        let zooKeeper = clusterMode ? config.zooKeeper.connect.map {
            DashboardSettings.ZooKeeper(connect: $0, sessionTimeoutMs: config.zooKeeper.sessionTimeoutMs, root: config.zooKeeper.root)
        } : nil
        let settings = DashboardSettings(host: host, port: port, advertisedHost: advertisedHost(config), serverPort: serverPort,
                                         dataPath: dataPath, zooKeeper: zooKeeper)
        let dashboard = DashboardServer(settings: settings, observe: { server.observe() }, metrics: metrics, reload: reload,
                                        logLines: logLines, logger: logger)
        do {
            let bound = try dashboard.start()
            logger.info("dashboard", metadata: ["url": "http://\(advertisedHost(config)):\(bound)/"])
        } catch {
            throw StartFailure("\(error)")
        }
        return dashboard
    }
}
