import Foundation
import ProtocolCore
import Runtime
import StoreCore
import Testing

/// A seeded, bounded fuzzer at the socket: a real broker with a wildcard topic section gets
/// well-formed requests with hostile values (path-like topic and group names, partitions and
/// offsets at their limits, bodies around `maxTransferSize`, bad checksums), frames it must close
/// the connection on, frames it must ignore, and frames cut off by the client. Then:
/// - every well-formed request was answered (none left hanging, no connection closed for it);
/// - nothing exists outside the data directory, and in it only partitions of sane names;
/// - the broker's memory stayed bounded;
/// - after a graceful restart every acknowledged put is read back unchanged.
///
/// A failure prints its seed; `METAQ_WIRE_FUZZ_SEED=<seed> swift test --filter WireFuzzTests`
/// replays it, `METAQ_WIRE_FUZZ_REQUESTS` sets the length of a run.
@Suite("Wire fuzzing a real broker", .serialized)
struct WireFuzzTests {
    static let config = """
        [system]
        brokerId=0
        numPartitions=2
        ; Puts answered after their write, not after a sync: the run checks what the broker does
        ; with hostile input, and a graceful restart syncs everything before the read-back.
        unflushThreshold=100
        maxSegmentSize=4096
        maxTransferSize=2048
        [zookeeper]
        zk.zkEnable=false
        [topic=test]
        [topic=w-*]
        numPartitions=3
        """

    static var seeds: [UInt64] {
        if let seed = ProcessInfo.processInfo.environment["METAQ_WIRE_FUZZ_SEED"].flatMap(UInt64.init) { return [seed] }
        return [1, 20_261_205]
    }

    @Test(arguments: seeds)
    func hostileTrafficLeavesTheBrokerServingAndTheDataIntact(seed: UInt64) throws {
        let requests = ProcessInfo.processInfo.environment["METAQ_WIRE_FUZZ_REQUESTS"].flatMap(Int.init) ?? 600
        let replay = "METAQ_WIRE_FUZZ_SEED=\(seed) swift test --filter WireFuzzTests"
        let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-wirefuzz")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let escape = FileManager.default.temporaryDirectory.appendingPathComponent("metaq-wirefuzz-escaped-\(seed)-0").path
        try? FileManager.default.removeItem(atPath: escape)
        let broker = try BrokerProcess(directory: directory, config: Self.config)
        defer { broker.stopHard() }
        try broker.start()

        var session = WireFuzzSession(port: broker.port, seed: seed, escapeName: "metaq-wirefuzz-escaped-\(seed)")
        try session.run(requests: requests)
        #expect(session.unanswered.isEmpty, "well-formed requests not answered (replay: \(replay)): \(session.unanswered.prefix(5))")
        #expect(session.acknowledged.count > 20, "the run stored messages: \(session.acknowledged.count) (replay: \(replay))")
        #expect(session.closedAsExpected > 0 && session.answered > requests / 3, "the run reached every kind of frame")

        let resident = try #require(broker.residentBytes())
        #expect(resident < 256 << 20, "broker memory \(resident >> 20) MiB after the run (replay: \(replay))")
        let strays = try Self.filesOutsideTheData(directory)
        #expect(strays.isEmpty, "created outside the data directory (replay: \(replay)): \(strays)")
        #expect(!FileManager.default.fileExists(atPath: escape), "\(escape) created (replay: \(replay))")

        #expect(broker.stop() == 0, "a graceful stop after the run")
        let restarted = try BrokerProcess(directory: directory, config: Self.config, port: broker.port)
        defer { restarted.stopHard() }
        try restarted.start()
        let lost = try session.acknowledged.filter { try !Self.readBack($0, port: restarted.port) }
        #expect(lost.isEmpty, "acknowledged puts not read back after a restart (replay: \(replay)): \(lost.prefix(5))")
    }

    /// Paths under `directory` that are not the config, the log or a partition's files in `data`.
    static func filesOutsideTheData(_ directory: String) throws -> [String] {
        var strays: [String] = []
        let top = try FileManager.default.contentsOfDirectory(atPath: directory)
        strays += top.filter { !["server.ini", "broker.log", "data"].contains($0) }
        for name in try FileManager.default.contentsOfDirectory(atPath: directory + "/data") {
            let path = directory + "/data/" + name
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            guard isDirectory.boolValue else {
                if !name.hasPrefix("msgid-reservation") && !name.hasPrefix("metaq-server") { strays.append(path) }
                continue
            }
            if name == "transactions" {
                // The redo log (§4.3): only its own files.
                for inner in try FileManager.default.contentsOfDirectory(atPath: path)
                where !(inner.hasPrefix("redo.") || inner.hasPrefix("checkpoint.") || inner == "heuristic.log") {
                    strays.append(path + "/" + inner)
                }
                continue
            }
            let partition = PartitionStores.partition(fromDirectoryName: name)
            if partition == nil || !(name.hasPrefix("test-") || name.hasPrefix("w-")) || !MetaName.isValid(partition!.topic) {
                strays.append(path)
            }
            for inner in try FileManager.default.contentsOfDirectory(atPath: path) {
                var innerIsDirectory: ObjCBool = false
                FileManager.default.fileExists(atPath: path + "/" + inner, isDirectory: &innerIsDirectory)
                if innerIsDirectory.boolValue { strays.append(path + "/" + inner) }
            }
        }
        return strays
    }

    static func readBack(_ put: WireFuzzSession.Stored, port: Int) throws -> Bool {
        let connection = try WireConnection(host: "127.0.0.1", port: port)
        let answer = try connection.request(.get(GetCommand(topic: put.topic, group: "check", partition: put.partition,
                                                           offset: put.offset, maxSize: 4096, opaque: 1)))
        guard case .value(let value) = answer, value.body.count >= Record.headerSize + put.body.count else { return false }
        let length = Int(value.body[0]) << 24 | Int(value.body[1]) << 16 | Int(value.body[2]) << 8 | Int(value.body[3])
        return length == put.body.count
            && Array(value.body[Record.headerSize..<(Record.headerSize + length)]) == put.body
    }
}
