import Testing
@testable import ProtocolCore

/// The ordered producer's machine (reference §5.6) fed by hand, with an in-memory spool standing in
/// for the driver's store: sends go out while the partition is available, are spooled while it is
/// not, later messages queue behind the spool, and the spool is replayed in order.
@Suite("Ordered send queue (reference §5.6)")
struct OrderedSendQueueTests {
    static let p0 = OrderedLane(topic: "orders", partition: BrokerPartition(brokerId: 0, partition: 0))
    static let p1 = OrderedLane(topic: "orders", partition: BrokerPartition(brokerId: 0, partition: 1))
    static let ack = SendOutcome.acknowledged(msgId: 7, partition: 0, offset: 0)

    /// Plays the driver: spool writes, reads and removals run at once against `spool`; transmits
    /// stay outstanding until the test answers them.
    struct Harness {
        var machine: OrderedSendQueue
        var now = Instant.milliseconds(0)
        var spool: [OrderedLane: [SpooledMessage]] = [:]
        var nextSequence: UInt64 = 1
        var failWrites = false
        var failReads = false
        var failRemovals = false
        var outstanding: [(token: UInt64, lane: OrderedLane, text: String)] = []
        /// Every transmit in the order the machine asked for it.
        var transmitted: [String] = []
        var completed: [UInt64: OrderedSendOutcome] = [:]
        var reads: [Int] = []
        var ticks: [Instant] = []

        init(_ settings: OrderedSendQueue.Settings = .init()) { machine = OrderedSendQueue(settings: settings) }

        mutating func feed(_ event: OrderedSendQueue.Event) {
            var queue = [event]
            while !queue.isEmpty {
                for action in machine.handle(queue.removeFirst(), now: now) { queue += perform(action) }
            }
        }

        private mutating func perform(_ action: OrderedSendQueue.Action) -> [OrderedSendQueue.Event] {
            switch action {
            case .transmit(let token, let lane, _, let payload):
                let text = String(decoding: payload, as: UTF8.self)
                outstanding.append((token, lane, text))
                transmitted.append(text)
            case .spool(let token, let lane, let flag, let payload):
                guard !failWrites else { return [.spoolWritten(token: token, succeeded: false)] }
                spool[lane, default: []].append(SpooledMessage(sequence: nextSequence, flag: flag, payload: payload))
                nextSequence += 1
                return [.spoolWritten(token: token, succeeded: true)]
            case .readSpool(let lane, let count):
                reads.append(count)
                guard !failReads else { return [.spoolReadFailed(lane: lane)] }
                return [.spoolRead(lane: lane, Array(spool[lane, default: []].prefix(count)))]
            case .unspool(let lane, let through):
                guard !failRemovals else { return [.unspooled(lane: lane, through: through, succeeded: false)] }
                spool[lane]?.removeAll { $0.sequence <= through }
                return [.unspooled(lane: lane, through: through, succeeded: true)]
            case .completed(let id, let outcome):
                completed[id] = outcome
            case .scheduleTick(let at):
                ticks.append(at)
            }
            return []
        }

        mutating func send(_ id: UInt64, _ text: String, to lane: OrderedLane = p0) {
            feed(.send(id: id, lane: lane, flag: 0, payload: Array(text.utf8)))
        }

        mutating func answer(_ text: String, _ outcome: SendOutcome) {
            let index = outstanding.firstIndex { $0.text == text }!
            let token = outstanding.remove(at: index).token
            feed(.transmitted(token: token, outcome))
        }

        func spooled(_ lane: OrderedLane = p0) -> [String] {
            spool[lane, default: []].map { String(decoding: $0.payload, as: UTF8.self) }
        }

        var outstandingTexts: [String] { outstanding.map(\.text) }
    }

    @Test func availablePartitionSendsAtOnce() {
        var h = Harness()
        h.send(1, "a")
        #expect(h.outstandingTexts == ["a"])
        h.answer("a", .acknowledged(msgId: 9, partition: 0, offset: 40))
        #expect(h.completed[1] == .sent(msgId: 9, partition: 0, offset: 40))
        #expect(h.machine.totalSpooled == 0 && h.spool.isEmpty)
    }

