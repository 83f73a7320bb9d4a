import DequeModule

/// A producer's side of one broker connection (reference §1.4.1) as a pure machine: sends go in,
/// `put` frames come out, answers are matched by opaque (§1.1: they may come back out of order) and
/// every send ends in exactly one `.completed` with a `SendOutcome`.
///
/// Bounds: at most `maxInFlight` puts on the wire and `maxQueued` waiting. Sends wait in the queue
/// while disconnected; the machine connects when it has work and, after a loss, again after the
/// reconnect back-off. A put whose answer is lost is `.unknown`, never `.failed`, and is never resent
/// by the machine. Deadlines are checked on every event, so a `.tick` only has to come eventually.
public struct ProducerMachine: Sendable {
    public let settings: Settings
    public private(set) var counters = Counters()

    private var connection: Connection = .idle
    private var queue: Deque<Pending> = []
    private var opaques: OpaqueSequence
    /// Connection losses and failed attempts since the last successful connect.
    private var reconnectMisses = 0
    private var consecutiveTimeouts = 0
    private var wakeUp = WakeUp()
    /// The topic of the last send that passed validation: a producer sends to few topics, so the
    /// name is checked once, not per send (a String compare finds the same name at once).
    private var lastValidTopic: String?

    private enum Connection {
        /// Not connected and not trying: connects as soon as there is work.
        case idle
        /// Not connected; may connect again at `until`.
        case backingOff(until: Instant)
        case connecting(deadline: Instant)
        /// Puts on the wire in send order (and so in deadline order).
        case connected(inFlight: Deque<InFlight>)
    }

    private struct Pending {
        var id: UInt64
        var topic: String
        var partition: Int32
        var flag: Int32
        var payload: [UInt8]
        /// Given by the driver (already computed off the machine's thread), or nil.
        var checksum: Int32?
        var expires: Instant
    }

    struct InFlight {
        var id: UInt64
        var opaque: Int32
        var deadline: Instant
    }

    public init(settings: Settings = Settings()) {
        self.settings = settings
        self.opaques = OpaqueSequence(range: settings.opaqueRange)
    }

    /// Whether the connection is open.
    public var isConnected: Bool {
        if case .connected = connection { return true } else { return false }
    }

    /// Opaques of the puts awaiting an answer, oldest first.
    public var inFlightOpaques: [Int32] {
        guard case .connected(let inFlight) = connection else { return [] }
        return inFlight.map(\.opaque)
    }

    /// Sends waiting for a connection or a window slot.
    public var queuedCount: Int { queue.count }

