import ProtocolCore
import StoreCore

/// Everything one seed decides about a run (DESIGN.md §6, "swarm" testing): the cluster, the
/// workload and how often each fault fires. Drawn from the seed's generator before anything
/// else, so a seed names one world.
public struct SimOptions: Sendable, CustomStringConvertible {
    public enum Flush: Sendable, Equatable, CustomStringConvertible {
        /// `unflushThreshold=0`: a put is answered after the fdatasync that covers it.
        case groupCommit
        /// `unflushThreshold=N`, `unflushInterval=ms`: answered after the write.
        case threshold(count: Int, intervalMs: Int)

        public var description: String {
            switch self {
            case .groupCommit: return "group-commit"
            case .threshold(let n, let ms): return "threshold(\(n), \(ms)ms)"
            }
        }
    }

    /// Fault rates: expected events per simulated second of the safety phase.
    public struct Faults: Sendable, CustomStringConvertible {
        public var powerLossOne: Double
        public var powerLossAll: Double
        public var crash: Double
        public var disconnect: Double
        public var partition: Double
        public var slowDisk: Double
        public var latentError: Double
        public var consumerCrash: Double

        public var description: String {
            func f(_ x: Double) -> String { String(Int((x * 10).rounded())) }
            return "powerLoss=\(f(powerLossOne)) powerLossAll=\(f(powerLossAll)) crash=\(f(crash)) "
                + "disconnect=\(f(disconnect)) partition=\(f(partition)) slowDisk=\(f(slowDisk)) "
                + "latent=\(f(latentError)) consumerCrash=\(f(consumerCrash)) (per 10 s)"
        }
    }

    public var brokers: Int
    /// Topic name → partitions; every broker accepts every topic.
    public var topics: [(name: String, partitions: Int)]
    public var maxSegmentSize: Int
    public var flush: Flush
    public var producers: Int
    public var messagesPerProducer: Int
    public var messageSizes: ClosedRange<Int>
    public var produceIntervalMs: ClosedRange<Int>
    /// Producer window: puts in flight per connection.
    public var maxInFlight: Int
    public var fetchSize: Int32
    public var networkDelayMs: ClosedRange<Int>
    public var syncLatencyMs: ClosedRange<Int>
    public var safetyPhaseMs: Int
    public var faults: Faults
    /// The canary: acknowledge group-commit puts after the write instead of after the sync.
    public var canaryAckBeforeSync: Bool

    /// Draws a world from `rng`.
    public init(drawingFrom rng: inout SimRandom, canary: Bool = false) {
        brokers = rng.int(in: 1...3)
        let topicCount = rng.int(in: 1...2)
        topics = (0..<topicCount).map { ("t\($0)", rng.int(in: 1...3)) }
        maxSegmentSize = rng.pick([512, 1024, 2048, 8192])
        flush = rng.chance(0.6) ? .groupCommit : .threshold(count: rng.int(in: 1...20), intervalMs: rng.int(in: 5...200))
        producers = rng.int(in: 1...4)
        messagesPerProducer = rng.int(in: 10...60)
        let largest = rng.pick([16, 100, 400])
        messageSizes = 12...largest
        let gap = rng.int(in: 1...20)
        produceIntervalMs = 0...gap
        maxInFlight = rng.int(in: 1...16)
        fetchSize = Int32(rng.pick([64, 256, 1024, 8192]))
        networkDelayMs = 0...rng.int(in: 0...5)
        syncLatencyMs = 0...rng.int(in: 1...8)
        safetyPhaseMs = rng.int(in: 500...3000)
        func rate(_ p: Double, _ max: Double) -> Double { rng.chance(p) ? rng.unit() * max : 0 }
        faults = Faults(powerLossOne: rate(0.5, 4), powerLossAll: rate(0.25, 2), crash: rate(0.4, 4),
                        disconnect: rate(0.5, 10), partition: rate(0.3, 4), slowDisk: rate(0.3, 4),
                        latentError: rate(0.15, 2), consumerCrash: rate(0.3, 4))
        canaryAckBeforeSync = canary
    }

    /// The `server.ini` of broker `id` in this world (MetaQ's format, §8), parsed by the same
    /// code as a real broker's.
    public func serverIni(brokerId: Int) -> String {
        var lines = ["[system]", "brokerId=\(brokerId)", "numPartitions=1", "dataPath=/broker\(brokerId)",
                     "maxSegmentSize=\(maxSegmentSize)", "maxTransferSize=65536"]
        switch flush {
        case .groupCommit: lines += ["unflushThreshold=0", "unflushInterval=10000"]
        case .threshold(let n, let ms): lines += ["unflushThreshold=\(n)", "unflushInterval=\(ms)"]
        }
        for topic in topics { lines += ["", "[topic=\(topic.name)]", "numPartitions=\(topic.partitions)"] }
        return lines.joined(separator: "\n") + "\n"
    }

    public var description: String {
        let topicText = topics.map { "\($0.name):\($0.partitions)" }.joined(separator: ",")
        return "brokers=\(brokers) topics=\(topicText) segment=\(maxSegmentSize) flush=\(flush) "
            + "producers=\(producers)x\(messagesPerProducer) sizes=\(messageSizes.lowerBound)-\(messageSizes.upperBound) "
            + "gap=\(produceIntervalMs.upperBound)ms window=\(maxInFlight) fetch=\(fetchSize) "
            + "net=\(networkDelayMs.upperBound)ms sync=\(syncLatencyMs.upperBound)ms safety=\(safetyPhaseMs)ms"
            + (canaryAckBeforeSync ? " CANARY(ack-before-sync)" : "")
            + "\n  faults: \(faults)"
    }
}