    /// §5.6: a partition the directory does not list is unavailable: its messages are spooled
    /// (reported only once synced), later ones queue behind them, other partitions go on.
    @Test func unlistedPartitionSpoolsAndLaterMessagesFollow() {
        var h = Harness()
        h.feed(.partitionsListed(topic: "orders", [Self.p1.partition]))
        h.send(1, "a")
        h.send(2, "b")
        h.send(3, "x", to: Self.p1)
        #expect(h.completed[1] == .spooled && h.completed[2] == .spooled)
        #expect(h.spooled() == ["a", "b"] && h.outstandingTexts == ["x"])
        #expect(h.machine.spoolDepth(of: Self.p0) == 2 && h.machine.spoolDepth(of: Self.p1) == 0)
        h.answer("x", Self.ack)
        #expect(h.completed[3] == .sent(msgId: 7, partition: 0, offset: 0))
    }

    /// When the partition is listed again the spool goes out oldest first, one window at a time,
    /// each message removed only once acknowledged; messages sent meanwhile queue behind it and the
    /// lane sends directly again once the spool is empty.
    @Test func replayIsInOrderAndEndsDirect() {
        var h = Harness(.init(maxInFlightPerLane: 2))
        h.feed(.partitionsListed(topic: "orders", []))
        for (id, text) in ["a", "b", "c"].enumerated() { h.send(UInt64(id), text) }
        h.feed(.partitionsListed(topic: "orders", [Self.p0.partition]))
        #expect(h.outstandingTexts == ["a", "b"] && h.reads == [2])
        h.send(10, "d")
        #expect(h.completed[10] == .spooled && h.spooled() == ["a", "b", "c", "d"])
        h.answer("b", Self.ack)
        #expect(h.spooled() == ["a", "b", "c", "d"], "b is not removed before a is acknowledged")
        h.answer("a", Self.ack)
        #expect(h.spooled() == ["c", "d"] && h.outstandingTexts == ["c", "d"])
        h.answer("c", Self.ack)
        h.answer("d", Self.ack)
        #expect(h.spooled().isEmpty && h.machine.totalSpooled == 0)
        h.send(11, "e")
        #expect(h.outstandingTexts == ["e"] && h.completed[11] == nil, "the lane is direct again")
        #expect(h.transmitted == ["a", "b", "c", "d", "e"])
        #expect(h.machine.counters.replayed == 4)
    }

    /// A failure in a replay window stops the replay: the acknowledged prefix is removed, the
    /// failed message and everything after it stay (an acknowledged later one too: it will be
    /// stored again, after the failed one), and nothing is read again before the back-off.
    @Test func replayFailureKeepsTheRestAndRetriesAfterBackOff() {
        var h = Harness(.init(maxInFlightPerLane: 3, retryBackoff: Backoff(stepMs: 100, maxMs: 1000)))
        h.feed(.partitionsListed(topic: "orders", []))
        for (id, text) in ["a", "b", "c", "d"].enumerated() { h.send(UInt64(id), text) }
        h.feed(.partitionsListed(topic: "orders", [Self.p0.partition]))
        #expect(h.outstandingTexts == ["a", "b", "c"])
        h.answer("c", Self.ack)
        h.answer("b", .unknown(.timedOut))
        h.answer("a", Self.ack)
        #expect(h.spooled() == ["b", "c", "d"] && h.reads == [3])
        #expect(h.machine.counters.replayFailures == 1)
        #expect(h.ticks.last == .milliseconds(100))
        h.now = .milliseconds(99)
        h.feed(.tick)
        #expect(h.reads == [3], "no replay during the back-off")
        h.now = .milliseconds(100)
        h.feed(.tick)
        #expect(h.outstandingTexts == ["b", "c", "d"])
        h.answer("b", .failed(code: 500, text: "disk"))
        h.answer("c", Self.ack)
        h.answer("d", Self.ack)
        #expect(h.spooled() == ["b", "c", "d"], "a refusal during replay keeps the message: it blocks its lane")
        #expect(h.ticks.last == .milliseconds(300), "the back-off grows with consecutive misses")
    }

