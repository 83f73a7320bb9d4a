import Testing
@testable import ProtocolCore

/// The producer machine fed by hand: put frames (§1.4.1, §1.6), answers matched by opaque (§1.1),
/// and the honest outcome of every send.
@Suite("Producer machine (reference §1.4.1)")
struct ProducerMachineTests {
    static let firstOpaque = Int32.min

    func at(_ ms: Int64) -> Instant { .milliseconds(ms) }

    /// A machine that is connected with nothing in flight.
    func connected(_ settings: ProducerMachine.Settings = .init()) -> ProducerMachine {
        var producer = ProducerMachine(settings: settings)
        _ = producer.handle(.connected, now: at(0))
        return producer
    }

    func send(_ id: UInt64, _ data: String = "hello", partition: Int32 = 0) -> ProducerMachine.Event {
        .send(id: id, topic: "test", partition: partition, flag: 0, payload: bytes(data))
    }

    func puts(_ actions: [ProducerMachine.Action]) -> [PutCommand] {
        actions.compactMap { if case .sendFrame(.put(let put)) = $0 { return put } else { return nil } }
    }

    func completions(_ actions: [ProducerMachine.Action]) -> [UInt64: SendOutcome] {
        var out: [UInt64: SendOutcome] = [:]
        for case .completed(let id, let outcome) in actions { out[id] = outcome }
        return out
    }

    func answer(_ code: Int32, _ text: String, _ opaque: Int32) -> ProducerMachine.Event {
        .frame(reply(text, opaque, code: code))
    }

    func reply(_ text: String, _ opaque: Int32, code: Int32 = 200) -> Frame {
        .result(ResultResponse(code: code, text: text, opaque: opaque))
    }

    /// §1.6: the 7-token put with `CRC32("hello") & 0x7FFFFFFF = 907060870`; opaques start at
    /// Int32.min like the Java client's (§1.1) and increase.
    @Test func putFrameHasChecksumAndIncreasingOpaques() {
        var producer = connected()
        let first = puts(producer.handle(send(1), now: at(1)))
        let second = puts(producer.handle(send(2, "hi", partition: -1), now: at(2)))
        #expect(first.count == 1 && second.count == 1)
        #expect(Frame.put(first[0]).encoded() == bytes("put test 0 5 0 907060870 -2147483648\r\nhello"))
        #expect(second.first?.opaque == Self.firstOpaque + 1)
        #expect(second.first?.checksum == CRC32.metaqChecksum(bytes("hi")))
        #expect(second.first?.partition == -1, "partition -1 asks the broker to choose (§1.4.1)")
    }

    /// §1.4.1/§1.6: `result 200` body `"<msgId> <partition> <offset>"`; answers may come out of
    /// order (§1.1), so they are matched by opaque, not position.
    @Test func acknowledgementsAreParsedAndMatchedByOpaque() {
        var producer = connected()
        _ = producer.handle(send(10), now: at(1))
        _ = producer.handle(send(11), now: at(1))
        let second = producer.handle(answer(200, "-5468932506403209216 1 25", Self.firstOpaque + 1), now: at(2))
        #expect(second == [.completed(id: 11, .acknowledged(msgId: -5468932506403209216, partition: 1, offset: 25))])
        let first = producer.handle(answer(200, "-5468932506461929472 0 0", Self.firstOpaque), now: at(3))
        #expect(first == [.completed(id: 10, .acknowledged(msgId: -5468932506461929472, partition: 0, offset: 0))])
        #expect(producer.counters.acknowledged == 2 && producer.inFlightOpaques.isEmpty)
    }

    /// §1.2: only 200 is success; a refusal carries the broker's code and text (§1.4.1 texts).
    @Test func nonSuccessAnswersFailWithCodeAndText() {
        var producer = connected()
        _ = producer.handle(send(1), now: at(1))
        let text = "Put message to [broker 'meta://h:8123'] [partition 'test-0'] failed.Detail:wrong partition 9"
        #expect(completions(producer.handle(answer(500, text, Self.firstOpaque), now: at(2)))[1] == .failed(code: 500, text: text))
        #expect(producer.counters.failed == 1 && producer.counters.unknown == 0)
    }

    /// A 200 whose body is not three numbers does not prove storage at a known place: unknown.
    @Test func malformedAcknowledgementIsUnknownAndCounted() {
        var producer = connected()
        _ = producer.handle(send(1), now: at(1))
        _ = producer.handle(send(2), now: at(1))
        let a = producer.handle(answer(200, "12 0", Self.firstOpaque), now: at(2))
        let b = producer.handle(answer(200, "12 0 -1", Self.firstOpaque + 1), now: at(2))
        #expect(completions(a)[1] == .unknown(.malformedAnswer("12 0")))
        #expect(completions(b)[2] == .unknown(.malformedAnswer("12 0 -1")), "offset -1 is a transactional answer")
        #expect(producer.counters.malformedAnswers == 2)
    }

