import Foundation
import ProtocolCore
import Runtime
import Testing
import ProcessHarness

/// A real broker with a server-side filter (reference §5.7), read by a raw-wire client that
/// follows the ORIGINAL client's offset rule — the case that livelocks the original (§11.1).
@Suite("metaq-server server-side filters (reference §5.7, §11.1)", .serialized)
struct FilteredGetTests {
    static let config = """
        [system]
        brokerId=0
        numPartitions=1
        unflushThreshold=0
        [zookeeper]
        zk.zkEnable=false
        [topic=test]
        group.g1=red
        """

    /// The original client's loop (§5.1): fetch at `offset`; on a value, keep the whole records and
    /// advance by their bytes (double `maxSize` when not even one fits); on 301 jump to the body;
    /// stop at 404. The data of the records received, and how many requests it took.
    func consumeLikeTheOriginal(_ client: inout WireConnection, group: String, maxRequests: Int) throws
        -> (data: [String], requests: Int, endOffset: Int64) {
        var offset: Int64 = 0
        var maxSize = 64
        var received: [String] = []
        for request in 1...maxRequests {
            try client.sendRaw(Array("get test \(group) 0 \(offset) \(maxSize) \(request)\r\n".utf8))
            switch try client.receive() {
            case .value(let value)?:
                var records = RecordIterator(value.body, baseOffset: offset)
                while case .message(let message)? = records.next() {
                    received.append(String(decoding: message.data, as: UTF8.self))
                }
                if records.consumedBytes == 0 { maxSize *= 2 }
                offset += Int64(records.consumedBytes)
            case .result(let result)? where result.code == StatusCode.moved:
                offset = try #require(Int64(result.text))
            case .result(let result)? where result.code == StatusCode.notFound:
                return (received, request, offset)
            case let other:
                throw HarnessError("unexpected answer \(String(describing: other))")
            }
        }
        throw HarnessError("no end after \(maxRequests) requests: livelock at offset \(offset) with \(received)")
    }

    func put(_ client: inout WireConnection, _ data: String, attribute: String, opaque: Int) throws -> Int64 {
        let (flag, payload) = MessagePayload.encode(attribute: attribute, data: Array(data.utf8))
        let line = "put test 0 \(payload.count) \(flag) \(CRC32.metaqChecksum(payload)) \(opaque)\r\n"
        try client.sendRaw(Array(line.utf8) + payload)
        guard case .result(let result)? = try client.receive(), result.code == StatusCode.success else {
            throw HarnessError("put \(data) failed")
        }
        let offset = result.text.split(separator: " ").last.flatMap { Int64($0) }
        return try #require(offset, "put answer \(result.text)")
    }

    @Test func originalClientRuleReachesTheEndWithOnlyAcceptedRecords() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("metaq-it-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try BrokerProcess(directory: directory, config: Self.config)
        defer { broker.stopHard() }
        try broker.start()
        var client = try WireConnection(host: "127.0.0.1", port: broker.port)
        // §11.1: `a`(red) at 0, `reject`(blue), `b`(red).
        #expect(try put(&client, "a", attribute: "red", opaque: 1) == 0)
        let rejectAt = try put(&client, "reject", attribute: "blue", opaque: 2)
        let bAt = try put(&client, "b", attribute: "red", opaque: 3)
        #expect(rejectAt == 28 && bAt == 62)
        let end: Int64 = 62 + 20 + 8

        let filtered = try consumeLikeTheOriginal(&client, group: "g1", maxRequests: 10)
        #expect(filtered.data == ["a", "b"])
        #expect(filtered.endOffset == end)
        // a; 301 past reject; b; 404 at the end.
        #expect(filtered.requests == 4)

        let unfiltered = try consumeLikeTheOriginal(&client, group: "g2", maxRequests: 10)
        #expect(unfiltered.data == ["a", "reject", "b"])
        #expect(unfiltered.endOffset == end && unfiltered.requests == 3)
        #expect(broker.stop() == 0, "clean exit; log:\n\(broker.log())")
    }

    /// The original's Java filter class cannot be loaded: start-up stops naming file, line and key.
    @Test func javaFilterClassStopsTheStart() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("metaq-it-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = Self.config.replacingOccurrences(of: "group.g1=red", with: "group.g1=com.example.RedFilter")
        let broker = try BrokerProcess(directory: directory, config: config)
        defer { broker.stopHard() }
        #expect(throws: (any Error).self) { try broker.start() }
        #expect(broker.log().contains("server.ini:8: [topic=test] group.g1: 'com.example.RedFilter' looks like a Java filter class"),
                "\(broker.log())")
    }
}
