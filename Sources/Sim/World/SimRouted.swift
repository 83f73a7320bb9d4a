import ProtocolCore

/// Routed producers in the world (reference §3.3): the client's routing path as production runs
/// it — a `PublishDirectory` over the producer's own ZooKeeper session, a `ProducerRouter` that
/// decides when and among which partitions a send goes, and one `ProducerMachine` per broker.
/// Drawn from its own stream of the seed (`SimRouted.stream`), so worlds without one draw nothing
/// new from the other streams and run byte for byte as before.
public struct SimRouted: Sendable, Equatable, CustomStringConvertible {
    /// Routed producers (each with its own session, directory, router and links).
    public var producers: Int
    /// Messages each sends, to topics chosen at random.
    public var messages: Int
    /// The router's bound on sends waiting for a topic's partitions (0: refuse them all).
    public var maxBacklog: Int
    /// How long the first waiting send of a topic waits for discovery.
    public var discoveryTimeoutMs: Int

    /// The constant keeps every seed pinned in SimTests (2, 14, 97, 136, 137, 185, 304, 316, and
    /// the determinism seeds) routed-free, so their scenarios still run byte for byte as pinned.
    public static func stream(seed: UInt64) -> SimRandom { SimRandom(seed: seed ^ 0x2EB0_E5C1_D94A_9294) }

    /// Nil for about half the worlds.
    static func draw(_ rng: inout SimRandom) -> SimRouted? {
        guard rng.chance(0.5) else { return nil }
        return SimRouted(producers: rng.int(in: 1...2), messages: rng.int(in: 10...60),
                         maxBacklog: rng.chance(0.1) ? 0 : rng.int(in: 1...32),
                         discoveryTimeoutMs: rng.chance(0.2) ? rng.int(in: 1...20) : rng.int(in: 200...3000))
    }

    public var description: String {
        "routed: \(producers)x\(messages) backlog=\(maxBacklog) discovery-timeout=\(discoveryTimeoutMs)ms"
    }
}

/// What hits the routed producers besides the world's faults (reference §3.3): their own
/// ZooKeeper sessions expire or lose their connection (the directory must re-watch and re-read),
/// the application calls `publish(topic)` and waits for the topic's partitions, and a producer may
/// shut down with sends and waits outstanding (each must be answered).
///
/// Drawn from a stream of its own, only in worlds with routed producers: a routed world that
/// draws none runs exactly as before.
public struct SimRoutedFaults: Sendable, Equatable, CustomStringConvertible {
    /// Session expiries and connection losses per second (over all routed producers).
    public var expiryRate: Double
    public var disconnectRate: Double
    /// `publish(topic)` waits per second, and the longest timeout one asks for.
    public var publishWaitRate: Double
    public var publishWaitMaxMs: Int
    /// The chance that a routed producer shuts down during the safety phase.
    public var shutdownProbability: Double

    public static func stream(seed: UInt64) -> SimRandom { SimRandom(seed: seed ^ 0x47C3_9E05_B1D8_6A2F) }

    /// Nil for worlds without routed producers and for about a third of those with; draws
    /// nothing from `rng` when there are none.
    static func draw(_ rng: inout SimRandom, routed: Bool) -> SimRoutedFaults? {
        guard routed, rng.chance(0.65) else { return nil }
        return SimRoutedFaults(expiryRate: rng.chance(0.7) ? 0.5 + rng.unit() * 6 : 0,
                               disconnectRate: rng.chance(0.7) ? 0.5 + rng.unit() * 8 : 0,
                               publishWaitRate: rng.chance(0.7) ? 1 + rng.unit() * 20 : 0,
                               publishWaitMaxMs: rng.chance(0.2) ? rng.int(in: 1...20) : rng.int(in: 100...3000),
                               shutdownProbability: rng.chance(0.6) ? 0.3 + rng.unit() * 0.6 : 0)
    }

    var totalRate: Double { expiryRate + disconnectRate + publishWaitRate }

    public var description: String {
        func rate(_ r: Double) -> String { "\(Int((r * 10).rounded()) / 10).\(Int((r * 10).rounded()) % 10)/s" }
        return "routed faults: zk-expiry=\(rate(expiryRate)) zk-disconnect=\(rate(disconnectRate)) "
            + "publish-waits=\(rate(publishWaitRate)) (\(publishWaitMaxMs)ms max) shutdown=\(Int((shutdownProbability * 100).rounded()))%"
    }
}

/// One routed producer process.
final class SimRoutedProducer {
    let index: Int
    /// The producer number in message keys (after the plain and ordered producers).
    let keyPrefix: Int
    let total: Int
    var directory = PublishDirectory(retryDelayMs: 100)
    var router: ProducerRouter
    var session: SimZKSession?
    /// One link per broker (`links[b].broker == b`).
    var links: [SimProducerLink]
    var produced = 0
    var completed = 0
    /// Sends the router holds or is about to route: key → payload.
    var unrouted: [UInt64: [UInt8]] = [:]
    /// `publish(topic)` waits not answered yet: waiter → (topic, when it times out).
    var waiters: [UInt64: (topic: String, deadlineNs: Int64)] = [:]
    var nextWaiter: UInt64 = 1
    /// Its shutdown is due: it comes the moment something waits for discovery (or after a few
    /// postponements).
    var shutdownArmed = false

    init(index: Int, keyPrefix: Int, total: Int, firstClient: Int, brokers: Int, router: ProducerRouter = ProducerRouter()) {
        self.router = router
        self.index = index
        self.keyPrefix = keyPrefix
        self.total = total
        links = (0..<brokers).map { SimProducerLink(client: firstClient + $0, broker: $0) }
    }

    var name: String { "routed\(index)" }
    var isDone: Bool { produced == total && completed == total }
}

