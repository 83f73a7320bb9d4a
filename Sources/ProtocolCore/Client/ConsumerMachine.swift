/// The fetch loop of one partition for one group over one connection (reference §1.4.2, §5.1) as a
/// pure machine. At most one `get` is in flight, so deliveries come in partition order.
///
/// The offset only moves forward, by the bytes of the whole records delivered — except by a 301
/// the broker sent (§1.4.2), which may move it anywhere (forward past deleted data, or back to the
/// broker's max offset) and is announced with `.offsetChanged`. Damaged bytes and records too large
/// to fetch are reported and fetched again after a back-off; the machine never skips them.
/// Deadlines are checked on every event, so a `.tick` only has to come eventually.
///
/// Two positions: `offset`, where the next `get` starts, and `acknowledged`, what may be committed
/// (§5.3, §5.4). Drivers read `acknowledged` after each `handle` and commit it when it changed; it
/// moves on `.processed` (or, without `awaitsProcessing`, on each delivery), with `manualAck` on
/// `.ack` instead, on `.handedOff` past a message handed off right at it, and with a 301.
/// `acknowledged.offset <= offset` always holds.
public struct ConsumerMachine: Sendable {
    public let settings: Settings
    public private(set) var counters = Counters()
    /// Where the next record starts: the offset of the next `get`.
    public private(set) var offset: Int64
    /// The current `maxSize` of a `get`: grows for large records, shrinks back after small answers.
    public private(set) var maxSizeBytes: Int32
    /// The committable position: every message before `acknowledged.offset` was handled (with
    /// `manualAck`: acknowledged) or handed off, or the broker moved the offset past it; `msgId`
    /// is the id of the message that ends there (-1 when unknown: at the start, after a 301).
    public private(set) var acknowledged: StoredOffset

    private var phase: Phase = .notStarted
    private var opaques: OpaqueSequence
    /// Empty or failed fetches since the last delivery (drives `fetchBackoff`).
    private var fetchMisses = 0
    /// Connection losses and failed attempts since the last successful connect.
    private var reconnectMisses = 0
    private var consecutiveTimeouts = 0
    private var wakeUp = WakeUp()
    /// A delivered batch the application has not reported `.processed` yet (only with
    /// `awaitsProcessing`): no `get` goes out meanwhile, so deliveries stay in partition order.
    private var unprocessed = false
    /// The messages of the last delivery (until the next one, or a rollback voids it): the one a
    /// failure names is the one handed off, and acknowledgements take their ids from it.
    private var delivery: [Message] = []
    /// The message failing now (with a `RetryPolicy`): its offset and failed attempts so far.
    private var failing: (offset: Int64, attempts: Int)?
    /// A `.recover` not answered yet, or answered with `.handOffFailed` (then asked again at
    /// `retryAt`). No `get` goes out meanwhile: the partition waits at the message.
    private var handingOff: HandOff?

    private struct HandOff {
        var message: Message
        /// Where the record after it starts.
        var end: Int64
        var attempts: Int
        /// `.handOffFailed` answers so far (drives the back-off).
        var failures: Int
        var retryAt: Instant?
    }

    private enum Phase {
        case notStarted
        /// Not connected; connects again at `until`.
        case backingOff(until: Instant)
        case connecting(deadline: Instant)
        /// Connected, no `get` in flight; the next one goes out at `until`.
        case waiting(until: Instant)
        /// Connected, the `get` with this opaque in flight.
        case fetching(opaque: Int32, deadline: Instant)
        /// Connected, waiting for the application to process the last delivery.
        case holding
    }

    public init(settings: Settings) {
        self.settings = settings
        self.offset = settings.startOffset
        self.maxSizeBytes = settings.maxSizeBytes
        self.acknowledged = StoredOffset(msgId: -1, offset: settings.startOffset)
        self.opaques = OpaqueSequence(range: settings.opaqueRange)
    }

    /// The opaque of the `get` awaiting its answer, if any.
    public var inFlightOpaque: Int32? {
        if case .fetching(let opaque, _) = phase { return opaque } else { return nil }
    }

    /// Whether the connection is open.
    public var isConnected: Bool {
        switch phase {
        case .waiting, .fetching, .holding: return true
        case .notStarted, .backingOff, .connecting: return false
        }
    }

