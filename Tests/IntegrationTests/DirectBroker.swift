import Foundation
import Logging
import MetaQClient
import ProcessHarness
import ProtocolCore
import Runtime

/// For client tests: a local `metaq-server` (LocalBrokerTests' config) in its own temp directory
/// and a direct-mode `MetaQClient` to it. `stop()` kills the broker by PID and removes the directory.
final class DirectBroker {
    static let silent = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    let directory: String
    let broker: BrokerProcess
    let client: MetaQClient

    /// LocalBrokerTests' config with one partition, for tests that need one order of all messages.
    static let onePartition = LocalBrokerTests.config.replacingOccurrences(of: "numPartitions=2", with: "numPartitions=1")

    init(_ prefix: String, config: String = LocalBrokerTests.config) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        broker = try BrokerProcess(directory: directory, config: config)
        try broker.start()
        client = try MetaQClient(servers: ["meta://127.0.0.1:\(broker.port)"], logger: Self.silent)
    }

    /// Puts `text` into `partition` of `topic` over the raw wire (the client's direct mode lets the
    /// broker pick the partition). Tests use such a message as a marker: a partition is consumed
    /// in order, so once a consumer handled the marker it handled everything before it, and
    /// "nothing else came" can be checked without waiting for a while.
    @discardableResult
    func put(_ text: String, partition: Int32, topic: String = "test") throws -> Int64 {
        let connection = try WireConnection(host: "127.0.0.1", port: broker.port)
        let answer = try connection.request(.put(PutCommand(topic: topic, partition: partition, flag: 0, checksum: nil,
                                                            body: Array(text.utf8), opaque: 1)))
        guard case .result(let result) = answer, result.code == StatusCode.success,
              let offset = String(decoding: result.body, as: UTF8.self).split(separator: " ").last.flatMap({ Int64($0) })
        else { throw HarnessError("put \(text) to \(topic)-\(partition) failed: \(answer)") }
        return offset
    }

    /// One marker per partition (`<prefix>-<partition>`), in partition order.
    func putMarkers(_ prefix: String, partitions: Int32 = 2) throws -> [String] {
        try (0..<partitions).map { partition in
            let text = "\(prefix)-\(partition)"
            try put(text, partition: partition)
            return text
        }
    }

    /// The readable end of `partition` (the `offset` command past the end answers it, §1.4.3).
    func endOffset(partition: Int32, topic: String = "test") throws -> Int64 {
        let connection = try WireConnection(host: "127.0.0.1", port: broker.port)
        let answer = try connection.request(.offset(OffsetCommand(topic: topic, group: "probe", partition: partition,
                                                                  offset: Int64.max, opaque: 1)))
        guard case .result(let result) = answer, result.code == StatusCode.success,
              let offset = Int64(String(decoding: result.body, as: UTF8.self)) else {
            throw HarnessError("offset of \(topic)-\(partition) failed: \(answer)")
        }
        return offset
    }

    /// The offsets `group` committed to a local offset file (MetaQ's LocalOffsetStorage JSON),
    /// by partition; empty while the file does not exist.
    static func committedOffsets(_ path: String, group: String) -> [Int: Int64] {
        guard let data = FileManager.default.contents(atPath: path),
              let document = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let entries = document[group] as? [[String: Any]] else { return [:] }
        var offsets: [Int: Int64] = [:]
        for entry in entries {
            guard let partition = (entry["partition"] as? [String: Any])?["partition"] as? NSNumber,
                  let offset = entry["offset"] as? NSNumber else { continue }
            offsets[partition.intValue] = offset.int64Value
        }
        return offsets
    }

    /// Whether `group` committed the end of both partitions of `test` to `path`: a consumer
    /// commits only what it handled (or skipped), so it has seen everything there is.
    func committedToTheEnd(_ path: String, group: String = "g") throws -> Bool {
        let committed = Self.committedOffsets(path, group: group)
        return try (0..<2).allSatisfy { committed[$0] == (try endOffset(partition: Int32($0))) }
    }

    func stop() {
        broker.stopHard()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