    /// §1.4.1's answer body, read without splitting: exactly three decimals, single spaces.
    @Test(arguments: [
        ("-5468932506461929472 0 25", SendOutcome.acknowledged(msgId: -5468932506461929472, partition: 0, offset: 25)),
        ("9223372036854775807 2147483647 0", .acknowledged(msgId: .max, partition: .max, offset: 0)),
        ("-9223372036854775808 1 7", .acknowledged(msgId: .min, partition: 1, offset: 7)),
        ("1 2147483648 0", .unknown(.malformedAnswer("1 2147483648 0"))),
        ("9223372036854775808 0 0", .unknown(.malformedAnswer("9223372036854775808 0 0"))),
        ("1 2 3 ", .unknown(.malformedAnswer("1 2 3 "))),
        ("1  2 3", .unknown(.malformedAnswer("1  2 3"))),
        ("1 2 3 4", .unknown(.malformedAnswer("1 2 3 4"))),
        ("1 -2 3", .unknown(.malformedAnswer("1 -2 3"))),
        ("1 2 x", .unknown(.malformedAnswer("1 2 x"))),
        ("", .unknown(.malformedAnswer(""))),
        ("- 0 0", .unknown(.malformedAnswer("- 0 0"))),
    ])
    func answerBodies(_ body: String, _ expected: SendOutcome) {
        #expect(ProducerMachine.outcome(of: ResultResponse(code: 200, text: body, opaque: 1)) == expected)
    }

    /// An answer for an opaque not in flight (stray, or the second copy of one) is ignored.
    @Test func unknownAndDuplicateOpaquesAreIgnored() {
        var producer = connected()
        _ = producer.handle(send(1), now: at(1))
        #expect(producer.handle(answer(200, "1 0 0", 12345), now: at(2)).isEmpty)
        #expect(completions(producer.handle(answer(200, "1 0 0", Self.firstOpaque), now: at(3))).count == 1)
        #expect(producer.handle(answer(500, "late copy", Self.firstOpaque), now: at(4)).isEmpty)
        #expect(producer.counters.unmatchedAnswers == 2 && producer.counters.acknowledged == 1)
    }

    /// A put in flight when the connection drops is UNKNOWN (the broker may have stored it);
    /// a send still queued never left and goes out after the reconnect.
    @Test func connectionLossMakesInFlightUnknownAndKeepsQueued() {
        var producer = connected(.init(maxInFlight: 1, reconnectBackoff: Backoff(stepMs: 100, maxMs: 1000)))
        _ = producer.handle(send(1), now: at(1))
        _ = producer.handle(send(2), now: at(1))
        let lost = producer.handle(.connectionLost, now: at(5))
        #expect(completions(lost) == [1: .unknown(.connectionLost)])
        #expect(lost.contains(.scheduleTick(at: at(105))) && !lost.contains(.connect))
        #expect(producer.handle(.tick, now: at(104)).isEmpty, "no reconnect before the back-off")
        #expect(producer.handle(.tick, now: at(105)).contains(.connect))
        let resent = puts(producer.handle(.connected, now: at(106)))
        #expect(resent.map(\.opaque) == [Self.firstOpaque + 1], "queued send 2 goes out on a fresh opaque")
        #expect(producer.counters.unknown == 1 && producer.counters.failed == 0)
    }

    /// No answer within the request timeout: UNKNOWN, exactly at the deadline; a late answer
    /// afterwards changes nothing.
    @Test func timeoutIsUnknownAndLateAnswerIgnored() {
        var producer = connected(.init(requestTimeoutMs: 1000))
        let sent = producer.handle(send(1), now: at(10))
        #expect(sent.contains(.scheduleTick(at: at(1010))))
        #expect(producer.handle(.tick, now: at(1009)).isEmpty)
        #expect(completions(producer.handle(.tick, now: at(1010))) == [1: .unknown(.timedOut)])
        #expect(producer.handle(answer(200, "7 0 0", Self.firstOpaque), now: at(1011)).isEmpty)
        #expect(producer.counters.timeouts == 1 && producer.counters.unmatchedAnswers == 1)
    }

