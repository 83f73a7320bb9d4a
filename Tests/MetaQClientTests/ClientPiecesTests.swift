import Foundation
import ProtocolCore
import Testing
@testable import MetaQClient

@Suite("MetaQClient pieces")
struct ClientPiecesTests {
    /// §1.7: `meta://host:port`, IPv6 hosts in brackets.
    @Test func brokerAddresses() {
        #expect(BrokerAddress(uri: "meta://127.0.0.1:8123") == BrokerAddress(host: "127.0.0.1", port: 8123))
        #expect(BrokerAddress(uri: "meta://[::1]:8124") == BrokerAddress(host: "::1", port: 8124))
        #expect(BrokerAddress(uri: "meta://[::1]:8124")?.uri == "meta://[::1]:8124")
        #expect(BrokerAddress(uri: "meta://host:8123?slaveId=1")?.host == "host", "readers append ?slaveId (§3.1)")
        #expect(BrokerAddress(uri: "meta://host") == nil && BrokerAddress(uri: "meta://host:0") == nil)
        #expect(BrokerAddress(uri: "meta://:8123") == nil && BrokerAddress(uri: "meta://host:99999") == nil)
    }

    /// §5.6: the default ordered selector maps a key to a configured partition by the CRC32 of its
    /// UTF-8 (zlib's: CRC32("alpha") = 3504355690), the same in every process, whatever is available.
    @Test func keyHashSelectorIsStable() {
        let selector = KeyHashSelector()
        let partitions = (0..<3).map { BrokerPartition(brokerId: 0, partition: $0) }
        let picks = ["alpha", "beta", "gamma", "order-42"].map { selector.select(topic: "t", key: $0, partitions: partitions) }
        #expect(picks == [partitions[1], partitions[1], partitions[2], partitions[1]])
        #expect(selector.select(topic: "other", key: "alpha", partitions: partitions) == partitions[1], "the topic does not matter")
    }

    /// The first message goes to the first partition, then on in order, wrapping.
    @Test func roundRobinVisitsEveryPartitionInOrder() {
        let selector = RoundRobinSelector()
        let partitions = (0..<3).map { BrokerPartition(brokerId: $0 / 2, partition: $0 % 2) }
        let picks = (0..<7).compactMap { _ in selector.select(topic: "t", partitions: partitions, data: [], attribute: nil) }
        #expect(picks == [partitions[0], partitions[1], partitions[2], partitions[0], partitions[1], partitions[2], partitions[0]])
    }

    /// §5.4: LocalOffsetStorage's document, as the original writes it, is read; what we write reads back.
    @Test func localOffsetFileReadsTheOriginalsFormatAndRoundTrips() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("offsets-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let original = #"{"g1":[{"topic":"test","partition":{"brokerId":0,"partition":1},"offset":126,"messageId":-5468932283484340224,"modified":false}]}"#
        try original.write(toFile: path, atomically: true, encoding: .utf8)
        let file = try LocalOffsetFile(path: path)
        let p01 = BrokerPartition(brokerId: 0, partition: 1)
        #expect(file.offset(group: "g1", topic: "test", partition: p01) == StoredOffset(msgId: -5468932283484340224, offset: 126))
        #expect(file.offset(group: "g2", topic: "test", partition: p01) == nil)
        try file.store(group: "g2", [("test", BrokerPartition(brokerId: 3, partition: 0), StoredOffset(msgId: 7, offset: 50))])
        let reread = try LocalOffsetFile(path: path)
        #expect(reread.offset(group: "g2", topic: "test", partition: BrokerPartition(brokerId: 3, partition: 0))?.offset == 50)
        #expect(reread.offset(group: "g1", topic: "test", partition: p01)?.offset == 126, "other groups are kept")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains(#""partition":{"brokerId":3,"partition":0}"#) && text.contains(#""messageId":7"#))
    }

    @Test func aDamagedOffsetFileIsAnErrorNotAStartFromZero() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("offsets-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try #"{"g1":[{"topic":"test"}]}"#.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: MetaQClientError.self) { try LocalOffsetFile(path: path) }
    }

