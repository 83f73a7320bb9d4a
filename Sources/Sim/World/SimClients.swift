import ProtocolCore

/// A producer process of the simulation: the production `ProducerMachine` on one connection to
/// one broker, publishing `total` messages whose payloads name their producer and sequence, so
/// the checkers can recognise every byte a consumer is handed.
final class SimProducer {
    let client: Int
    let broker: Int
    var machine: ProducerMachine
    var connection: Int?
    var decoder = FrameDecoder()
    let total: Int
    var produced = 0
    var completed = 0

    init(client: Int, broker: Int, total: Int, maxInFlight: Int) {
        self.client = client
        self.broker = broker
        self.total = total
        machine = ProducerMachine(settings: .init(requestTimeoutMs: 400, maxInFlight: maxInFlight, maxQueued: 256,
                                                  reconnectBackoff: .init(stepMs: 10, maxMs: 200),
                                                  maxConsecutiveTimeouts: 2))
    }

    var isDone: Bool { produced == total && completed == total }
}

/// A consumer of one partition on one broker: the production `ConsumerMachine`. A consumer
/// crash starts a new machine (a new fetch run) at the last offset it committed.
final class SimConsumer {
    let client: Int
    let broker: Int
    let partition: TopicPartition
    var machine: ConsumerMachine
    var connection: Int?
    var decoder = FrameDecoder()
    /// Bumped by every restart: ordering is checked within one run.
    var run = 0
    var lastDeliveredOffset: Int64 = -1
    var deliveredInRun: Set<UInt64> = []
    var committedOffset: Int64 = 0
    /// The offset of damage the machine keeps reporting (bit rot the store cannot repair).
    var damagedAt: Int64?

    init(client: Int, broker: Int, partition: TopicPartition, fetchSize: Int32) {
        self.client = client
        self.broker = broker
        self.partition = partition
        machine = Self.machine(partition, startOffset: 0, fetchSize: fetchSize)
    }

    static func machine(_ partition: TopicPartition, startOffset: Int64, fetchSize: Int32) -> ConsumerMachine {
        ConsumerMachine(settings: .init(topic: partition.topic, group: "sim", partition: partition.partition,
                                        startOffset: startOffset, maxSizeBytes: fetchSize, maxMaxSizeBytes: 1 << 16,
                                        requestTimeoutMs: 400, fetchBackoff: .init(stepMs: 5, maxMs: 50),
                                        reconnectBackoff: .init(stepMs: 10, maxMs: 200), maxConsecutiveTimeouts: 2))
    }
}

/// The bytes of a simulated message: `SM`, producer (2 bytes), sequence (4 bytes), then
/// deterministic filler. `key` identifies it in the ledger.
enum SimPayload {
    static func make(producer: Int, sequence: Int, size: Int, rng: inout SimRandom) -> [UInt8] {
        var bytes: [UInt8] = [0x53, 0x4D, UInt8(producer >> 8 & 0xFF), UInt8(producer & 0xFF),
                              UInt8(sequence >> 24 & 0xFF), UInt8(sequence >> 16 & 0xFF),
                              UInt8(sequence >> 8 & 0xFF), UInt8(sequence & 0xFF)]
        bytes += rng.bytes(max(0, size - bytes.count))
        return bytes
    }

    static func key(producer: Int, sequence: Int) -> UInt64 { UInt64(producer) << 32 | UInt64(sequence) }

    /// The key a delivered payload claims, nil when it is not one of ours.
    static func key(of data: some Collection<UInt8>) -> UInt64? {
        let bytes = Array(data.prefix(8))
        guard bytes.count == 8, bytes[0] == 0x53, bytes[1] == 0x4D else { return nil }
        let producer = Int(bytes[2]) << 8 | Int(bytes[3])
        let sequence = Int(bytes[4]) << 24 | Int(bytes[5]) << 16 | Int(bytes[6]) << 8 | Int(bytes[7])
        return key(producer: producer, sequence: sequence)
    }
}