    /// Every queue has a bound (DESIGN §3): `maxInFlight` on the wire, `maxQueued` waiting, and
    /// one more is rejected at once; an answer frees a slot for the oldest queued send.
    @Test func windowAndQueueBounds() {
        var producer = connected(.init(maxInFlight: 2, maxQueued: 2))
        var frames: [PutCommand] = []
        var outcomes: [UInt64: SendOutcome] = [:]
        for id in 1...5 as ClosedRange<UInt64> {
            let actions = producer.handle(send(id), now: at(1))
            frames += puts(actions)
            outcomes.merge(completions(actions)) { a, _ in a }
        }
        #expect(frames.count == 2 && producer.queuedCount == 2)
        #expect(outcomes == [5: .rejected(.queueFull)])
        let next = puts(producer.handle(answer(200, "1 0 0", Self.firstOpaque), now: at(2)))
        #expect(next.count == 1 && producer.queuedCount == 1 && producer.inFlightOpaques.count == 2)
    }

    /// With no window the queue bound alone decides, and `maxQueued: 0` still sends at once.
    @Test func zeroQueueStillSendsWhenTheWindowIsOpen() {
        var producer = connected(.init(maxInFlight: 1, maxQueued: 0))
        #expect(puts(producer.handle(send(1), now: at(1))).count == 1)
        #expect(completions(producer.handle(send(2), now: at(1))) == [2: .rejected(.queueFull)])
    }

    /// Sends made while disconnected wait; the machine connects only when it has work, and a send
    /// that waits longer than the request timeout is rejected (it never left: not stored).
    @Test func connectsOnDemandAndExpiresQueuedSends() {
        var producer = ProducerMachine(settings: .init(requestTimeoutMs: 500))
        #expect(producer.handle(.tick, now: at(0)).isEmpty, "no work, no connection")
        let first = producer.handle(send(1), now: at(10))
        #expect(first == [.connect, .scheduleTick(at: at(510))])
        let failed = producer.handle(.connectionLost, now: at(20))
        #expect(!failed.contains(.connect) && producer.counters.disconnects == 1)
        let expired = producer.handle(.tick, now: at(510))
        #expect(completions(expired) == [1: .rejected(.expired)])
        #expect(!expired.contains(.connect), "nothing left to send")
    }

    /// Back-off grows with consecutive failed attempts and resets after a successful connect;
    /// an attempt that hangs is closed at the request timeout.
    @Test func reconnectBackoffGrowsAndConnectAttemptTimesOut() {
        var producer = ProducerMachine(settings: .init(requestTimeoutMs: 10_000, reconnectBackoff: Backoff(stepMs: 100, maxMs: 250)))
        _ = producer.handle(send(1), now: at(0))
        #expect(producer.handle(.connectionLost, now: at(0)).contains(.scheduleTick(at: at(100))))
        #expect(producer.handle(.tick, now: at(100)).contains(.connect))
        #expect(producer.handle(.connectionLost, now: at(100)).contains(.scheduleTick(at: at(300))))
        #expect(producer.handle(.tick, now: at(300)).contains(.connect))
        #expect(producer.handle(.connectionLost, now: at(300)).contains(.scheduleTick(at: at(550))), "capped at 250")
        #expect(producer.handle(.tick, now: at(550)).contains(.connect))
        let waited = producer.handle(.tick, now: at(10_000))
        #expect(completions(waited)[1] == .rejected(.expired) && !waited.contains(.disconnect))
        _ = producer.handle(send(2), now: at(10_000))
        let hung = producer.handle(.tick, now: at(10_550))
        #expect(hung.contains(.disconnect) && producer.counters.disconnects == 4, "the attempt hung past the timeout")
        #expect(producer.handle(.tick, now: at(10_800)).contains(.connect))
        #expect(puts(producer.handle(.connected, now: at(10_801))).count == 1)
        let lost = producer.handle(.connectionLost, now: at(10_802))
        #expect(lost.contains(.scheduleTick(at: at(10_902))), "a successful connect resets the back-off")
        #expect(completions(lost)[2] == .unknown(.connectionLost))
    }

    /// Timeouts in a row with no answer mean a dead connection (§1.4.4, 3 failed heartbeats):
    /// it is closed and the rest of the window becomes unknown.
    @Test func consecutiveTimeoutsCloseTheConnection() {
        var producer = connected(.init(requestTimeoutMs: 100, maxConsecutiveTimeouts: 2))
        _ = producer.handle(send(1), now: at(0))
        _ = producer.handle(send(2), now: at(0))
        _ = producer.handle(send(3), now: at(50))
        let actions = producer.handle(.tick, now: at(100))
        #expect(actions.contains(.disconnect) && !producer.isConnected)
        #expect(completions(actions) == [1: .unknown(.timedOut), 2: .unknown(.timedOut), 3: .unknown(.connectionLost)])
        #expect(producer.handle(answer(200, "1 0 0", Self.firstOpaque + 2), now: at(101)).isEmpty)
    }

