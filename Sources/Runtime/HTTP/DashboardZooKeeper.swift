import NIOCore
import NIOHTTP1
import ProtocolCore
import StoreCore

/// The dashboard's reads (and its one write, `skip`) in ZooKeeper: consumer groups of a topic,
/// their lag, and the brokers of the cluster (reference §3.1, §7.2). Local mode has no ZooKeeper:
/// these answer nil and the pages say so.
extension DashboardServer {
    var layout: MetaZooKeeperLayout { MetaZooKeeperLayout(root: settings.zooKeeper?.root ?? "/meta") }

    /// How long a page waits for ZooKeeper before it shows what it has.
    static let zooKeeperWaitMs = 5_000

    /// A connected session, or an error text.
    func connectedSession() async -> Result<ZooKeeperSession, DashboardStartError> {
        guard let session = zooKeeper() else { return .failure(DashboardStartError(description: "no ZooKeeper session")) }
        guard await session.waitUntilConnected(timeoutMs: Self.zooKeeperWaitMs) else {
            return .failure(DashboardStartError(description: "not connected to \(settings.zooKeeper?.connect ?? "?") within \(Self.zooKeeperWaitMs) ms"))
        }
        return .success(session)
    }

    /// ZooKeeper requests through the dashboard's session once it is connected (nil in local mode
    /// or while it is not): `/metrics` reads consumer lag with it, so the broker keeps one
    /// read-only session for both.
    public func coordinationPerform() async -> ConsumerLag.Perform? {
        guard case .success(let session) = await connectedSession() else { return nil }
        return { await session.perform($0) }
    }

    /// The topic page's group block: nil in local mode.
    func groupView(topic: String, group: String?, observation: BrokerObservation, loop: any EventLoop) -> EventLoopFuture<GroupView?> {
        guard settings.zooKeeper != nil else { return loop.makeSucceededFuture(nil) }
        let layout = self.layout
        let promise = loop.makePromise(of: GroupView?.self)
        promise.completeWithReadTask {
            let session: ZooKeeperSession
            switch await self.connectedSession() {
            case .success(let s): session = s
            case .failure(let error): return GroupView(groups: [], group: group, lags: nil, error: error.description)
            }
            let perform: ConsumerLag.Perform = { await session.perform($0) }
            do {
                let groups = try await ConsumerLag.groups(of: topic, layout: layout, perform: perform)
                guard let group else { return GroupView(groups: groups, group: nil, lags: nil, error: nil) }
                let state = try await ConsumerLag.read(group: group, topic: topic, brokerId: observation.config.brokerId,
                                                       layout: layout, perform: perform)
                let known = !state.offsets.isEmpty || !state.owners.isEmpty || groups.contains(group)
                let lags = known ? ConsumerLag.compute(brokerId: observation.config.brokerId, topic: topic,
                                                       observation: observation, state: state) : nil
                return GroupView(groups: groups, group: group, lags: lags, error: nil)
            } catch {
                return GroupView(groups: [], group: group, lags: nil, error: "\(error)")
            }
        }
        return promise.futureResult
    }

    /// `POST …/skip` (reference §7.2): sets the group's offset of this broker's partition to
    /// `0-<maxOffset>`, refused (409) while a consumer owns the partition, as the original did.
    func skip(topic: String, group: String, partition: Int32, loop: any EventLoop) -> EventLoopFuture<DashboardResponse> {
        guard settings.zooKeeper != nil else {
            return loop.makeSucceededFuture(.text(.conflict, "this broker runs without ZooKeeper (local mode): there are no group offsets to skip"))
        }
        let layout = self.layout
        return observe().hop(to: loop).flatMap { observation in
            guard let stats = observation.snapshot.partitions.first(where: { $0.partition == TopicPartition(topic, partition) }) else {
                return loop.makeSucceededFuture(.text(.notFound, "no partition \(topic)-\(partition) on this broker"))
            }
            let key = BrokerPartition(brokerId: observation.config.brokerId, partition: Int(partition))
            let promise = loop.makePromise(of: DashboardResponse.self)
            promise.completeWithReadTask {
                let session: ZooKeeperSession
                switch await self.connectedSession() {
                case .success(let s): session = s
                case .failure(let error): return .text(.serviceUnavailable, "ZooKeeper: \(error)")
                }
                let perform: ConsumerLag.Perform = { await session.perform($0) }
                do {
                    if let owner = try await ConsumerLag.data(layout.ownerPath(group, topic, key), perform), !owner.isEmpty {
                        return .text(.conflict, "cannot skip: partition \(key) is owned by \(owner); stop the group's consumers first")
                    }
                    let path = layout.offsetPath(group, topic, key)
                    let data = Array(StoredOffset(msgId: 0, offset: stats.maxOffset).text.utf8)
                    var reply = await perform(.setData(path: path, data: data))
                    if reply == .failed(.noNode) {
                        for parent in MetaZooKeeperLayout.ancestors(of: path) {
                            _ = await perform(.create(path: parent, data: nil, mode: .persistent))
                        }
                        reply = await perform(.create(path: path, data: data, mode: .persistent))
                    }
                    switch reply {
                    case .dataSet, .created: return .text(.ok, "success: \(group) now at offset \(stats.maxOffset) of \(key)")
                    default: return .text(.badGateway, "ZooKeeper refused the offset: \(reply)")
                    }
                } catch {
                    return .text(.badGateway, "ZooKeeper: \(error)")
                }
            }
            return promise.futureResult
        }
    }