    /// Names that become znode names (§3.1) are checked before they can reach a machine.
    @Test func badNamesAreErrorsNotCrashes() async throws {
        let client = try MetaQClient(servers: ["meta://127.0.0.1:1"])
        #expect(throws: MetaQClientError.self) { try client.consumer(group: "a/b") }
        #expect(throws: MetaQClientError.self) { try client.consumer(group: "g", ConsumerSettings(consumerId: "x,y")) }
        let consumer = try client.consumer(group: "g", ConsumerSettings(consumerId: "c1"))
        #expect(consumer.consumerIdString == "g_c1")
        #expect(throws: MetaQClientError.self) { try consumer.subscribe("bad topic") }
        await #expect(throws: MetaQClientError.self) { try await consumer.run { _ in } }
        #expect(throws: MetaQClientError.self) { try MetaQClient(servers: ["http://x"]) }
        await client.shutdown()
    }

    /// Issue 14: a group or topic becomes a local directory (`<root>/<topic>@<group>`, the ordered
    /// spool's `<topic>@<broker>-<partition>`), so every API that takes one refuses a name outside
    /// `MetaName` at once, with the rule in the error (DESIGN.md §8).
    @Test func namesThatWouldBecomePathsAreRefusedAtTheAPI() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("names-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let client = try MetaQClient(servers: ["meta://127.0.0.1:1"])
        for group in ["..", "a@b", "w-/../../x", "grüppe", String(repeating: "g", count: 121)] {
            #expect { try client.consumer(group: group) } throws: { error in
                "\(error)".contains("group name") && "\(error)".contains("expected 1 to 120 ASCII letters")
            }
        }
        #expect(try client.consumer(group: String(repeating: "g", count: 120)).group.utf8.count == 120)
        let consumer = try client.consumer(group: "g", ConsumerSettings(consumerId: "c1", rejection: .recoverLocally(path: root)))
        for topic in ["..", "a/b", "t@g", "a\u{0}b"] {
            #expect(throws: MetaQClientError.self, "\(topic.debugDescription)") { try consumer.subscribe(topic) }
        }
        try consumer.subscribe("w-ok")
        let producer = client.producer()
        await #expect(throws: MetaQClientError.self) { try await producer.publish("w-/../../escaped") }
        await #expect { try await producer.send(topic: "w-/../../escaped", data: [1]) } throws: { error in
            guard let error = error as? SendError, case .notSent(let why) = error.kind else { return false }
            return why.contains("'/' at byte 2")
        }
        let ordered = try client.orderedProducer(OrderedProducerSettings(
            partitions: [BrokerPartition(brokerId: 0, partition: 0)], spoolPath: root + "/spool"))
        await #expect { try await ordered.send(topic: "../x", key: "k", data: [1]) } throws: { error in
            guard let error = error as? SendError, case .notSent = error.kind else { return false }
            return true
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/spool") == ["spool.lock"],
                "no lane directory was created")
        await ordered.close()
        await client.shutdown()
    }

    /// DESIGN.md §8: a client-side error says which broker, topic and partition.
    @Test func sendErrorsSayWhere() {
        let error = SendError(kind: .refused(code: 403, text: "closed"), topic: "test",
                              partition: BrokerPartition(brokerId: 1, partition: 2), broker: "meta://h:8124")
        #expect(error.description == "the broker refused the message (broker meta://h:8124, topic test, partition 1-2): 403 closed")
        #expect(SendError(kind: .noPartition, topic: "t").description.contains("no partition available for topic t"))
    }

    /// Two ordered producers on one spool directory would overwrite each other's spooled messages
    /// (§5.6): the second is refused while the first is open, and accepted once it closed.
    @Test func aSpoolDirectoryHasOneOrderedProducer() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("spool-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let settings = OrderedProducerSettings(partitions: [BrokerPartition(brokerId: 0, partition: 0)], spoolPath: root)
        let first = try MetaQClient(servers: ["meta://127.0.0.1:1"])
        let second = try MetaQClient(servers: ["meta://127.0.0.1:1"])
        let producer = try first.orderedProducer(settings)
        #expect { try second.orderedProducer(settings) } throws: { error in
            "\(error)".contains("another ordered producer") && "\(error)".contains(root)
        }
        await producer.close()
        let again = try second.orderedProducer(settings)
        await again.close()
        await first.shutdown()
        await second.shutdown()
    }
}
