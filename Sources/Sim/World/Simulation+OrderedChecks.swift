import ProtocolCore
import StoreCore

/// Crashes of the ordered producers and the ordered checkers (reference §5.6): per lane the
/// broker takes messages in send order (the last copy of each, since a message with an unknown
/// outcome may be stored twice), and nothing promised `.spooled` is lost — not across a crash,
/// not across a power loss of the producer's disk, not at the end.
extension Simulation {
    /// The process dies: its connections reset, its memory (waiting sends) is gone, its disk stays,
    /// maybe after losing power.
    func crashOrdered(_ producer: SimOrderedProducer) {
        counters.orderedCrashes += 1
        producer.isUp = false
        for link in producer.links {
            if let connection = link.connection { network.closedByClient(connection) }
            link.connection = nil
        }
        producer.spool = nil
        let powerLoss = orderedRng.chance(options.ordered?.powerLossProbability ?? 0)
        if powerLoss {
            counters.orderedPowerLosses += 1
            producer.disk.powerLoss(using: &orderedRng)
        } else {
            producer.disk.crash()
        }
        trace(.orderedFault, Int64(producer.index), powerLoss ? 1 : 0,
              "FAULT \(producer.name) crashes\(powerLoss ? " with a power loss of its disk" : "")")
        schedule(.ordered(.restart(producer.index)), afterNs: Int64(orderedRng.int(in: 10...500)) * 1_000_000)
    }

    /// A process starts (first time or after a crash): a new queue and connections; the spool is
    /// reopened, checked against what was promised, and handed to the queue to replay.
    func restartOrdered(_ producer: SimOrderedProducer) {
        let first = producer.incarnation == 0
        producer.incarnation += 1
        producer.isUp = true
        producer.queue = OrderedSendQueue()
        for link in producer.links {
            link.machine = SimProducerLink.machine()
            link.connection = nil
        }
        producer.pendingKeys = []
        producer.transmitKeys = [:]
        reopenSpool(producer)
        guard let spool = producer.spool else { return fail("\(producer.name) cannot reopen its spool") }
        var kept: Set<UInt64> = []
        for (lane, count) in spool.lanes {
            for message in (try? spool.head(lane, max: count)) ?? [] {
                if let key = SimPayload.key(of: message.payload) { kept.insert(key) }
            }
        }
        let lost = orderedLedger.spooled.subtracting(orderedLedger.acknowledged).subtracting(kept)
            .filter { $0 >> 32 == UInt64(producer.keyPrefix) }
        if !lost.isEmpty {
            return fail("\(producer.name) lost spooled message(s) across a crash: \(lost.sorted().prefix(5).map { "#\($0 & 0xFFFF_FFFF)" })")
        }
        for (lane, count) in spool.lanes { orderedHandle(producer, .recovered(lane: lane, count: count)) }
        if first { schedule(.ordered(.produce(producer.index)), afterNs: Int64(orderedRng.int(in: 0...50)) * 1_000_000) }
    }

    /// Whether `key` names an ordered producer's message (which may be stored twice).
    func isOrdered(_ key: UInt64) -> Bool { orderedLedger.lanes[key] != nil }

    /// What the end waits for: every ordered producer up, done sending, its spool drained.
    func orderedWaiting() -> [String] {
        orderedProducers.compactMap { producer in
            let done = producer.isUp && producer.produced == producer.total && producer.pendingKeys.isEmpty
                && producer.queue.totalWaiting == 0 && producer.queue.totalSpooled == 0
            return done ? nil : "\(producer.name): \(producer.produced)/\(producer.total) sent, "
                + "\(producer.queue.totalSpooled) spooled, \(producer.pendingKeys.count) pending"
        }
    }

    /// At the end: every spooled message reached the broker, and per lane the last copies of the
    /// acknowledged messages arrived in send order.
    func checkOrderedAtTheEnd() {
        let lost = orderedLedger.spooled.subtracting(orderedLedger.acknowledged)
        if !lost.isEmpty {
            fail("\(lost.count) spooled ordered message(s) never reached the broker: "
                 + lost.sorted().prefix(5).map { "p\($0 >> 32)#\($0 & 0xFFFF_FFFF)" }.joined(separator: ", "))
        }
        for lane in orderedLedger.acks.keys.sorted() {  // `ordered<i> <lane>`
            if let problem = Self.orderProblem(orderedLedger.acks[lane]!) { fail("\(lane): \(problem)") }
        }
    }

    /// Nil when, taking each sequence at its last arrival, the sequences arrive increasing.
    static func orderProblem(_ arrivals: [Int]) -> String? {
        var last: [Int: Int] = [:]
        for (position, sequence) in arrivals.enumerated() { last[sequence] = position }
        let byLastArrival = last.keys.sorted { last[$0]! < last[$1]! }
        for (a, b) in zip(byLastArrival, byLastArrival.dropFirst()) where a > b {
            return "#\(b) reached the broker (last) after #\(a) though sent before it (arrivals \(arrivals.prefix(20)))"
        }
        return nil
    }
}
