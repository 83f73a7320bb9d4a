import ProtocolCore
import Sim
import StoreCore

/// Hostile bytes on a few connections: each input is cut into chunks of random sizes (decided by
/// the input itself) and fed to the frame decoder of one of three connections; every decoded
/// frame goes to the production `BrokerMachine` and `PartitionStores` over a `SimDisk`.
///
/// Invariants, checked with `precondition` (a trap is a finding):
/// - nothing is created outside the data directory, and every directory in it is a partition
///   `<topic>-<n>` whose topic the broker would accept from the wire;
/// - a decoder never holds more than a line and a body beyond what one chunk added;
/// - every request is finished when its actions are (nothing left pending in the machine);
/// - after a crash and a restart (recovery), every acknowledged put is read back at its offset
///   with its payload.
///
/// The machine's actions are carried out synchronously here, each append synced at once. The
/// runtime's pipeline (staging, group commit on a sync thread) is exercised by the simulator and
/// the integration tests; this target is about what bytes from the wire can make the machine do.
public enum BrokerWireFuzz {
    static let dataPath = "/data"
    static let serverIni = """
        [system]
        brokerId=7
        numPartitions=2
        unflushThreshold=0
        maxSegmentSize=300
        maxTransferSize=2048
        [zookeeper]
        zk.zkEnable=false
        [topic=test]
        numPartitions=3
        [topic=w-*]
        stat=true
        [topic=filtered]
        group.g1=prefix:a
        """

    public static func run(_ input: [UInt8]) {
        guard input.count >= 2 else { return }
        var driver = Driver()
        var random = SplitMix64(seed: UInt64(input[0]) << 8 | UInt64(input[1]))
        var position = 2
        while position < input.count {
            let size = 1 + Int(random.next() % 97)
            let end = min(input.count, position + size)
            let connection = random.next() % 3
            if random.next() % 61 == 0 {
                driver.close(connection)
            } else {
                driver.receive(Array(input[position..<end]), on: connection)
            }
            position = end
        }
        driver.checkFilesStayInTheDataDirectory()
        driver.checkAcknowledgedPutsSurviveARestart()
    }
}

extension BrokerWireFuzz {
    struct Acknowledged {
        var partition: TopicPartition
        var offset: Int64
        var payload: [UInt8]
    }

    /// One broker over an in-memory disk, its connections and what it acknowledged.
    struct Driver {
        let disk = SimDisk()
        let stores: PartitionStores
        var machine: BrokerMachine
        var decoders: [UInt64: FrameDecoder] = [:]
        var nowMs: Int64 = 1_700_000_000_000
        /// Appends waiting for their `.appended` answer: token → record.
        var appending: [UInt64: (TopicPartition, [UInt8])] = [:]
        var acknowledged: [Acknowledged] = []
        /// Puts answered with success, by (connection, opaque): must each match an acknowledged append.
        var putAnswers = 0

        init() {
            let config: ServerConfig
            do { config = try ServerConfig(parsing: BrokerWireFuzz.serverIni, path: "fuzz/server.ini") } catch {
                preconditionFailure("the fuzz server.ini does not parse: \(error)")
            }
            stores = PartitionStores(storage: disk, config: config, defaultDataPath: BrokerWireFuzz.dataPath)
            let settings = BrokerMachine.Settings(
                brokerId: config.brokerId, brokerURI: "meta://fuzz:8123", port: 8123, version: "fuzz",
                maxTransferSize: Int32(config.maxTransferSize), updateConsumerOffsets: false, topics: stores.topicRules())
            machine = BrokerMachine(settings: settings, partitionsWithData: [], idReservationMs: 0, seed: 1)
        }

        mutating func receive(_ bytes: [UInt8], on connection: UInt64) {
            var decoder = decoders.removeValue(forKey: connection) ?? FrameDecoder()
            decoder.feed(bytes)
            nowMs += 1
            var frames: [Frame] = []
            var failed = false
            do {
                while let frame = try decoder.next() { frames.append(frame) }
            } catch {
                failed = true  // a framing error closes the connection (reference §1.1)
            }
            let bound = decoder.limits.maxLineBytes + decoder.limits.maxBodyBytes + bytes.count + 2
            precondition(decoder.bufferedByteCount <= bound, "decoder holds \(decoder.bufferedByteCount) bytes")
            for frame in frames { handle(.request(ConnectionID(connection), frame)) }
            if failed { close(connection) } else { decoders[connection] = decoder }
        }

        mutating func close(_ connection: UInt64) {
            decoders[connection] = nil
            handle(.connectionClosed(ConnectionID(connection)))
        }

        mutating func handle(_ event: BrokerMachine.Event) {
            let actions = machine.handle(event, nowMs: nowMs)
            for action in actions { perform(action) }
            precondition(machine.pendingCount == 0, "a request was left unfinished: \(event)")
        }
    }
}
