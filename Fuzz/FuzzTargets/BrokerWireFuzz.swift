import BrokerCore
import ProtocolCore
import Sim
import StoreCore

/// Hostile bytes on a few connections: each input is cut into chunks of random sizes (decided by
/// the input itself) and fed to the frame decoder of one of three connections; every decoded
/// frame goes to the production `BrokerNode` (machine, stores, commit pipeline) over a `SimDisk`.
///
/// Invariants, checked with `precondition` (a trap is a finding):
/// - nothing is created outside the data directory, and every directory in it is a partition
///   `<topic>-<n>` whose topic the broker would accept from the wire;
/// - a decoder never holds more than a line and a body beyond what one chunk added;
/// - the node's invariants hold after every chunk, and a graceful stop leaves no request
///   unfinished (nothing pending in the machine, no put unanswered);
/// - after the stop, a crash and a restart (recovery), every acknowledged put is read back at its
///   offset with its payload.
///
/// Each chunk is one tick; a sync the node starts runs at once. The timing of syncs is the
/// simulator's business; this target is about what bytes from the wire can make the node do.
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
        driver.stop()
        driver.checkFilesStayInTheDataDirectory()
        driver.checkAcknowledgedPutsSurviveARestart()
    }
}

extension BrokerWireFuzz {
    /// An acknowledged put: its offset and partition number, and the puts it may answer — hostile
    /// clients reuse opaques, so one answer can match several puts of its connection; one of them
    /// must be stored there.
    struct Acknowledged {
        var partition: Int32
        var offset: Int64
        var candidates: [(topic: String, payload: [UInt8])]
    }

    /// One broker node over an in-memory disk, its connections and what it acknowledged.
    struct Driver {
        let disk = SimDisk()
        let node: BrokerNode
        var decoders: [UInt64: FrameDecoder] = [:]
        var nowMs: Int64 = 0
        /// Puts decoded and not answered yet, by (connection, opaque): what an answer acknowledges.
        var puts: [PutKey: [(topic: String, payload: [UInt8])]] = [:]
        var acknowledged: [Acknowledged] = []
        var putAnswers = 0

        struct PutKey: Hashable {
            var connection: UInt64
            var opaque: Int32
        }

        init() {
            let config: ServerConfig
            do { config = try ServerConfig(parsing: BrokerWireFuzz.serverIni, path: "fuzz/server.ini") } catch {
                preconditionFailure("the fuzz server.ini does not parse: \(error)")
            }
            disk.nowMs = 1_700_000_000_000
            let settings = BrokerNode.Settings(brokerURI: "meta://fuzz:8123", version: "fuzz",
                                               configFile: Array(BrokerWireFuzz.serverIni.utf8), seed: 1)
            do {
                node = try BrokerNode.open(storage: disk, config: config, defaultDataPath: BrokerWireFuzz.dataPath,
                                           settings: settings, clock: NodeClock(now: .zero, wallMs: disk.nowMs)).0
            } catch {
                preconditionFailure("the fuzz broker does not start: \(error)")
            }
        }

        var clock: NodeClock { NodeClock(now: Instant(nanoseconds: nowMs * 1_000_000), wallMs: 1_700_000_000_000 + nowMs) }

        mutating func receive(_ bytes: [UInt8], on connection: UInt64) {
            var decoder = decoders.removeValue(forKey: connection) ?? FrameDecoder()
            if decoders.count < 3 && decoder.bufferedByteCount == 0 { handle(.connectionOpened(ConnectionID(connection))) }
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
            for frame in frames {
                if case .put(let put) = frame {
                    puts[PutKey(connection: connection, opaque: put.opaque), default: []].append((put.topic, put.body))
                }
                handle(.request(ConnectionID(connection), frame))
            }
            handle(.tickEnded)
            if failed { close(connection) } else { decoders[connection] = decoder }
            let problems = node.checkInvariants()
            precondition(problems.isEmpty, "broker invariants: \(problems)")
        }

        mutating func close(_ connection: UInt64) {
            decoders[connection] = nil
            handle(.connectionClosed(ConnectionID(connection)))
        }

        /// A graceful stop: every request finished, every put answered.
        mutating func stop() {
            handle(.stopRequested)
            precondition(node.isStopped, "the stop did not complete")
            precondition(node.machine.pendingCount == 0 && node.unansweredPuts == 0, "a request was left unfinished")
        }

        mutating func handle(_ event: BrokerNode.Event) {
            var actions: [BrokerNode.Action] = []
            node.handle(event, clock: clock, into: &actions)
            for action in actions { perform(action) }
        }
    }
}