    /// A broker never sends a producer a `value` or a request: close, in-flight puts unknown.
    @Test func protocolViolationDisconnects() {
        var producer = connected()
        _ = producer.handle(send(1), now: at(0))
        let actions = producer.handle(.frame(.value(ValueResponse(body: [], opaque: Self.firstOpaque))), now: at(1))
        #expect(actions.first == .disconnect)
        #expect(completions(actions) == [1: .unknown(.connectionLost)])
        #expect(producer.counters.protocolViolations == 1)
    }

    /// A topic that would break the put line (§1.1 tokens) is rejected before anything is sent.
    @Test func invalidRequestsAreRejected() {
        var producer = connected()
        let actions = producer.handle(.send(id: 9, topic: "a b", partition: 0, flag: 0, payload: []), now: at(0))
        guard case .rejected(.invalidRequest)? = completions(actions)[9] else {
            Issue.record("expected an invalid-request rejection, got \(actions)")
            return
        }
        #expect(puts(actions).isEmpty)
        #expect(completions(producer.handle(send(10, partition: -2), now: at(0))).count == 1)
    }

    /// `.sendAll` is `.send` after `.send` at one instant: the same frames, completions and
    /// rejections in the same order (here past the window and the queue bound), one wake-up.
    @Test func sendAllIsTheSameAsSendsOneByOne() {
        let settings = ProducerMachine.Settings(maxInFlight: 3, maxQueued: 2)
        let sends = (1...8).map { ProducerMachine.Send(id: UInt64($0), topic: "test", partition: Int32($0 % 2), flag: 0,
                                                       payload: bytes("m\($0)")) }
        var oneByOne = connected(settings)
        var single: [ProducerMachine.Action] = []
        for s in sends {
            single += oneByOne.handle(.send(id: s.id, topic: s.topic, partition: s.partition, flag: s.flag, payload: s.payload),
                                      now: at(1))
        }
        var batched = connected(settings)
        let batch = batched.handle(.sendAll(sends), now: at(1))
        let noTicks: ([ProducerMachine.Action]) -> [ProducerMachine.Action] = { $0.filter { if case .scheduleTick = $0 { false } else { true } } }
        #expect(noTicks(batch) == noTicks(single))
        #expect(puts(batch).map(\.opaque) == [0, 1, 2].map { Self.firstOpaque + $0 })
        #expect(completions(batch) == [6: .rejected(.queueFull), 7: .rejected(.queueFull), 8: .rejected(.queueFull)])
        #expect(batch.filter { if case .scheduleTick = $0 { true } else { false } } == [.scheduleTick(at: at(10_001))])
        #expect(batched.counters == oneByOne.counters && batched.queuedCount == 2)
    }

    /// `.frames` completes each answer of a read; once one frame made the machine close the
    /// connection the rest of the read is dropped (not counted as stray answers).
    @Test func framesOfOneReadStopAtADisconnect() {
        var producer = connected()
        _ = producer.handle(.sendAll((1...3).map { ProducerMachine.Send(id: $0, topic: "test", partition: 0, flag: 0, payload: bytes("x")) }),
                            now: at(1))
        let fine = producer.handle(.frames([reply("5 0 20", Self.firstOpaque + 1), reply("4 0 0", Self.firstOpaque)]),
                                   now: at(2))
        #expect(completions(fine) == [1: .acknowledged(msgId: 4, partition: 0, offset: 0),
                                      2: .acknowledged(msgId: 5, partition: 0, offset: 20)])
        _ = producer.handle(send(4), now: at(3))
        let actions = producer.handle(.frames([
            reply("6 0 40", Self.firstOpaque + 2),
            .value(ValueResponse(body: [], opaque: Self.firstOpaque + 3)),
            reply("7 0 60", Self.firstOpaque + 3),
        ]), now: at(4))
        #expect(completions(actions) == [3: .acknowledged(msgId: 6, partition: 0, offset: 40), 4: .unknown(.connectionLost)])
        #expect(actions.contains(.disconnect) && !producer.isConnected)
        #expect(producer.counters.protocolViolations == 1 && producer.counters.unmatchedAnswers == 0)
    }

    /// A driver may hand over the payload's checksum (computed on its sending thread); the put
    /// is the same as when the machine computes it.
    @Test func givenChecksumIsUsedAsComputed() {
        var computed = connected()
        var given = connected()
        let a = puts(computed.handle(.sendAll([.init(id: 1, topic: "test", partition: 0, flag: 0, payload: bytes("hello"))]), now: at(1)))
        let b = puts(given.handle(.sendAll([.init(id: 1, topic: "test", partition: 0, flag: 0, payload: bytes("hello"),
                                                   checksum: 907060870)]), now: at(1)))
        #expect(a == b && b.first?.checksum == 907060870)
    }
}
