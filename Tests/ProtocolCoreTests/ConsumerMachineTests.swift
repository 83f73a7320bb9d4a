import Testing
@testable import ProtocolCore

/// The consumer fetch loop fed by hand: `get` (§1.4.2), the slice walk and adaptive size of the Java
/// pull loop (§5.1), the 301/403/404 answers, damage, timeouts and reconnects.
@Suite("Consumer machine (reference §1.4.2, §5.1)")
struct ConsumerMachineTests {
    static let firstOpaque = Int32.min

    func at(_ ms: Int64) -> Instant { .milliseconds(ms) }

    func settings(maxSize: Int32 = 1024, maxMaxSize: Int32 = 4096, timeoutMs: Int64 = 10_000,
                  maxConsecutiveTimeouts: Int = 3) -> ConsumerMachine.Settings {
        .init(topic: "test", group: "group1", partition: 0, startOffset: 0, maxSizeBytes: maxSize,
              maxMaxSizeBytes: maxMaxSize, requestTimeoutMs: timeoutMs,
              fetchBackoff: Backoff(stepMs: 500, maxMs: 5_000), reconnectBackoff: Backoff(stepMs: 200, maxMs: 1_000),
              maxConsecutiveTimeouts: maxConsecutiveTimeouts)
    }

    /// A started, connected machine with its first `get` (offset 0, opaque Int32.min) in flight.
    func fetching(_ s: ConsumerMachine.Settings) -> ConsumerMachine {
        var consumer = ConsumerMachine(settings: s)
        _ = consumer.handle(.start, now: at(0))
        _ = consumer.handle(.connected, now: at(0))
        return consumer
    }

    func record(_ payload: String, id: Int64 = 7, flag: Int32 = 0) -> [UInt8] {
        Record.encode(msgId: id, flag: flag, payload: bytes(payload))
    }

    func value(_ body: [UInt8], _ opaque: Int32) -> ConsumerMachine.Event { .frame(.value(ValueResponse(body: body, opaque: opaque))) }

    func result(_ code: Int32, _ text: String, _ opaque: Int32) -> ConsumerMachine.Event {
        .frame(.result(ResultResponse(code: code, text: text, opaque: opaque)))
    }

    func gets(_ actions: [ConsumerMachine.Action]) -> [GetCommand] {
        actions.compactMap { if case .sendFrame(.get(let get)) = $0 { return get } else { return nil } }
    }

    func delivered(_ actions: [ConsumerMachine.Action]) -> [Message] {
        actions.flatMap { action -> [Message] in if case .deliver(let m, _) = action { return m } else { return [] } }
    }

    /// §1.4.2/§1.6: `get test group1 0 0 1024 <opaque>`; the 50-byte slice of two records is
    /// delivered whole with offsets 0 and 25, and the next get starts at 50 on a new opaque.
    @Test func fetchDeliversWholeRecordsAndMovesOn() {
        var consumer = ConsumerMachine(settings: settings())
        #expect(consumer.handle(.connected, now: at(0)).isEmpty, "nothing happens before .start")
        #expect(consumer.handle(.start, now: at(0)) == [.connect, .scheduleTick(at: at(10_000))])
        let first = gets(consumer.handle(.connected, now: at(1)))
        #expect(first.map { Frame.get($0).encoded() } == [bytes("get test group1 0 0 1024 -2147483648\r\n")])
        let actions = consumer.handle(value(record("hello", id: 1) + record("hello", id: 2), Self.firstOpaque), now: at(2))
        #expect(delivered(actions).map(\.offset) == [0, 25])
        #expect(delivered(actions).map(\.id) == [1, 2] && delivered(actions).allSatisfy { $0.data == bytes("hello") })
        #expect(actions.contains { if case .deliver(_, 50) = $0 { true } else { false } })
        #expect(gets(actions).map(\.offset) == [50] && gets(actions).map(\.opaque) == [Self.firstOpaque + 1])
        #expect(consumer.offset == 50 && consumer.inFlightOpaque == Self.firstOpaque + 1)
    }

    /// §1.4.2: slices are not aligned to records; the cut trailing record is fetched again from
    /// its start (§5.1: a partial trailing record is ignored).
    @Test func cutTrailingRecordIsRefetchedFromTheCut() {
        var consumer = fetching(settings())
        let slice = record("hello") + record("world").prefix(10)
        let actions = consumer.handle(value(Array(slice), Self.firstOpaque), now: at(1))
        #expect(delivered(actions).map(\.offset) == [0])
        #expect(gets(actions).map(\.offset) == [25] && consumer.offset == 25)
    }