    /// Feeds one event; returns what the driver must do, in order.
    public mutating func handle(_ event: Event, now: Instant) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .send(let id, let topic, let partition, let flag, let payload):
            submit(Pending(id: id, topic: topic, partition: partition, flag: flag, payload: payload, checksum: nil,
                           expires: now.adding(milliseconds: settings.requestTimeoutMs)), &actions)
        case .sendAll(let sends):
            // Exactly as one `.send` after another at `now`: each is expired against and pumped
            // before the next is submitted (the queue bound sees the same queue).
            let expires = now.adding(milliseconds: settings.requestTimeoutMs)
            actions.reserveCapacity(sends.count + 1)
            for send in sends {
                assert(send.checksum == nil || send.checksum == CRC32.metaqChecksum(send.payload), "a given checksum is the payload's")
                submit(Pending(id: send.id, topic: send.topic, partition: send.partition, flag: send.flag,
                               payload: send.payload, checksum: send.checksum, expires: expires), &actions)
                expire(now, &actions)
                pump(now, &actions)
            }
        case .frames(let frames):
            // As one `.frame` after another, except that once a frame made the machine write the
            // connection off the rest are dropped, as the driver drops frames of a closed connection.
            let wasConnected = isConnected
            actions.reserveCapacity(2 * frames.count + 1)  // an answer completes one send and may let one more out
            for frame in frames {
                if wasConnected && !isConnected { break }
                receive(frame, now, &actions)
                expire(now, &actions)
                pump(now, &actions)
            }
        case .connected:
            switch connection {
            case .connected: break
            case .idle, .backingOff, .connecting:
                connection = .connected(inFlight: [])
                counters.connects += 1
                reconnectMisses = 0
                consecutiveTimeouts = 0
            }
        case .connectionLost:
            connectionGone(now, &actions)
        case .frame(let frame):
            receive(frame, now, &actions)
        case .tick:
            break
        }
        expire(now, &actions)
        pump(now, &actions)
        if let at = wakeUp.request(nextDeadline, now: now) { actions.append(.scheduleTick(at: at)) }
        return actions
    }

    private mutating func submit(_ pending: Pending, _ actions: inout [Action]) {
        counters.submitted += 1
        if let problem = validate(pending) {
            reject(pending.id, .invalidRequest(problem), &actions)
            return
        }
        // The queue is drained at the end of every event, so an empty queue with a free window
        // means this send goes out now and needs no queue slot.
        var windowOpen = false
        if case .connected(let inFlight) = connection { windowOpen = inFlight.count < settings.maxInFlight }
        guard (queue.isEmpty && windowOpen) || queue.count < settings.maxQueued else {
            reject(pending.id, .queueFull, &actions)
            return
        }
        queue.append(pending)
    }

    private mutating func validate(_ p: Pending) -> String? {
        if p.topic != lastValidTopic {
            if let problem = MetaName.problem(with: p.topic) { return MetaName.refusal("topic", p.topic, problem) }
            lastValidTopic = p.topic
        }
        if p.partition < -1 { return "partition \(p.partition) is below -1" }
        if p.payload.count > Int(Int32.max) { return "payload of \(p.payload.count) bytes exceeds Int32.max" }
        return nil
    }

    private mutating func reject(_ id: UInt64, _ reason: SendOutcome.RejectReason, _ actions: inout [Action]) {
        complete(id, .rejected(reason), &actions)
    }

    /// Sends queued puts while the window has room; starts connecting when idle with work.
    private mutating func pump(_ now: Instant, _ actions: inout [Action]) {
        switch connection {
        case .idle where !queue.isEmpty:
            connection = .connecting(deadline: now.adding(milliseconds: settings.requestTimeoutMs))
            actions.append(.connect)
        case .connected(var inFlight):
            guard inFlight.count < settings.maxInFlight, !queue.isEmpty else { return }
            connection = .idle  // keeps `inFlight` uniquely referenced while it grows
            while inFlight.count < settings.maxInFlight, let p = queue.popFirst() {
                let opaque = opaques.take()
                let put = PutCommand(topic: p.topic, partition: p.partition, flag: p.flag,
                                     checksum: p.checksum ?? CRC32.metaqChecksum(p.payload), body: p.payload, opaque: opaque)
                actions.append(.sendFrame(.put(put)))
                inFlight.append(InFlight(id: p.id, opaque: opaque,
                                         deadline: now.adding(milliseconds: settings.requestTimeoutMs)))
                counters.sent += 1
            }
            connection = .connected(inFlight: inFlight)
        case .idle, .backingOff, .connecting:
            break
        }
    }

    private mutating func receive(_ frame: Frame, _ now: Instant, _ actions: inout [Action]) {
        guard case .connected(var inFlight) = connection else {
            counters.unmatchedAnswers += 1  // from a connection already written off
            return
        }
        guard case .result(let answer) = frame else {
            counters.protocolViolations += 1
            actions.append(.disconnect)
            connectionGone(now, &actions)
            return
        }
        guard let index = Self.index(of: answer.opaque, in: inFlight, range: opaques.range) else {
            counters.unmatchedAnswers += 1
            return
        }
        connection = .idle  // keeps `inFlight` uniquely referenced
        let put = inFlight.remove(at: index)
        connection = .connected(inFlight: inFlight)
        consecutiveTimeouts = 0
        complete(put.id, Self.outcome(of: answer), &actions)
    }

    /// Where the put with `opaque` is in flight. Puts go out with consecutive opaques of `range`
    /// and leave in any order, so the deque is sorted by distance from its first opaque (modulo
    /// the range): answers in order hit the front, others a binary search; a miss is confirmed by
    /// a scan (it also covers a window larger than the range, where opaques would repeat).
    static func index(of opaque: Int32, in inFlight: Deque<InFlight>, range: ClosedRange<Int32>) -> Int? {
        guard let first = inFlight.first else { return nil }
        if first.opaque == opaque { return 0 }
        let span = Int64(range.upperBound) - Int64(range.lowerBound) + 1
        func distance(_ o: Int32) -> Int64 {
            let d = Int64(o) - Int64(first.opaque)
            return d < 0 ? d + span : d
        }
        if inFlight.count <= span, range.contains(opaque) {
            let target = distance(opaque)
            var low = 0
            var high = inFlight.count
            while low < high {
                let mid = (low + high) / 2
                if distance(inFlight[mid].opaque) < target { low = mid + 1 } else { high = mid }
            }
            if low < inFlight.count, inFlight[low].opaque == opaque { return low }
        }
        return inFlight.firstIndex { $0.opaque == opaque }
    }

    /// §1.4.1: 200 carries `"<msgId> <partition> <offset>"`; any other code is a refusal (§1.2).
    static func outcome(of answer: ResultResponse) -> SendOutcome {
        guard answer.code == StatusCode.success else { return .failed(code: answer.code, text: answer.text) }
        // Three decimals separated by single spaces, read straight from the body's bytes (every
        // put's answer passes here; the text is made only for a malformed one). Offset -1
        // answers a put inside a transaction, which this machine never sends.
        var numbers: (Int64, Int64, Int64) = (0, 0, 0)
        var count = 0
        var ok = true
        answer.body.withUnsafeBufferPointer { bytes in
            var start = 0
            while ok && count < 3 && start <= bytes.count {
                var end = start
                while end < bytes.count && bytes[end] != UInt8(ascii: " ") { end += 1 }
                guard let value = Self.decimal(bytes[start..<end]) else { ok = false; return }
                switch count {
                case 0: numbers.0 = value
                case 1: numbers.1 = value
                default: numbers.2 = value
                }
                count += 1
                start = end + 1
            }
            if start <= bytes.count { ok = false }  // more than three fields
        }
        guard ok, count == 3, numbers.1 >= 0, numbers.1 <= Int64(Int32.max), numbers.2 >= 0 else {
            return .unknown(.malformedAnswer(answer.text))
        }
        return .acknowledged(msgId: numbers.0, partition: Int32(numbers.1), offset: numbers.2)
    }

    /// An optionally negative decimal that fits an Int64; nil for anything else (also empty).
    static func decimal(_ digits: Slice<UnsafeBufferPointer<UInt8>>) -> Int64? {
        var index = digits.startIndex
        let negative = index < digits.endIndex && digits[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        guard index < digits.endIndex else { return nil }
        var value: Int64 = 0
        while index < digits.endIndex {
            let digit = digits[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = negative ? times.subtractingReportingOverflow(Int64(digit)) : times.addingReportingOverflow(Int64(digit))
            guard !o1 && !o2 else { return nil }
            value = sum
            index += 1
        }
        return value
    }

    private mutating func complete(_ id: UInt64, _ outcome: SendOutcome, _ actions: inout [Action]) {
        switch outcome {
        case .acknowledged: counters.acknowledged += 1
        case .failed: counters.failed += 1
        case .unknown(let reason):
            counters.unknown += 1
            if case .malformedAnswer = reason { counters.malformedAnswers += 1 }
            if reason == .timedOut { counters.timeouts += 1 }
        case .rejected: counters.rejected += 1
        }
        actions.append(.completed(id: id, outcome))
    }

    /// The connection (or the attempt) is over: puts in flight become unknown; back off.
    private mutating func connectionGone(_ now: Instant, _ actions: inout [Action]) {
        switch connection {
        case .idle, .backingOff:
            return
        case .connecting:
            break
        case .connected(let inFlight):
            for put in inFlight { complete(put.id, .unknown(.connectionLost), &actions) }
        }
        counters.disconnects += 1
        reconnectMisses += 1
        let delay = settings.reconnectBackoff.delayMs(afterMisses: reconnectMisses)
        connection = .backingOff(until: now.adding(milliseconds: delay))
    }

    private mutating func expire(_ now: Instant, _ actions: inout [Action]) {
        while let first = queue.first, first.expires <= now {
            queue.removeFirst()
            reject(first.id, .expired, &actions)
        }
        switch connection {
        case .idle:
            break
        case .backingOff(let until):
            if until <= now { connection = .idle }
        case .connecting(let deadline):
            if deadline <= now {
                actions.append(.disconnect)
                connectionGone(now, &actions)
            }
        case .connected(var inFlight):
            guard let first = inFlight.first, first.deadline <= now else { return }
            connection = .idle
            while let put = inFlight.first, put.deadline <= now {
                inFlight.removeFirst()
                consecutiveTimeouts += 1
                complete(put.id, .unknown(.timedOut), &actions)
            }
            connection = .connected(inFlight: inFlight)
            if consecutiveTimeouts >= settings.maxConsecutiveTimeouts {
                consecutiveTimeouts = 0
                actions.append(.disconnect)
                connectionGone(now, &actions)
            }
        }
    }

    /// The earliest of the queue's first expiry and the connection's deadline (computed per
    /// event: no collection built).
    private var nextDeadline: Instant? {
        let connectionDeadline: Instant? = switch connection {
        case .idle: nil
        case .backingOff(let until): until
        case .connecting(let deadline): deadline
        case .connected(let inFlight): inFlight.first?.deadline
        }
        guard let queued = queue.first?.expires else { return connectionDeadline }
        guard let connectionDeadline else { return queued }
        return min(queued, connectionDeadline)
    }
}
