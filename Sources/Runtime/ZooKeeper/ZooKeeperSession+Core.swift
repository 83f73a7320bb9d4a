import ProtocolCore

/// A `zhandle_t *`. The C library lets any thread call the a-calls on a handle; only
/// `zookeeper_close` must not overlap them, which `ZooKeeperSession` ensures (see its `core`).
struct ZHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// Where a reply goes: the sink (submit) or a waiting caller (perform).
enum ReplyDestination: Sendable {
    case sink(tag: UInt64)
    case caller(CheckedContinuation<CoordinationReply, Never>)
}

/// The context of one handle's session watcher. The handle's default watcher also receives
/// every watch set with `watch: true`, so this one context serves both and lives exactly as
/// long as the handle: no per-watch contexts to leak (toolchain.md §1 "Context pointers").
final class HandleContext: Sendable {
    let session: ZooKeeperSession
    let generation: UInt64

    init(session: ZooKeeperSession, generation: UInt64) {
        self.session = session
        self.generation = generation
    }
}

/// The context of one a-call. It is owned by `Core.inFlight` and handed to C unretained: the
/// completion removes it, and what the C library never completes (a handle closed with
/// requests queued) is dropped after `zookeeper_close` returns, when no callback can run.
final class RequestContext: Sendable {
    let session: ZooKeeperSession
    let sequence: UInt64
    let generation: UInt64

    init(session: ZooKeeperSession, sequence: UInt64, generation: UInt64) {
        self.session = session
        self.sequence = sequence
        self.generation = generation
    }
}

/// A handle in use, with the context its watcher was given.
struct LiveHandle: Sendable {
    let handle: ZHandle
    let context: HandleContext
}

/// What to do once the lock is released: the sink is never called and a continuation never
/// resumed while `core` is held.
struct Effects {
    var scheduleDelivery = false
    var replies: [(CheckedContinuation<CoordinationReply, Never>, CoordinationReply)] = []
    var connectWaiters: [(CheckedContinuation<Bool, Never>, Bool)] = []

    mutating func merge(_ other: Effects) {
        scheduleDelivery = scheduleDelivery || other.scheduleDelivery
        replies += other.replies
        connectWaiters += other.connectWaiters
    }
}

/// An entry of the outbox: an event for the sink, or `waitUntilConnected` callers to answer
/// once the events before them were delivered.
enum Outgoing: Sendable {
    case event(CoordinationEvent)
    case connectWaiters([CheckedContinuation<Bool, Never>])
}

/// The mutable state of a `ZooKeeperSession`, guarded by its `core` lock.
struct Core: Sendable {
    enum Phase: Sendable {
        /// Between an expiry and the next handle, and while `zookeeper_init` runs.
        case noHandle
        case live(LiveHandle)
        case closed
    }

    var phase: Phase = .noHandle
    /// The generation of the newest handle; callbacks of older handles are ignored.
    var generation: UInt64 = 0
    /// The last state sent to the sink (nil before the first connection).
    var reported: SessionState?
    /// How many expiries were seen (for `expireForTesting`).
    var expiries = 0
    var negotiatedTimeoutMs: Int?
    var sessionId: Int64 = 0
    var order = ReplyOrder<ReplyDestination>()
    var inFlight: [UInt64: RequestContext] = [:]
    /// What the delivery queue hands out next, in the order it was produced.
    var outbox: [Outgoing] = []
    var deliveryScheduled = false
    var connectWaiters: [UInt64: CheckedContinuation<Bool, Never>] = [:]
    var nextWaiter: UInt64 = 0

    var isClosed: Bool {
        if case .closed = phase { return true }
        return false
    }

    var liveHandle: LiveHandle? {
        if case .live(let live) = phase { return live }
        return nil
    }

    /// Queues `event` for the sink (dropped after close).
    mutating func emit(_ event: CoordinationEvent) -> Effects {
        enqueue(.event(event))
    }

    mutating func enqueue(_ item: Outgoing) -> Effects {
        guard !isClosed else { return Effects() }
        outbox.append(item)
        guard !deliveryScheduled else { return Effects() }
        deliveryScheduled = true
        return Effects(scheduleDelivery: true)
    }

    /// Records the reply of request `sequence`; replies now due (in submission order) go to
    /// the outbox or to their callers.
    mutating func resolve(_ sequence: UInt64, _ reply: CoordinationReply) -> Effects {
        var effects = Effects()
        for (destination, due) in order.resolve(sequence, reply) {
            switch destination {
            case .sink(let tag): effects.merge(emit(.reply(tag: tag, due)))
            case .caller(let continuation): effects.replies.append((continuation, due))
            }
        }
        return effects
    }

    /// Reports a session state to the sink if it differs from the last one reported.
    mutating func report(_ state: SessionState) -> Effects? {
        guard reported != state else { return nil }
        reported = state
        var effects = emit(.session(state))
        if state == .connected, !connectWaiters.isEmpty {
            // Through the outbox: a waiter returns after the sink got `.connected`.
            effects.merge(enqueue(.connectWaiters(Array(connectWaiters.values))))
            connectWaiters = [:]
        }
        return effects
    }

    /// Fails the requests a closed handle of `generation` never completed, oldest first.
    mutating func failLeftovers(of generation: UInt64) -> Effects {
        let leftovers = inFlight.values.filter { $0.generation == generation }.map(\.sequence).sorted()
        var effects = Effects()
        for sequence in leftovers {
            inFlight[sequence] = nil
            effects.merge(resolve(sequence, .failed(.sessionExpired)))
        }
        return effects
    }
}
