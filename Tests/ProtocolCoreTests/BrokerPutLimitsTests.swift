import Testing
@testable import ProtocolCore

/// Issue 14: what a put may make the broker store or create — names that would become paths,
/// records no get could return, and how many partitions wildcard topics may create.
@Suite("Broker machine: put limits (issue 14)")
struct BrokerPutLimitsTests {
    let c1 = ConnectionID(1)
    let now: Int64 = 1_795_000_000_000
    static let uri = "meta://127.0.0.1:8123"

    func machine(maxTransferSize: Int32 = 1024, withData: Set<TopicPartition> = []) -> BrokerMachine {
        let settings = BrokerMachine.Settings(
            brokerId: 3, brokerURI: Self.uri, port: 8123, version: "v", maxTransferSize: maxTransferSize,
            updateConsumerOffsets: false,
            topics: TopicRules([.init(pattern: "test", numPartitions: 2), .init(pattern: "w-*", numPartitions: 2),
                                .init(pattern: "*", numPartitions: 1)]))
        return BrokerMachine(settings: settings, partitionsWithData: withData, idReservationMs: 0, seed: 7)
    }

    /// A put frame built directly, so a topic may hold bytes a wire line could not be typed with.
    func put(_ topic: String, partition: Int32 = 0, body: [UInt8] = Array("hello".utf8), opaque: Int32 = 5) -> Frame {
        .put(PutCommand(topic: topic, partition: partition, flag: 0, checksum: nil, body: body, opaque: opaque))
    }

    func reply(_ actions: [BrokerMachine.Action]) -> ResultResponse? {
        guard actions.count == 1, case .reply(_, let response) = actions[0] else { return nil }
        return response
    }

    func text(_ response: ResultResponse?) -> String? { response.map { String(decoding: $0.body, as: UTF8.self) } }

    func appendTarget(_ actions: [BrokerMachine.Action]) -> TopicPartition? {
        guard case .append(_, let target, _)? = actions.last else { return nil }
        return target
    }

    /// Reference §1.4.1: a topic the server does not accept gets 500 with this text. A topic that
    /// a `*` pattern matches but that is not one safe path component (`..`, `/`, NUL, …) is such
    /// a topic, and nothing is appended (no directory is ever created for it).
    @Test(arguments: ["w-/../../escaped", "w-a/b", "..", "w-\u{0}", "w-a@b", "w-é", String(repeating: "w", count: 121)])
    func namesThatWouldBecomeUnsafePathsAreNotAccepted(_ topic: String) {
        var broker = machine()
        let response = reply(broker.handle(.request(c1, put(topic)), nowMs: now))
        #expect(response?.code == StatusCode.internalServerError)
        #expect(text(response) == "Put message to [broker '\(Self.uri)'] [partition '\(topic)-0'] failed.Detail:"
                + "The server do not accept topic \(topic)")
        #expect(response?.opaque == 5)
        #expect(broker.statsCounters.putFailed == 1 && broker.pendingCount == 0)
    }

    @Test func validWildcardTopicsAreStillAccepted() {
        var broker = machine()
        #expect(appendTarget(broker.handle(.request(c1, put("w-ok", partition: 1)), nowMs: now)) == TopicPartition("w-ok", 1))
        #expect(appendTarget(broker.handle(.request(c1, put("test")), nowMs: now)) == TopicPartition("test", 0))
    }

    /// A record is 20 header bytes plus the body (§1.5); one larger than `maxTransferSize` could
    /// never be returned whole by a get (§1.4.2), so it is refused; one exactly at the cap is stored.
    @Test func aRecordLargerThanMaxTransferSizeIsRefused() {
        var broker = machine(maxTransferSize: 1024)
        let response = reply(broker.handle(.request(c1, put("test", partition: 1, body: [UInt8](repeating: 7, count: 1005))), nowMs: now))
        #expect(response?.code == StatusCode.internalServerError)
        #expect(text(response) == "Put message to [broker '\(Self.uri)'] [partition 'test-1'] failed.Detail:"
                + "message of 1025 bytes (with its 20-byte header) is larger than maxTransferSize 1024: "
                + "no get could ever return it")
        #expect(broker.statsCounters.putFailed == 1)
        let fits = broker.handle(.request(c1, put("test", partition: 1, body: [UInt8](repeating: 7, count: 1004))), nowMs: now)
        #expect(appendTarget(fits) == TopicPartition("test", 1))
    }
}
