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

/// One routed producer process.
final class SimRoutedProducer {
    let index: Int
    /// The producer number in message keys (after the plain and ordered producers).
    let keyPrefix: Int
    let total: Int
    var directory = PublishDirectory(retryDelayMs: 100)
    var router = ProducerRouter()
    var session: SimZKSession?
    /// One link per broker (`links[b].broker == b`).
    var links: [SimProducerLink]
    var produced = 0
    var completed = 0
    /// Sends the router holds or is about to route: key → payload.
    var unrouted: [UInt64: [UInt8]] = [:]

    init(index: Int, keyPrefix: Int, total: Int, firstClient: Int, brokers: Int) {
        self.index = index
        self.keyPrefix = keyPrefix
        self.total = total
        links = (0..<brokers).map { SimProducerLink(client: firstClient + $0, broker: $0) }
    }

    var name: String { "routed\(index)" }
    var isDone: Bool { produced == total && completed == total }
}

