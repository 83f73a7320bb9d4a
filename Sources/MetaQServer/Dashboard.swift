import Foundation
import Logging
import NIOCore
import ProtocolCore
import Runtime
import StoreCore
import Synchronization

extension Start {
    /// Starts the dashboard (reference §7.2) on `dashboardHttpPort` of [system] (or
    /// `--dashboard-port`), bound on the broker's `--host`; nil when the port is 0 (off). A bind
    /// failure is a start-up failure naming the key. It serves `/metrics` (`BrokerMetrics`; consumer
    /// lag through the dashboard's ZooKeeper session in cluster mode), `POST /reload-config`
    /// (`reload`) and the recent log lines of `Start.recentLogs`.
    func startDashboard(server: BrokerServer, config: ServerConfig, dataPath: String, serverPort: Int, clusterMode: Bool,
                        logger: Logger, reload: (@Sendable () -> EventLoopFuture<String>)? = nil) throws -> DashboardServer? {
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
        // The metrics read consumer lag through the dashboard's session, which exists once it does.
        let dashboardBox = DashboardHolder()
        let consumerLag = clusterMode ? BrokerMetrics.zooKeeperConsumerLag(
            layout: MetaZooKeeperLayout(root: config.zooKeeper.root),
            perform: { await dashboardBox.server.withLock { $0 }?.coordinationPerform() }) : nil
        let metrics = BrokerMetrics(server: server, consumerLag: consumerLag)
        metrics.bootstrapMetricsSystem()
        let dashboard = DashboardServer(settings: settings, observe: { server.observe() }, metrics: { metrics.exposition() },
                                        reload: reload, logLines: { Start.recentLogs.lines() }, logger: logger)
        dashboardBox.server.withLock { $0 = dashboard }
        do {
            let bound = try dashboard.start()
            logger.info("dashboard", metadata: ["url": "http://\(advertisedHost(config)):\(bound)/"])
        } catch {
            throw StartFailure("\(error)")
        }
        return dashboard
    }
}

/// The dashboard, for the metrics' consumer-lag reads that need its session (set once it exists).
final class DashboardHolder: Sendable {
    let server = Mutex<DashboardServer?>(nil)
}
