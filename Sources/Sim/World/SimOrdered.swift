import ProtocolCore
import StoreCore

/// Ordered producers in the world (reference §5.6): the production `OrderedSendQueue` and its
/// `OrderedSpool` on the producer's own `SimDisk`, which survives the producer's crashes and may
/// lose power with it. Drawn from a fourth stream of the seed (`SimOrdered.stream`), so worlds
/// without one draw nothing new from the other streams.
public struct SimOrdered: Sendable, Equatable, CustomStringConvertible {
    /// Ordered producers (each with its own disk and one connection per broker).
    public var producers: Int
    /// Messages each sends, to lanes chosen at random.
    public var messages: Int
    /// Process crashes of each, at random in the safety phase.
    public var crashes: Int
    /// The chance that a crash is a power loss of its disk too.
    public var powerLossProbability: Double
    /// The chance that one spool write fails (its sync throws, as after an EIO).
    public var spoolFaultProbability: Double

    public static func stream(seed: UInt64) -> SimRandom { SimRandom(seed: seed ^ 0x71D3_9A0B_C4E5_2F68) }

    /// Nil for about half the worlds.
    static func draw(_ rng: inout SimRandom) -> SimOrdered? {
        guard rng.chance(0.5) else { return nil }
        return SimOrdered(producers: rng.int(in: 1...2), messages: rng.int(in: 10...60), crashes: rng.int(in: 0...3),
                          powerLossProbability: rng.unit(), spoolFaultProbability: rng.chance(0.5) ? rng.unit() * 0.2 : 0)
    }

    public var description: String {
        "ordered: \(producers)x\(messages) crashes=\(crashes) power-loss=\(Int((powerLossProbability * 100).rounded()))% "
            + "spool-faults=\(Int((spoolFaultProbability * 100).rounded()))%"
    }
}

/// One ordered producer process: its queue, spool and per-broker connections; the checkers'
/// record of what it promised (spooled) and what reached the broker (observed acks, per lane).
final class SimOrderedProducer {
    let index: Int
    /// The producer number in message keys (after the plain producers).
    let keyPrefix: Int
    let total: Int
    var queue = OrderedSendQueue()
    var links: [SimProducerLink]
    let disk = SimDisk()
    var spool: OrderedSpool?
    var incarnation = 0
    var isUp = false
    /// The next sequence to send.
    var produced = 0
    /// Ledger keys of the current process's sends not completed yet.
    var pendingKeys: Set<UInt64> = []
    /// Queue token → ledger key of a transmit in flight.
    var transmitKeys: [UInt64: UInt64] = [:]

    init(index: Int, keyPrefix: Int, total: Int, firstClient: Int, brokers: Int) {
        self.index = index
        self.keyPrefix = keyPrefix
        self.total = total
        links = (0..<brokers).map { SimProducerLink(client: firstClient + $0, broker: $0) }
    }

    var name: String { "ordered\(index)" }
}

/// A simulated producer's connection to one broker (ordered and routed producers): the production
/// `ProducerMachine`.
final class SimProducerLink {
    let client: Int
    let broker: Int
    var machine = SimProducerLink.machine()
    var connection: Int?
    var decoder = FrameDecoder()

    init(client: Int, broker: Int) {
        self.client = client
        self.broker = broker
    }

    static func machine() -> ProducerMachine {
        ProducerMachine(settings: .init(requestTimeoutMs: 400, maxInFlight: 16, maxQueued: 256,
                                        reconnectBackoff: .init(stepMs: 10, maxMs: 200), maxConsecutiveTimeouts: 2))
    }
}

/// What the ordered checkers know: keys promised `.spooled`, keys whose put the broker
/// acknowledged, and per lane the sequences in the order their acks arrived.
struct SimOrderedLedger {
    /// The lane each ordered message was sent to.
    var lanes: [UInt64: OrderedLane] = [:]
    var spooled: Set<UInt64> = []
    var acknowledged: Set<UInt64> = []
    /// Per producer and lane (`ordered<i> <lane>`; order is kept per producer), the sequences of
    /// acknowledged puts in arrival order (duplicates included).
    var acks: [String: [Int]] = [:]
}
