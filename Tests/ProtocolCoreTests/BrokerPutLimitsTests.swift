import Testing
@testable import ProtocolCore

/// Issue 14: what a put may make the broker store or create — names that would become paths,
/// records no get could return, and how many partitions wildcard topics may create.
@Suite("Broker machine: put limits (issue 14)")
struct BrokerPutLimitsTests {
    let c1 = ConnectionID(1)
    let now: Int64 = 1_795_000_000_000
    static let uri = "meta://127.0.0.1:8123"

    func machine(maxTransferSize: Int32 = 1024, maxAutoCreated: Int = 1024,
                 withData: Set<TopicPartition> = []) -> BrokerMachine {
        let settings = BrokerMachine.Settings(
            brokerId: 3, brokerURI: Self.uri, port: 8123, version: "v", maxTransferSize: maxTransferSize,
            updateConsumerOffsets: false,
            topics: TopicRules([.init(pattern: "test", numPartitions: 2), .init(pattern: "w-*", numPartitions: 2),
                                .init(pattern: "*", numPartitions: 1)]),
            maxAutoCreatedPartitions: maxAutoCreated)
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
        #expect(broker.autoCreatedPartitions.isEmpty)
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

    /// `maxAutoCreatedPartitions` counts partitions of topics without an exact section: those on
    /// disk at start and those puts create. At the bound a put creating one more is refused with
    /// a text naming the key; puts to partitions that exist, or to exact topics, go on.
    @Test func autoCreatedPartitionsAreBounded() {
        let onDisk: Set<TopicPartition> = [TopicPartition("w-old", 0), TopicPartition("gone", 0), TopicPartition("test", 0)]
        var broker = machine(maxAutoCreated: 3, withData: onDisk)
        #expect(broker.autoCreatedPartitions == [TopicPartition("w-old", 0), TopicPartition("gone", 0)],
                "partitions on disk count, also of topics no longer configured; exact topics do not")
        #expect(appendTarget(broker.handle(.request(c1, put("w-new")), nowMs: now)) == TopicPartition("w-new", 0))
        let refused = reply(broker.handle(.request(c1, put("w-new", partition: 1)), nowMs: now))
        #expect(refused?.code == StatusCode.internalServerError)
        #expect(text(refused) == "Put message to [broker '\(Self.uri)'] [partition 'w-new-1'] failed.Detail:"
                + "too many auto-created partitions: 3 partitions of topics without their own [topic=...] section "
                + "exist, the limit is maxAutoCreatedPartitions=3; add a [topic=w-new] section or raise maxAutoCreatedPartitions")
        #expect(reply(broker.handle(.request(c1, put("other")), nowMs: now))?.code == StatusCode.internalServerError,
                "a topic of another pattern counts against the same bound")
        // Accepted once, a partition keeps its place: its further puts, and puts to exact topics, go on.
        #expect(appendTarget(broker.handle(.request(c1, put("w-new")), nowMs: now)) == TopicPartition("w-new", 0))
        #expect(appendTarget(broker.handle(.request(c1, put("w-old")), nowMs: now)) == TopicPartition("w-old", 0))
        #expect(appendTarget(broker.handle(.request(c1, put("test", partition: 1)), nowMs: now)) == TopicPartition("test", 1))
        #expect(broker.autoCreatedPartitions.count == 3)
    }

    /// Concurrent first puts to new partitions each take their place when accepted, before any
    /// append completed, so they cannot overshoot the bound together.
    @Test func concurrentFirstPutsCannotOvershootTheBound() {
        var broker = machine(maxAutoCreated: 2)
        var outcomes: [TopicPartition?] = []
        for topic in ["w-a", "w-b", "w-c"] {
            outcomes.append(appendTarget(broker.handle(.request(c1, put(topic)), nowMs: now)))
        }
        #expect(outcomes == [TopicPartition("w-a", 0), TopicPartition("w-b", 0), nil])
        #expect(broker.pendingCount == 2)
    }

    /// 0 lets no put create a partition through a pattern.
    @Test func zeroDisablesAutoCreation() {
        var broker = machine(maxAutoCreated: 0)
        #expect(reply(broker.handle(.request(c1, put("w-a")), nowMs: now))?.code == StatusCode.internalServerError)
        #expect(appendTarget(broker.handle(.request(c1, put("test")), nowMs: now)) == TopicPartition("test", 0))
    }
}
