import DequeModule

/// Ordered production (reference §5.6) as a pure machine: per lane (topic and configured
/// partition), messages reach the broker in send order; while a lane's partition cannot take them
/// they go to a durable local spool, and they are replayed from it, in order, when it can.
///
/// Per lane, a message is
/// - sent at once when the lane is *direct* (nothing spooled), its partition is available and its
///   window (`maxInFlightPerLane`) has room; otherwise it waits behind the sends ahead of it;
/// - spooled when the partition is unavailable (a directory does not list it, or a send or replay
///   failed less than the back-off ago), or when its own send was not acknowledged (403 closed
///   partition, unknown outcome, not sent). From then on the lane is *diverted*: every later
///   message goes to the spool behind it, so the spool always holds a suffix of the lane.
/// - A diverted lane whose partition is available replays its spool one window at a time: reads
///   the oldest messages, sends them, removes each only after the broker acknowledged it (answers
///   are taken in send order). The first failure stops the replay; the failed message and all after
///   it stay, and the lane is tried again after the back-off. An empty spool makes it direct again.
/// - The spool is only believed when it answers: a read that failed (`.spoolReadFailed`) or a
///   removal that failed (`.unspooled(succeeded: false)`) leaves the lane's count as it was and
///   tries the lane again after the back-off (a failed removal resends its messages: duplicates,
///   never a loss). A failed write is told to the caller of that send (`.spoolWriteFailed`).
///
/// Unknown outcomes (timeout, connection lost with the put on the wire) count as not stored and
/// are spooled or kept: at least once, so such a message may be stored twice. Refusals other than
/// 403 are final for a live send (the application is told, nothing is kept); in a replay they stop
/// it like any failure, and the message stays (it blocks its lane until the broker takes it).
///
/// Bounds: `maxInFlightPerLane` sends per lane, `maxWaiting` messages waiting in memory overall,
/// `maxSpooled` in the spools; spooled payloads are not kept in memory, only their counts (the
/// driver reads a window back with `.readSpool`).
public struct OrderedSendQueue: Sendable {
    public let settings: Settings
    public private(set) var counters = Counters()

    private var lanes: [OrderedLane: LaneState] = [:]
    /// The partitions each topic's directory lists; a topic absent here counts as available.
    private var listed: [String: Set<BrokerPartition>] = [:]
    /// Transmits awaiting their outcome → their lane.
    private var transmits: [UInt64: OrderedLane] = [:]
    /// Spool writes awaiting confirmation.
    private var spoolWrites: [UInt64: SpoolWrite] = [:]
    private var nextToken: UInt64 = 1
    private var waitingCount = 0
    /// Messages spooled or being written, over all lanes.
    private var spoolTotal = 0
    private var closed = false
    private var wakeUp = WakeUp()

    private struct LaneState {
        enum Phase { case direct, diverted }
        var phase = Phase.direct
        /// Sends on the wire, in send order; answers are taken in this order.
        var flights: Deque<Flight> = []
        /// Accepted messages behind the flights (window full, or waiting to be spooled behind
        /// live sends that may still fail).
        var waiting: Deque<Waiting> = []
        /// Messages durably in the spool.
        var spooled = 0
        /// Spool writes issued and not yet confirmed.
        var writing = 0
        var reading = false
        /// Removals asked for (`.unspool`) and not yet confirmed, in order: through which
        /// sequence, and how many acknowledged messages each removes. The lane reads nothing
        /// while one is out, so a read never returns what is being removed.
        var removals: Deque<(through: UInt64, count: Int)> = []
        /// A live send of this lane went to the spool while later live sends are still out: an
        /// acknowledgement of those must go through the spool too, or it would overtake it.
        var failedAhead = false
        /// A failure stopped the current replay window: its remaining answers are ignored.
        var replayAborted = false
        var misses = 0
        var retryAt: Instant?

        var hasLiveFlights: Bool { flights.contains { if case .live = $0.source { true } else { false } } }
    }

    private struct Flight {
        var token: UInt64
        var source: Source
        var outcome: SendOutcome?
    }

    private enum Source {
        case live(Waiting)
        case replay(sequence: UInt64)
    }

    private struct Waiting {
        var id: UInt64
        var flag: Int32
        var payload: [UInt8]
    }