    /// Feeds one event; returns what the driver must do, in order.
    public mutating func handle(_ event: Event, now: Instant) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .start:
            if case .notStarted = phase { connect(now, &actions) }
        case .connected:
            switch phase {
            case .backingOff, .connecting:
                counters.connects += 1
                reconnectMisses = 0
                consecutiveTimeouts = 0
                fetch(now, &actions)
            case .notStarted, .waiting, .fetching, .holding:
                break
            }
        case .connectionLost:
            connectionGone(now)
        case .frame(let frame):
            receive(frame, now, &actions)
        case .processed(let nextOffset):
            processed(nextOffset, now, &actions)
        case .handedOff:
            handedOff(now, &actions)
        case .handOffFailed:
            guard var pending = handingOff, pending.retryAt == nil else { break }
            counters.handOffFailures += 1
            pending.failures += 1
            pending.retryAt = now.adding(milliseconds: settings.fetchBackoff.delayMs(afterMisses: pending.failures))
            handingOff = pending
        case .ack(let upTo):
            if settings.manualAck && upTo > acknowledged.offset && upTo <= offset {
                counters.acks += 1
                acknowledge(upTo: upTo)
            } else {
                counters.ignoredAcks += 1
            }
        case .rollback(let to):
            rollback(to: to, now)
        case .tick:
            break
        }
        expire(now, &actions)
        if let at = wakeUp.request(nextDeadline, now: now) { actions.append(.scheduleTick(at: at)) }
        return actions
    }

    private mutating func connect(_ now: Instant, _ actions: inout [Action]) {
        phase = .connecting(deadline: now.adding(milliseconds: settings.requestTimeoutMs))
        actions.append(.connect)
    }

    private mutating func fetch(_ now: Instant, _ actions: inout [Action]) {
        if unprocessed || handingOff != nil {
            phase = .holding
            return
        }
        let opaque = opaques.take()
        phase = .fetching(opaque: opaque, deadline: now.adding(milliseconds: settings.requestTimeoutMs))
        counters.fetches += 1
        actions.append(.sendFrame(.get(GetCommand(
            topic: settings.topic, group: settings.group, partition: settings.partition,
            offset: offset, maxSize: maxSizeBytes, opaque: opaque))))
    }

    /// Nothing usable came back: fetch the same offset again after the back-off.
    private mutating func backOff(_ now: Instant) {
        fetchMisses += 1
        phase = .waiting(until: now.adding(milliseconds: settings.fetchBackoff.delayMs(afterMisses: fetchMisses)))
    }

    /// The connection (or the attempt) is over: a fetch in flight is abandoned; back off.
    private mutating func connectionGone(_ now: Instant) {
        switch phase {
        case .notStarted, .backingOff: return
        case .connecting, .waiting, .fetching, .holding: break
        }
        counters.disconnects += 1
        reconnectMisses += 1
        phase = .backingOff(until: now.adding(milliseconds: settings.reconnectBackoff.delayMs(afterMisses: reconnectMisses)))
    }

    private mutating func receive(_ frame: Frame, _ now: Instant, _ actions: inout [Action]) {
        switch frame {
        case .result, .value:
            guard case .fetching(let opaque, _) = phase, frame.opaque == opaque else {
                counters.staleAnswers += 1
                return
            }
            consecutiveTimeouts = 0
            if case .value(let value) = frame {
                receive(value.body, now, &actions)
            } else if case .result(let result) = frame {
                receive(result, now, &actions)
            }
        default:
            guard isConnected else { return }  // from a connection already written off
            counters.protocolViolations += 1
            actions.append(.disconnect)
            connectionGone(now)
        }
    }

    /// A slice of the partition from `offset` (§1.4.2): deliver the whole records, then decide
    /// by what ended the walk (end of bytes, a cut record, or damage).
    private mutating func receive(_ body: [UInt8], _ now: Instant, _ actions: inout [Action]) {
        var records = RecordIterator(body, baseOffset: offset)
        var messages: [Message] = []
        var wholeBytes = 0
        var stop: RecordIterator.Element?
        while let element = records.next() {
            guard case .message(let message) = element else { stop = element; break }
            messages.append(message)
            wholeBytes = records.consumedBytes
        }
        if !messages.isEmpty {
            offset += Int64(wholeBytes)
            fetchMisses = 0
            counters.deliveredMessages += messages.count
            unprocessed = settings.awaitsProcessing
            delivery = messages
            if !settings.awaitsProcessing && !settings.manualAck { acknowledge(upTo: offset) }
            actions.append(.deliver(messages, nextOffset: offset))
            // §5.1: an answer under half the fetch size lets the size fall back towards the setting.
            if body.count < Int(maxSizeBytes / 2) && maxSizeBytes > settings.maxSizeBytes {
                maxSizeBytes = max(settings.maxSizeBytes, maxSizeBytes / 2)
            }
        }
        switch stop {
        case .damaged(let at, let damage)?:
            assert(at == offset, "damage must start where the whole records end")
            counters.damaged += 1
            actions.append(.reportDamage(offset: at, damage))
            backOff(now)
        case .incomplete? where messages.isEmpty:
            tooLargeForFetch(body, now, &actions)
        case .incomplete?, .message?, nil:
            if messages.isEmpty {
                counters.emptyFetches += 1
                backOff(now)
            } else {
                fetch(now, &actions)
            }
        }
    }

    /// The answer held only the start of one record (§5.1's adaptive size): double the fetch size
    /// while the broker filled it and the bound allows; otherwise report and back off.
    private mutating func tooLargeForFetch(_ body: [UInt8], _ now: Instant, _ actions: inout [Action]) {
        if body.count >= Int(maxSizeBytes) && maxSizeBytes < settings.maxMaxSizeBytes {
            maxSizeBytes = Int32(min(Int64(maxSizeBytes) * 2, Int64(settings.maxMaxSizeBytes)))
            counters.sizeIncreases += 1
            fetch(now, &actions)
            return
        }
        var recordBytes: Int?
        if body.count >= Record.headerSize {
            // A negative length would have been reported as damage, so this is a real size.
            recordBytes = Record.headerSize + Int(body.withUnsafeBytes { $0.int32BE(at: 0) })
        }
        counters.tooLarge += 1
        actions.append(.reportRecordTooLarge(offset: offset, recordBytes: recordBytes, fetchedBytes: body.count))
        backOff(now)
    }

    /// `result` answers to a `get` (§1.4.2, §5.1).
    private mutating func receive(_ result: ResultResponse, _ now: Instant, _ actions: inout [Action]) {
        switch result.code {
        case StatusCode.moved:
            // The body is the offset to continue from. A 301 to where we already are would loop
            // (§11 #1 shows a broker doing exactly that), so it counts as an error.
            if let target = Int64(result.text), target >= 0, target != offset {
                // Acknowledgements follow the move unless some delivered messages are still
                // unacknowledged (then the next ack covers the gap), and never stay past it.
                if acknowledged.offset == offset || target < acknowledged.offset {
                    acknowledged = StoredOffset(msgId: -1, offset: target)
                }
                offset = target
                failing = nil
                counters.moves += 1
                actions.append(.offsetChanged(target))
                fetch(now, &actions)
                return
            }
            counters.brokerErrors += 1
            actions.append(.reportBrokerError(code: result.code, text: result.text))
        case StatusCode.notFound:
            counters.emptyFetches += 1
        case StatusCode.forbidden:
            counters.partitionClosed += 1
        default:
            counters.brokerErrors += 1
            actions.append(.reportBrokerError(code: result.code, text: result.text))
        }
        backOff(now)
    }

    /// The application is done with the last delivery up to `nextOffset`: all of it (the next
    /// `get` goes out) or only up to a message that failed, which is fetched again after the
    /// fetch back-off (nothing at or after it counts as consumed) — or, with a `RetryPolicy`,
    /// handed off and skipped once it has failed too often (§5.2).
    private mutating func processed(_ nextOffset: Int64, _ now: Instant, _ actions: inout [Action]) {
        guard unprocessed else { return }
        precondition(nextOffset <= offset, "processed past what was delivered")
        precondition(nextOffset >= acknowledged.offset, "a message failed after it was acknowledged")
        unprocessed = false
        if !settings.manualAck || settings.canary == .processedAcknowledgesInManualMode { acknowledge(upTo: nextOffset) }
        let messages = delivery
        if let failed = failing, nextOffset > failed.offset { failing = nil }
        guard nextOffset < offset else {
            if case .holding = phase { fetch(now, &actions) }
            return
        }
        counters.processingFailures += 1
        if let policy = settings.retry, let index = messages.firstIndex(where: { $0.offset == nextOffset }) {
            let attempts = (failing?.offset == nextOffset ? failing!.attempts : 0) + 1
            if attempts > policy.maxFetchRetries {
                handOff(messages, index, attempts: attempts, now, &actions)
                return
            }
            failing = (nextOffset, attempts)
            counters.retries += 1
            offset = nextOffset
            if case .holding = phase {
                phase = .waiting(until: now.adding(milliseconds: settings.fetchBackoff.delayMs(afterMisses: attempts)))
            }
            return
        }
        offset = nextOffset
        if case .holding = phase { backOff(now) }
    }

    /// The message at `index` failed its last attempt: ask for its hand-off; once it is kept
    /// (`.handedOff`) the partition moves past it. The messages after it in the delivery were
    /// not processed, so the next `get` starts at its end.
    private mutating func handOff(_ messages: [Message], _ index: Int, attempts: Int, _ now: Instant,
                                  _ actions: inout [Action]) {
        failing = nil
        counters.handOffs += 1
        if index + 1 < messages.count { offset = messages[index + 1].offset }
        handingOff = HandOff(message: messages[index], end: offset, attempts: attempts, failures: 0, retryAt: nil)
        actions.append(.recover(messages[index], attempts: attempts))
    }

    /// The rejection policy keeps the message: the partition may move past it. When everything
    /// before it is acknowledged it counts as acknowledged too (in either mode; §5.2 makes the
    /// policy responsible for it), so it is not fetched again; otherwise the next ack covers it.
    private mutating func handedOff(_ now: Instant, _ actions: inout [Action]) {
        guard let pending = handingOff else { return }
        handingOff = nil
        if acknowledged.offset == pending.message.offset {
            acknowledged = StoredOffset(msgId: pending.message.id, offset: pending.end)
            offset = max(offset, pending.end)  // a rollback to the message itself
        }
        if case .holding = phase { fetch(now, &actions) }
    }

    /// Moves `acknowledged` forward to `upTo`, naming the delivered message that ends there.
    private mutating func acknowledge(upTo: Int64) {
        guard upTo > acknowledged.offset else { return }
        let id = delivery.last(where: { $0.offset < upTo })?.id ?? -1
        acknowledged = StoredOffset(msgId: id, offset: upTo)
    }

    /// See `Event.rollback`. A `get` in flight is written off by leaving `.fetching`: its answer no
    /// longer matches and counts as stale.
    private mutating func rollback(to requested: Int64?, _ now: Instant) {
        let target = min(max(requested ?? acknowledged.offset, acknowledged.offset), offset)
        if !settings.manualAck && unprocessed { acknowledge(upTo: target) }
        counters.rollbacks += 1
        offset = target
        failing = nil
        unprocessed = false
        delivery = []
        switch phase {
        case .waiting, .fetching, .holding:
            phase = .waiting(until: now.adding(milliseconds: settings.fetchBackoff.delayMs(afterMisses: 1)))
        case .notStarted, .backingOff, .connecting:
            break
        }
    }

    private mutating func expire(_ now: Instant, _ actions: inout [Action]) {
        if var pending = handingOff, let retryAt = pending.retryAt, retryAt <= now {
            pending.retryAt = nil
            handingOff = pending
            actions.append(.recover(pending.message, attempts: pending.attempts))
        }
        switch phase {
        case .notStarted, .holding:
            break
        case .backingOff(let until):
            if until <= now { connect(now, &actions) }
        case .connecting(let deadline):
            if deadline <= now {
                actions.append(.disconnect)
                connectionGone(now)
            }
        case .waiting(let until):
            if until <= now { fetch(now, &actions) }
        case .fetching(_, let deadline):
            guard deadline <= now else { return }
            counters.timeouts += 1
            consecutiveTimeouts += 1
            if consecutiveTimeouts >= settings.maxConsecutiveTimeouts {
                consecutiveTimeouts = 0
                actions.append(.disconnect)
                connectionGone(now)
            } else {
                backOff(now)
            }
        }
    }

    private var nextDeadline: Instant? {
        let phaseDeadline = self.phaseDeadline
        guard let retryAt = handingOff?.retryAt else { return phaseDeadline }
        return min(retryAt, phaseDeadline ?? retryAt)
    }

    private var phaseDeadline: Instant? {
        switch phase {
        case .notStarted, .holding: return nil
        case .backingOff(let until), .waiting(let until): return until
        case .connecting(let deadline), .fetching(_, let deadline): return deadline
        }
    }
}