    /// §5.1 adaptive size: an answer holding only the start of a record doubles `maxSize`;
    /// a later answer under half the size halves it back towards the setting.
    @Test func fetchSizeDoublesForALargeRecordAndShrinksBack() {
        var consumer = fetching(settings(maxSize: 32, maxMaxSize: 256))
        let big = record(String(repeating: "x", count: 80))  // 100 bytes
        let a = gets(consumer.handle(value(Array(big.prefix(32)), Self.firstOpaque), now: at(1)))
        #expect(a.map(\.maxSize) == [64] && a.map(\.offset) == [0])
        let b = gets(consumer.handle(value(Array(big.prefix(64)), Self.firstOpaque + 1), now: at(2)))
        #expect(b.map(\.maxSize) == [128] && consumer.counters.sizeIncreases == 2)
        let c = consumer.handle(value(big, Self.firstOpaque + 2), now: at(3))
        #expect(delivered(c).count == 1 && gets(c).map(\.offset) == [100])
        #expect(gets(c).map(\.maxSize) == [128], "100 bytes is not under half of 128")
        let d = consumer.handle(value(record("small"), Self.firstOpaque + 3), now: at(4))
        #expect(gets(d).map(\.maxSize) == [64] && consumer.maxSizeBytes == 64)
    }

    /// At `maxMaxSize` the record cannot be fetched: reported with its announced size, never
    /// skipped; the same offset is fetched again after the back-off.
    @Test func recordLargerThanTheBoundIsReportedNotSkipped() {
        var consumer = fetching(settings(maxSize: 32, maxMaxSize: 128))
        let huge = record(String(repeating: "y", count: 180))  // 200 bytes
        _ = consumer.handle(value(Array(huge.prefix(32)), Self.firstOpaque), now: at(1))
        _ = consumer.handle(value(Array(huge.prefix(64)), Self.firstOpaque + 1), now: at(2))
        let actions = consumer.handle(value(Array(huge.prefix(128)), Self.firstOpaque + 2), now: at(3))
        #expect(actions.contains(.reportRecordTooLarge(offset: 0, recordBytes: 200, fetchedBytes: 128)))
        #expect(gets(actions).isEmpty && delivered(actions).isEmpty)
        #expect(actions.contains(.scheduleTick(at: at(503))))
        let retry = gets(consumer.handle(.tick, now: at(503)))
        #expect(retry.map(\.offset) == [0] && retry.map(\.maxSize) == [128] && consumer.counters.tooLarge == 1)
    }

    /// §1.4.2: the broker sends at most `maxTransferSize`; a short answer holding only the start
    /// of a record will not grow by asking for more, so it is reported at once.
    @Test func shortAnswerWithOnlyACutRecordIsReported() {
        var consumer = fetching(settings(maxSize: 1024, maxMaxSize: 4096))
        let big = record(String(repeating: "z", count: 80))
        let actions = consumer.handle(value(Array(big.prefix(40)), Self.firstOpaque), now: at(1))
        #expect(actions.contains(.reportRecordTooLarge(offset: 0, recordBytes: 100, fetchedBytes: 40)))
        #expect(consumer.maxSizeBytes == 1024 && gets(actions).isEmpty)
    }

    /// §1.4.2: 301's body is the offset to use — forward past deleted data or back to the max
    /// offset; both are announced. A 301 to the current offset would loop (§11 #1): an error.
    @Test func movedAnswerSetsTheOffset() {
        var consumer = fetching(settings())
        let forward = consumer.handle(result(301, "500", Self.firstOpaque), now: at(1))
        #expect(forward.first == .offsetChanged(500) && gets(forward).map(\.offset) == [500])
        let back = consumer.handle(result(301, "100", Self.firstOpaque + 1), now: at(2))
        #expect(back.first == .offsetChanged(100) && consumer.offset == 100)
        let loop = consumer.handle(result(301, "100", Self.firstOpaque + 2), now: at(3))
        #expect(loop.first == .reportBrokerError(code: 301, text: "100") && gets(loop).isEmpty)
        #expect(consumer.counters.moves == 2 && consumer.counters.brokerErrors == 1)
    }

