/// MetaQClient: the Swift client library. It wires the ProtocolCore client machines (producer,
/// consumer fetch loop, group membership, publish directory) to the Runtime's sockets, clocks and
/// ZooKeeper session. It holds no protocol rule of its own.
import Logging
import NIOCore
import NIOPosix
import ProtocolCore
import Runtime

/// A broker's `meta://host:port` address. The type lives in ProtocolCore (the config parser and
/// the broker read addresses too); this name keeps it visible to code that imports only MetaQClient.
public typealias BrokerAddress = ProtocolCore.BrokerAddress

/// A connection to a MetaQ cluster: through ZooKeeper (brokers, partitions and consumer groups
/// are discovered from MetaQ's znodes, reference §3), or directly to a list of brokers (§1.7).
///
/// One client owns one event loop thread, one ZooKeeper session and one connection per broker
/// per producer and per fetched partition. Create producers and consumers from it; call
/// `shutdown()` when done.
public final class MetaQClient: Sendable {
    let engine: ClientEngine

    /// A client that discovers brokers through ZooKeeper (`host:port[,host:port…]`), under
    /// `root` (`zk.zkRoot`, §8.2).
    public init(zooKeeper connect: String, root: String = "/meta", sessionTimeoutMs: Int = 30_000,
                logger: Logger = Logger(label: "metaq-client")) throws {
        engine = try ClientEngine(mode: .zooKeeper(connect: connect, sessionTimeoutMs: sessionTimeoutMs),
                                  layout: MetaZooKeeperLayout(root: root), logger: logger)
        try engine.openSession()
    }

    /// A client that talks to these brokers directly (`meta://host:port`), with no ZooKeeper:
    /// producers send to partition `-1` (the broker picks, §1.7), consumers fetch the partitions
    /// they are given. Broker `i` of the list has broker id `i` in `BrokerPartition`s.
    public init(servers: [String], logger: Logger = Logger(label: "metaq-client")) throws {
        var addresses: [BrokerAddress] = []
        for server in servers {
            guard let address = BrokerAddress(uri: server) else {
                throw MetaQClientError("not a broker address: \(server) (expected meta://host:port)")
            }
            addresses.append(address)
        }
        guard !addresses.isEmpty else { throw MetaQClientError("no broker address given") }
        engine = try ClientEngine(mode: .direct(addresses), layout: MetaZooKeeperLayout(), logger: logger)
    }

    /// A producer (§3.3). Call `publish(_:)` for its topics (or just send: the first send of a
    /// topic publishes it).
    public func producer(_ settings: ProducerSettings = ProducerSettings()) -> MetaQProducer {
        MetaQProducer(engine: engine, settings: settings)
    }

    /// An ordered producer (§5.6): per-key order over the configured partitions, with a local
    /// spool for partitions that are unavailable. Messages an earlier producer left in the spool
    /// are replayed first.
    ///
    /// - Throws: `MetaQClientError` for an empty or duplicated partition list, a partition whose
    ///   broker id is not one of the servers (direct mode), or a spool that cannot be opened.
    public func orderedProducer(_ settings: OrderedProducerSettings) throws -> MetaQOrderedProducer {
        try MetaQOrderedProducer(engine: engine, settings: settings)
    }

    /// A member of consumer group `group` (§3.4, §5.1).
    public func consumer(group: String, _ settings: ConsumerSettings = ConsumerSettings()) throws -> MetaQConsumer {
        try MetaQConsumer(engine: engine, group: group, settings: settings)
    }

    /// A broadcast consumer (§5.5): the group becomes `<group>-<local IP with '.' and ':' as '-'>`
    /// and offsets are kept in a local file, so every machine receives every message.
    public func broadcastConsumer(group: String, _ settings: ConsumerSettings = ConsumerSettings()) throws -> MetaQConsumer {
        var settings = settings
        if case .zooKeeper = settings.offsetStorage { settings.offsetStorage = .localFile(LocalOffsetFile.defaultPath) }
        let ip = NetworkAddresses.firstNonLoopbackIPv4() ?? "127.0.0.1"
        let suffix = String(ip.map { $0 == "." || $0 == ":" ? "-" : $0 })
        return try MetaQConsumer(engine: engine, group: group + "-" + suffix, settings: settings)
    }

    /// Closes every consumer (committing offsets), the producers' connections and the ZooKeeper session.
    public func shutdown() async {
        await engine.shutdown()
    }
}

/// A client-side error: what failed, and where.
public struct MetaQClientError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