    private struct SpoolWrite {
        var lane: OrderedLane
        var id: UInt64
        /// Set when the broker had acknowledged it (resent behind a failure): told `.sent` if the
        /// write fails, since one copy is stored.
        var acknowledged: OrderedSendOutcome?
    }

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    /// Messages in `lane`'s spool, written or being written.
    public func spoolDepth(of lane: OrderedLane) -> Int {
        lanes[lane].map { $0.spooled + $0.writing } ?? 0
    }

    /// Messages in all spools, written or being written.
    public var totalSpooled: Int { spoolTotal }

    /// Messages accepted that are neither sent nor spooled (in memory).
    public var totalWaiting: Int { waitingCount }

    /// Lanes that have anything spooled, sorted.
    public var divertedLanes: [OrderedLane] {
        lanes.filter { $0.value.phase == .diverted }.map(\.key).sorted()
    }

    /// Feeds one event; returns what the driver must do, in order.
    public mutating func handle(_ event: Event, now: Instant) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .send(let id, let lane, let flag, let payload):
            submit(lane, Waiting(id: id, flag: flag, payload: payload), now, &actions)
            pump(lane, now, &actions)
        case .partitionsListed(let topic, let partitions):
            list(topic, Set(partitions), now, &actions)
        case .transmitted(let token, let outcome):
            guard let lane = transmits.removeValue(forKey: token),
                  let index = lanes[lane]?.flights.firstIndex(where: { $0.token == token }) else { break }
            lanes[lane]!.flights[index].outcome = outcome
            pump(lane, now, &actions)
        case .spoolWritten(let token, let succeeded):
            guard let write = spoolWrites.removeValue(forKey: token) else { break }
            written(write, succeeded, &actions)
            pump(write.lane, now, &actions)
        case .spoolRead(let lane, let messages):
            read(lane, messages, now, &actions)
            pump(lane, now, &actions)
        case .spoolReadFailed(let lane):
            guard var state = lanes[lane], state.reading else { break }
            state.reading = false
            counters.spoolReadFailures += 1
            miss(&state, now)
            lanes[lane] = state
            pump(lane, now, &actions)
        case .unspooled(let lane, let through, let succeeded):
            unspooled(lane, through, succeeded, now)
            pump(lane, now, &actions)
        case .recovered(let lane, let count):
            guard count > 0 else { break }
            lanes[lane, default: LaneState()].spooled += count
            lanes[lane]!.phase = .diverted
            spoolTotal += count
            pump(lane, now, &actions)
        case .close:
            closed = true
            pumpAll(now, &actions)
        case .tick:
            pumpAll(now, &actions)
        }
        if let at = wakeUp.request(nextRetry(after: now), now: now) { actions.append(.scheduleTick(at: at)) }
        return actions
    }

    // MARK: admission

    private mutating func submit(_ lane: OrderedLane, _ message: Waiting, _ now: Instant, _ actions: inout [Action]) {
        counters.submitted += 1
        if let problem = Self.validate(lane, message) {
            return complete(message.id, .notAccepted(.invalidRequest(problem)), &actions)
        }
        var state = lanes[lane] ?? LaneState()
        defer { lanes[lane] = state }
        if state.phase == .direct && isAvailable(lane, state, now) {
            if state.waiting.isEmpty && state.flights.count < settings.maxInFlightPerLane {
                transmit(lane, &state, .live(message), &actions)
            } else {
                wait(&state, message, &actions)
            }
            return
        }
        state.phase = .diverted
        if state.hasLiveFlights {
            wait(&state, message, &actions)
        } else {
            spool(lane, &state, message, acknowledged: nil, &actions)
        }
    }

    private static func validate(_ lane: OrderedLane, _ message: Waiting) -> String? {
        // The topic names the lane's spool directory too (§5.6).
        if let problem = MetaName.problem(with: lane.topic) { return MetaName.refusal("topic", lane.topic, problem) }
        if lane.partition.brokerId < 0 || lane.partition.partition < 0 || lane.partition.partition > Int(Int32.max) {
            return "partition \(lane.partition) is not a configured broker partition"
        }
        if message.payload.count > Int(Int32.max) { return "payload of \(message.payload.count) bytes exceeds Int32.max" }
        return nil
    }

    private mutating func wait(_ state: inout LaneState, _ message: Waiting, _ actions: inout [Action]) {
        guard waitingCount < settings.maxWaiting else {
            return complete(message.id, .notAccepted(.queueFull), &actions)
        }
        waitingCount += 1
        state.waiting.append(message)
    }

    private func isAvailable(_ lane: OrderedLane, _ state: LaneState, _ now: Instant) -> Bool {
        guard isListed(lane) else { return false }
        if let retryAt = state.retryAt, retryAt > now { return false }
        return true
    }

    private func isListed(_ lane: OrderedLane) -> Bool {
        !closed && (listed[lane.topic].map { $0.contains(lane.partition) } ?? true)
    }

    private mutating func list(_ topic: String, _ partitions: Set<BrokerPartition>, _ now: Instant, _ actions: inout [Action]) {
        let before = listed[topic]
        listed[topic] = partitions
        for lane in lanes.keys.filter({ $0.topic == topic }).sorted() {
            // A partition that comes back (or is listed for the first time) is tried at once,
            // whatever the back-off said.
            if partitions.contains(lane.partition) && before.map({ !$0.contains(lane.partition) }) ?? true {
                lanes[lane]!.retryAt = nil
                lanes[lane]!.misses = 0
            }
            pump(lane, now, &actions)
        }
    }

    // MARK: moving a lane forward

    private mutating func pumpAll(_ now: Instant, _ actions: inout [Action]) {
        for lane in lanes.keys.sorted() { pump(lane, now, &actions) }
    }

    /// Takes the answers that are due in order, then sends, spools or replays what the lane allows.
    private mutating func pump(_ lane: OrderedLane, _ now: Instant, _ actions: inout [Action]) {
        guard var state = lanes[lane] else { return }
        defer { lanes[lane] = state }
        resolveAnswers(lane, &state, now, &actions)
        if state.phase == .direct {
            if !isAvailable(lane, state, now) && !state.waiting.isEmpty {
                state.phase = .diverted
            } else {
                while state.flights.count < settings.maxInFlightPerLane, let next = state.waiting.popFirst() {
                    waitingCount -= 1
                    transmit(lane, &state, .live(next), &actions)
                }
            }
        }
        guard state.phase == .diverted else { return }
        if !state.hasLiveFlights {
            state.failedAhead = false
            while let next = state.waiting.popFirst() {
                waitingCount -= 1
                spool(lane, &state, next, acknowledged: nil, &actions)
            }
        }
        guard state.flights.isEmpty && !state.reading && state.removals.isEmpty else { return }
        state.replayAborted = false
        if state.spooled > 0 {
            guard isAvailable(lane, state, now) else { return }
            state.reading = true
            actions.append(.readSpool(lane: lane, count: min(settings.maxInFlightPerLane, state.spooled)))
        } else if state.writing == 0 && state.waiting.isEmpty {
            state.phase = .direct
        }
    }

    /// Answers are taken in send order, so a lane's outcome never depends on which answer came first.
    private mutating func resolveAnswers(_ lane: OrderedLane, _ state: inout LaneState, _ now: Instant, _ actions: inout [Action]) {
        var acknowledged: (through: UInt64, count: Int)?
        while let head = state.flights.first, let outcome = head.outcome {
            state.flights.removeFirst()
            switch head.source {
            case .live(let message):
                resolveLive(lane, &state, message, outcome, now, &actions)
            case .replay(let sequence):
                guard !state.replayAborted else { continue }
                if case .acknowledged = outcome {
                    // Out of the count until the removal is confirmed; back in if it fails.
                    acknowledged = (sequence, (acknowledged?.count ?? 0) + 1)
                    state.spooled -= 1
                    counters.replayed += 1
                    state.misses = 0
                    state.retryAt = nil
                } else {
                    state.replayAborted = true
                    counters.replayFailures += 1
                    miss(&state, now)
                }
            }
        }
        // One durable removal for the acknowledged prefix, not one per message.
        if let acknowledged {
            state.removals.append(acknowledged)
            actions.append(.unspool(lane: lane, through: acknowledged.through))
        }
    }

    private mutating func resolveLive(_ lane: OrderedLane, _ state: inout LaneState, _ message: Waiting,
                                      _ outcome: SendOutcome, _ now: Instant, _ actions: inout [Action]) {
        switch outcome {
        case .acknowledged(let msgId, let partition, let offset):
            let sent = OrderedSendOutcome.sent(msgId: msgId, partition: partition, offset: offset)
            state.misses = 0
            if state.failedAhead {
                counters.resentAfterAcknowledgement += 1
                spool(lane, &state, message, acknowledged: sent, &actions)
            } else {
                counters.sent += 1
                complete(message.id, sent, &actions)
            }
        case .failed(let code, let text) where code != StatusCode.forbidden:
            counters.refused += 1
            complete(message.id, .refused(code: code, text: text), &actions)
        case .failed, .unknown, .rejected:
            state.phase = .diverted
            if state.hasLiveFlights { state.failedAhead = true }
            miss(&state, now)
            spool(lane, &state, message, acknowledged: nil, &actions)
        }
    }

    private mutating func miss(_ state: inout LaneState, _ now: Instant) {
        state.misses += 1
        state.retryAt = now.adding(milliseconds: settings.retryBackoff.delayMs(afterMisses: state.misses))
    }

    private mutating func transmit(_ lane: OrderedLane, _ state: inout LaneState, _ source: Source, _ actions: inout [Action]) {
        let token = takeToken()
        transmits[token] = lane
        state.flights.append(Flight(token: token, source: source, outcome: nil))
        switch source {
        case .live(let message):
            actions.append(.transmit(token: token, lane: lane, flag: message.flag, payload: message.payload))
        case .replay:
            break  // `read` emits the transmit with the spooled bytes
        }
    }

    // MARK: the spool

    private mutating func spool(_ lane: OrderedLane, _ state: inout LaneState, _ message: Waiting,
                                acknowledged: OrderedSendOutcome?, _ actions: inout [Action]) {
        guard spoolTotal < settings.maxSpooled else {
            return complete(message.id, acknowledged ?? .notAccepted(.spoolFull), &actions)
        }
        let token = takeToken()
        spoolWrites[token] = SpoolWrite(lane: lane, id: message.id, acknowledged: acknowledged)
        state.writing += 1
        spoolTotal += 1
        actions.append(.spool(token: token, lane: lane, flag: message.flag, payload: message.payload))
    }

    private mutating func written(_ write: SpoolWrite, _ succeeded: Bool, _ actions: inout [Action]) {
        lanes[write.lane]!.writing -= 1
        if succeeded {
            lanes[write.lane]!.spooled += 1
            counters.spooled += 1
            complete(write.id, .spooled, &actions)
        } else {
            spoolTotal -= 1
            complete(write.id, write.acknowledged ?? .notAccepted(.spoolWriteFailed), &actions)
        }
    }

    private mutating func unspooled(_ lane: OrderedLane, _ through: UInt64, _ succeeded: Bool, _ now: Instant) {
        guard var state = lanes[lane], let removal = state.removals.first, removal.through == through else { return }
        defer { lanes[lane] = state }
        state.removals.removeFirst()
        if succeeded {
            spoolTotal -= removal.count
        } else {
            // Still in the spool: read and sent again after the back-off.
            counters.unspoolFailures += 1
            state.spooled += removal.count
            miss(&state, now)
        }
    }

    private mutating func read(_ lane: OrderedLane, _ messages: [SpooledMessage], _ now: Instant, _ actions: inout [Action]) {
        guard var state = lanes[lane], state.reading else { return }
        defer { lanes[lane] = state }
        state.reading = false
        if messages.isEmpty {
            // The store answered (it did not fail) that it holds nothing more for the lane: believe it.
            spoolTotal -= state.spooled
            state.spooled = 0
            return
        }
        guard isListed(lane) else { return }
        for message in messages.prefix(settings.maxInFlightPerLane) {
            transmit(lane, &state, .replay(sequence: message.sequence), &actions)
            actions.append(.transmit(token: state.flights.last!.token, lane: lane, flag: message.flag, payload: message.payload))
        }
    }

    private mutating func complete(_ id: UInt64, _ outcome: OrderedSendOutcome, _ actions: inout [Action]) {
        switch outcome {
        case .notAccepted: counters.notAccepted += 1
        case .sent, .spooled, .refused: break
        }
        actions.append(.completed(id: id, outcome))
    }

    private mutating func takeToken() -> UInt64 {
        defer { nextToken += 1 }
        return nextToken
    }

    /// The earliest back-off still running on a lane that has something to send.
    private func nextRetry(after now: Instant) -> Instant? {
        lanes.values.compactMap { state -> Instant? in
            guard let at = state.retryAt, at > now, state.spooled > 0 || !state.waiting.isEmpty else { return nil }
            return at
        }.min()
    }
}