    /// §1.4.2/§5.1: 404 means nothing new — back off (growing by a step per miss) and fetch the
    /// same offset again; 403 (partition closed) backs off the same way.
    @Test func notFoundBacksOffAndRetriesTheSameOffset() {
        var consumer = fetching(settings())
        let empty = consumer.handle(result(404, "Could not find message at position 0", Self.firstOpaque), now: at(10))
        #expect(empty == [.scheduleTick(at: at(510))])
        #expect(consumer.handle(.tick, now: at(509)).isEmpty)
        let retry = consumer.handle(.tick, now: at(510))
        #expect(gets(retry).map(\.offset) == [0] && gets(retry).map(\.opaque) == [Self.firstOpaque + 1])
        let closed = consumer.handle(result(403, "Partition[0-0] has been closed", Self.firstOpaque + 1), now: at(600))
        #expect(closed.contains(.scheduleTick(at: at(1600))), "second miss in a row waits two steps")
        #expect(consumer.counters.emptyFetches == 1 && consumer.counters.partitionClosed == 1 && consumer.offset == 0)
    }

    /// §5.1 verifies every record's CRC; damage is reported with its offset, the records before it
    /// are delivered, nothing after it is, and the damaged offset is fetched again after a back-off.
    @Test func damagedRecordIsReportedAndNotDelivered() {
        var consumer = fetching(settings())
        var middle = record("world")
        middle[22] ^= 0xFF
        let actions = consumer.handle(value(record("hello") + middle + record("after"), Self.firstOpaque), now: at(1))
        #expect(delivered(actions).map(\.offset) == [0])
        guard case .reportDamage(25, .checksumMismatch)? = actions.first(where: { if case .reportDamage = $0 { true } else { false } }) else {
            Issue.record("expected damage at 25, got \(actions)")
            return
        }
        #expect(gets(actions).isEmpty && consumer.offset == 25 && consumer.counters.damaged == 1)
        #expect(gets(consumer.handle(.tick, now: at(501))).map(\.offset) == [25])
    }

    /// A whole record whose attribute header does not fit (§1.4.1 payload form) is also damage:
    /// the walk could go on past it, but the machine stops there rather than skip silently.
    @Test func badAttributeHeaderStopsDelivery() {
        var consumer = fetching(settings())
        let slice = record("hello") + record("ab", flag: 1) + record("after")
        let actions = consumer.handle(value(slice, Self.firstOpaque), now: at(1))
        #expect(delivered(actions).map(\.offset) == [0])
        #expect(actions.contains(.reportDamage(offset: 25, .badAttributeHeader)) && consumer.offset == 25)
    }

    /// A fetch in flight when the connection drops is fetched again, from the same offset, after
    /// the reconnect; its late answer (old opaque) is ignored.
    @Test func connectionLossRefetchesTheSameOffsetAndIgnoresStaleAnswers() {
        var consumer = fetching(settings())
        let lost = consumer.handle(.connectionLost, now: at(5))
        #expect(lost == [.scheduleTick(at: at(205))] && !consumer.isConnected)
        #expect(consumer.handle(.tick, now: at(205)).first == .connect)
        let again = gets(consumer.handle(.connected, now: at(206)))
        #expect(again.map(\.offset) == [0] && again.map(\.opaque) == [Self.firstOpaque + 1])
        let stale = consumer.handle(value(record("old"), Self.firstOpaque), now: at(207))
        #expect(delivered(stale).isEmpty && consumer.counters.staleAnswers == 1)
        #expect(consumer.inFlightOpaque == Self.firstOpaque + 1 && consumer.offset == 0)
        #expect(delivered(consumer.handle(value(record("new"), Self.firstOpaque + 1), now: at(208))).count == 1)
    }

    /// `fetchTimeoutInMills` (§5.1): a timed-out fetch is retried after a back-off; timeouts in a
    /// row close the connection so it can recover (§11 issue #108).
    @Test func timeoutsRetryThenReconnect() {
        var consumer = fetching(settings(timeoutMs: 1000, maxConsecutiveTimeouts: 2))
        let first = consumer.handle(.tick, now: at(1000))
        #expect(gets(first).isEmpty && first == [.scheduleTick(at: at(1500))])
        let retry = gets(consumer.handle(.tick, now: at(1500)))
        #expect(retry.map(\.offset) == [0])
        let second = consumer.handle(.tick, now: at(2500))
        #expect(second.first == .disconnect && consumer.counters.timeouts == 2)
        #expect(consumer.handle(value(record("late"), Self.firstOpaque), now: at(2501)).isEmpty)
        #expect(consumer.handle(.tick, now: at(2700)).first == .connect)
    }

    /// A request frame from the broker breaks the protocol: the connection is closed.
    @Test func requestFromTheBrokerDisconnects() {
        var consumer = fetching(settings())
        let get = GetCommand(topic: "test", group: "g", partition: 0, offset: 0, maxSize: 1, opaque: Self.firstOpaque)
        let actions = consumer.handle(.frame(.get(get)), now: at(1))
        #expect(actions.first == .disconnect && consumer.counters.protocolViolations == 1 && !consumer.isConnected)
    }
}