    /// A spool that cannot be read is not an empty spool, and a removal that failed leaves its
    /// messages spooled: the lane keeps its count, backs off, and replays everything in order once
    /// the spool answers again (a failed removal resends: a duplicate, never a loss).
    @Test func failedSpoolReadOrRemovalStrandsNothing() {
        var h = Harness(.init(retryBackoff: Backoff(stepMs: 100, maxMs: 100)))
        h.feed(.partitionsListed(topic: "orders", []))
        for (id, text) in ["a", "b", "c"].enumerated() { h.send(UInt64(id), text) }
        h.failReads = true
        h.feed(.partitionsListed(topic: "orders", [Self.p0.partition]))
        #expect(h.reads == [1] && h.outstandingTexts.isEmpty)
        #expect(h.machine.spoolDepth(of: Self.p0) == 3 && h.machine.totalSpooled == 3, "a failed read is not an empty spool")
        h.send(10, "d")
        #expect(h.completed[10] == .spooled && h.outstandingTexts.isEmpty, "the lane stays diverted: d goes behind the spool")
        h.failReads = false
        h.now = .milliseconds(100)
        h.feed(.tick)
        #expect(h.outstandingTexts == ["a"])
        h.failRemovals = true
        h.answer("a", Self.ack)
        #expect(h.spooled() == ["a", "b", "c", "d"] && h.machine.totalSpooled == 4)
        #expect(h.outstandingTexts.isEmpty && h.reads.count == 2, "nothing is read before the back-off")
        h.failRemovals = false
        h.now = .milliseconds(200)
        h.feed(.tick)
        for text in ["a", "b", "c", "d"] { h.answer(text, Self.ack) }
        #expect(h.spooled().isEmpty && h.machine.totalSpooled == 0)
        #expect(h.transmitted == ["a", "a", "b", "c", "d"])
        #expect(h.machine.counters.spoolReadFailures == 1 && h.machine.counters.unspoolFailures == 1)
        h.send(11, "e")
        #expect(h.outstandingTexts == ["e"], "the lane is direct again")
    }

    /// A live send whose outcome is unknown may be stored; at least once means it is spooled and
    /// sent again (a possible duplicate), and the messages after it follow it through the spool.
    @Test func unknownOutcomeIsSpooledAndResent() {
        var h = Harness(.init(retryBackoff: Backoff(stepMs: 50, maxMs: 50)))
        h.send(1, "a")
        h.send(2, "b")
        #expect(h.outstandingTexts == ["a"] && h.machine.totalWaiting == 1, "window 1: b waits behind a")
        h.answer("a", .unknown(.connectionLost))
        #expect(h.completed[1] == .spooled && h.completed[2] == .spooled)
        #expect(h.spooled() == ["a", "b"] && h.outstanding.isEmpty && h.machine.totalWaiting == 0)
        h.now = .milliseconds(50)
        h.feed(.tick)
        #expect(h.outstandingTexts == ["a"])
        h.answer("a", Self.ack)
        h.answer("b", Self.ack)
        #expect(h.transmitted == ["a", "a", "b"] && h.spooled().isEmpty)
    }

    /// §5.6: a 403 (closed partition) and a send that never left spool like an unavailable
    /// partition; any other refusal is final, reported, and does not divert the lane.
    @Test func closedPartitionSpoolsOtherRefusalsAreReported() {
        var h = Harness()
        h.send(1, "a")
        h.answer("a", .failed(code: 500, text: "wrong partition"))
        #expect(h.completed[1] == .refused(code: 500, text: "wrong partition"))
        h.send(2, "b")
        #expect(h.outstandingTexts == ["b"], "still direct")
        h.answer("b", .failed(code: 403, text: "partition[0-0] has been closed"))
        #expect(h.completed[2] == .spooled)
        var other = Harness()
        other.send(1, "a")
        other.answer("a", .rejected(.expired))
        #expect(other.completed[1] == .spooled && other.spooled() == ["a"])
    }