    /// Every broker under `<root>/brokers/ids`: its master and slaves with their dashboards; nil
    /// in local mode.
    func clusterView(loop: any EventLoop) -> EventLoopFuture<ClusterView?> {
        guard settings.zooKeeper != nil else { return loop.makeSucceededFuture(nil) }
        let layout = self.layout
        let promise = loop.makePromise(of: ClusterView?.self)
        promise.completeWithReadTask {
            let session: ZooKeeperSession
            switch await self.connectedSession() {
            case .success(let s): session = s
            case .failure(let error): return ClusterView(nodes: [], error: error.description)
            }
            let perform: ConsumerLag.Perform = { await session.perform($0) }
            do {
                var nodes: [ClusterView.Node] = []
                let ids = try await ConsumerLag.children(layout.brokerIdsPath, perform).compactMap(Int.init).filter { $0 >= 0 }.sorted()
                for id in ids {
                    var brokers: [ClusterView.Broker] = []
                    if let uri = try await ConsumerLag.data(layout.masterPath(id), perform) {
                        brokers.append(.init(uri: uri, slaveId: nil, dashboardURI: nil))
                    }
                    let slaves = try await ConsumerLag.children(layout.brokerPath(id), perform)
                        .compactMap { $0.hasPrefix("slave") ? Int($0.dropFirst(5)) : nil }.sorted()
                    for slave in slaves {
                        if let uri = try await ConsumerLag.data(layout.slavePath(id, slaveId: slave), perform) {
                            brokers.append(.init(uri: uri, slaveId: slave, dashboardURI: nil))
                        }
                    }
                    nodes.append(.init(id: id, brokers: brokers))
                }
                return ClusterView(nodes: nodes, error: nil)
            } catch {
                return ClusterView(nodes: [], error: "\(error)")
            }
        }
        return promise.futureResult.flatMap { view in
            guard let view else { return loop.makeSucceededFuture(nil) }
            // Each broker's dashboard port, learned the original's way: its `stats config`.
            var lookups: [EventLoopFuture<(Int, Int, String?)>] = []
            for (n, node) in view.nodes.enumerated() {
                for (b, broker) in node.brokers.enumerated() {
                    lookups.append(self.dashboardURI(of: broker.uri, loop: loop).map { (n, b, $0) })
                }
            }
            return EventLoopFuture.whenAllSucceed(lookups, on: loop).map { found in
                var view = view
                for (n, b, uri) in found { view.nodes[n].brokers[b].dashboardURI = uri }
                return view
            }
        }
    }

    /// `http://host:<dashboardHttpPort>` of the broker at `meta://host:port`, from its
    /// `stats config` (cached `clusterPortCacheMs`); nil when it cannot be learned.
    func dashboardURI(of brokerURI: String, loop: any EventLoop) -> EventLoopFuture<String?> {
        guard let (host, port) = Self.hostPort(brokerURI) else { return loop.makeSucceededFuture(nil) }
        let key = "\(host):\(port)"
        let now = Clocks.wallMs()
        if let cached = state.withLockedValue({ $0.dashboardPorts[key] }), now - cached.wallMs < settings.clusterPortCacheMs {
            return loop.makeSucceededFuture(cached.port.map { "http://\(host):\($0)" })
        }
        return blocking.runIfActive(eventLoop: loop) { () -> Int? in
            let text = try Self.askStats(host: host, port: port, item: "config", timeoutSeconds: 2)
            return Self.dashboardPort(inConfig: text)
        }.recover { _ in nil }.map { learned in
            self.state.withLockedValue { $0.dashboardPorts[key] = (learned, now) }
            return learned.map { "http://\(host):\($0)" }
        }
    }

    /// `meta://host:port` → (host, port).
    static func hostPort(_ uri: String) -> (String, Int)? {
        guard uri.hasPrefix("meta://") else { return nil }
        let rest = uri.dropFirst("meta://".count)
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...].prefix { $0.isNumber }),
              (1...65535).contains(port) else { return nil }
        let host = String(rest[..<colon])
        return host.isEmpty ? nil : (host, port)
    }

    /// `dashboardHttpPort` of a server.ini text (the `stats config` answer, after its `STATS`
    /// line); 8120 when the file does not set it (§8.1), nil when it does not parse.
    static func dashboardPort(inConfig text: String) -> Int? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.first?.hasPrefix("STATS") == true { lines.removeFirst() }
        if let end = lines.lastIndex(where: { $0.hasPrefix("END") }) { lines.removeSubrange(end...) }
        let ini = lines.joined(separator: "\n")
        if let config = try? ServerConfig(parsing: ini, path: "stats config") { return config.dashboardHttpPort }
        return nil
    }
}