    /// Window above 1: once a live send failed, the later ones of the window go through the
    /// spool even when acknowledged (stored again, after the failed one), and a message sent
    /// meanwhile waits so that it is spooled behind them.
    @Test func failureInsideAWindowKeepsSpoolOrder() {
        var h = Harness(.init(maxInFlightPerLane: 2))
        h.send(1, "a")
        h.send(2, "b")
        h.answer("a", .unknown(.timedOut))
        h.send(3, "c")
        #expect(h.spooled() == ["a"] && h.completed[3] == nil, "c waits behind b")
        h.answer("b", Self.ack)
        #expect(h.spooled() == ["a", "b", "c"])
        #expect(h.completed[2] == .spooled && h.completed[3] == .spooled)
        #expect(h.machine.counters.resentAfterAcknowledgement == 1)
    }

    /// An earlier process's spool is replayed at start, before anything sent now.
    @Test func recoveredSpoolIsReplayedFirst() {
        var h = Harness()
        h.spool[Self.p0] = [SpooledMessage(sequence: 4, flag: 0, payload: Array("old".utf8))]
        h.nextSequence = 5
        h.feed(.recovered(lane: Self.p0, count: 1))
        #expect(h.outstandingTexts == ["old"])
        h.send(1, "new")
        #expect(h.completed[1] == .spooled)
        h.answer("old", Self.ack)
        #expect(h.outstandingTexts == ["new"] && h.spooled() == ["new"])
    }

    /// Bounds: messages waiting in memory and messages in the spools; a replay reads one window,
    /// never the whole spool, into memory.
    @Test func waitingAndSpoolAreBounded() {
        var h = Harness(.init(maxInFlightPerLane: 2, maxWaiting: 3, maxSpooled: 5))
        for id in UInt64(0)..<6 { h.send(id, "m\(id)") }
        #expect(h.outstandingTexts == ["m0", "m1"] && h.machine.totalWaiting == 3)
        #expect(h.completed[5] == .notAccepted(.queueFull))
        h.feed(.partitionsListed(topic: "orders", []))
        for id in UInt64(6)..<20 { h.send(id, "m\(id)") }
        #expect(h.machine.totalWaiting == 3, "still behind the live sends")
        h.answer("m0", .unknown(.connectionLost))
        h.answer("m1", .unknown(.connectionLost))
        #expect(h.spooled() == ["m0", "m1", "m2", "m3", "m4"] && h.machine.totalWaiting == 0)
        #expect(h.machine.totalSpooled == 5 && h.machine.counters.notAccepted > 1)
        #expect((6..<20).allSatisfy { h.completed[UInt64($0)] == .notAccepted(.queueFull) || h.completed[UInt64($0)] == .notAccepted(.spoolFull) })
        h.feed(.partitionsListed(topic: "orders", [Self.p0.partition]))
        #expect(h.reads == [2] && h.outstandingTexts == ["m0", "m1"])
    }

    @Test func failedSpoolWriteIsReportedAndInvalidMessagesAreRefused() {
        var h = Harness()
        h.failWrites = true
        h.feed(.partitionsListed(topic: "orders", []))
        h.send(1, "a")
        #expect(h.completed[1] == .notAccepted(.spoolWriteFailed) && h.machine.totalSpooled == 0)
        h.feed(.send(id: 2, lane: OrderedLane(topic: "bad topic", partition: Self.p0.partition), flag: 0, payload: []))
        guard case .notAccepted(.invalidRequest)? = h.completed[2] else {
            Issue.record("a topic with a space is refused: \(String(describing: h.completed[2]))")
            return
        }
    }

    /// Closing stops sends and replays; what waits is spooled as the sends ahead resolve.
    @Test func closeSpoolsWhatWaits() {
        var h = Harness()
        h.send(1, "a")
        h.send(2, "b")
        h.feed(.close)
        #expect(h.completed[2] == nil)
        h.answer("a", Self.ack)
        #expect(h.completed[1] == .sent(msgId: 7, partition: 0, offset: 0))
        #expect(h.completed[2] == .spooled && h.transmitted == ["a"])
        h.feed(.tick)
        #expect(h.transmitted == ["a"] && h.reads.isEmpty)
    }
}
