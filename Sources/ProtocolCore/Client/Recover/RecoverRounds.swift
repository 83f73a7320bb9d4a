/// A message kept by a consumer's recover store (reference §5.2), as the rounds see it.
public protocol RecoverRoundItem: Sendable {
    var topic: String { get }
    var msgId: Int64 { get }
}

/// The redelivery rounds of one consumer's recover stores (reference §5.2, MetaQ issue #111) as a
/// pure machine. Every `intervalMs` a round lists what the stores keep; messages the group already
/// handled in this process (the dedup cache, §5.1) are removed without calling the handler; the
/// rest go to the handler, oldest first; the ones it handled are remembered and removed, a failing
/// one stays for the next round. Rounds never overlap: the next is scheduled when one ends.
///
/// The stores' file work and the handler belong to the driver: it answers `.list` with `.listed`
/// and `.deliver` with `.roundEnded`.
public struct RecoverRounds<Item: RecoverRoundItem>: Sendable {
    public struct Settings: Equatable, Sendable {
        /// The period of the rounds (`recoverIntervalMs`).
        public var intervalMs: Int64
        /// The delay of the first round after `.start` (the original waits at most 5 s).
        public var firstRoundAfterMs: Int64

        public init(intervalMs: Int64, firstRoundAfterMs: Int64? = nil) {
            precondition(intervalMs > 0, "intervalMs must be positive")
            self.intervalMs = intervalMs
            self.firstRoundAfterMs = firstRoundAfterMs ?? min(5_000, intervalMs)
        }
    }

    public enum Event: Sendable {
        /// The consumer runs: schedule the first round.
        case start
        /// Time passed (answers a `.scheduleTick`).
        case tick
        /// The stores' messages, oldest first (answers `.list`).
        case listed([Item])
        /// The handler is done with the round's `.deliver`: these it handled, the others it failed.
        case roundEnded(handled: [Item])
        /// The consumer stops: no more rounds; late answers are ignored.
        case stop
    }

    public enum Action: Sendable {
        /// Read what the stores keep now; answer `.listed`.
        case list
        /// Hand these to the handler, oldest first; answer `.roundEnded`.
        case deliver([Item])
        /// Delete these from their stores: handled now, or handled before (the dedup cache).
        case remove([Item])
        /// Deliver `.tick` at or after this instant.
        case scheduleTick(at: Instant)
    }

    /// Running totals, for logs, statistics and simulator checkers.
    public struct Counters: Equatable, Sendable {
        public var rounds = 0
        /// Messages the handler handled in a round.
        public var redelivered = 0
        /// Messages the handler failed in a round (kept for the next).
        public var failures = 0
        /// Messages removed unhandled because the group handled them meanwhile.
        public var handledBefore = 0
    }

    private enum State {
        case stopped
        case waiting(until: Instant)
        case listing
        case delivering(count: Int)
    }

    public let settings: Settings
    public private(set) var counters = Counters()
    private var state: State = .stopped

    public init(settings: Settings) {
        self.settings = settings
    }

    /// Whether a round is under way (listing or at the handler).
    public var inRound: Bool {
        switch state {
        case .listing, .delivering: true
        case .stopped, .waiting: false
        }
    }

    /// Feeds one event; `cache` is the group's dedup cache in this process (nil when off).
    public mutating func handle(_ event: Event, now: Instant, cache: inout MessageIdCache?) -> [Action] {
        switch (event, state) {
        case (.start, .stopped):
            return wait(now, settings.firstRoundAfterMs)
        case (.tick, .waiting(let until)):
            // A tick before the deadline (a driver's timer may round down) asks again.
            guard until <= now else { return [.scheduleTick(at: until)] }
            state = .listing
            counters.rounds += 1
            return [.list]
        case (.listed(let stored), .listing):
            return listed(stored, now, &cache)
        case (.roundEnded(let handled), .delivering(let count)):
            counters.redelivered += handled.count
            counters.failures += max(0, count - handled.count)
            DeliveryTracker.remember(handled.map(\.msgId), in: &cache)
            return (handled.isEmpty ? [] : [.remove(handled)]) + wait(now, settings.intervalMs)
        case (.stop, _):
            state = .stopped
            return []
        default:
            // A late or repeated answer, a tick outside a wait, or a second start: nothing to do.
            return []
        }
    }

    private mutating func listed(_ stored: [Item], _ now: Instant, _ cache: inout MessageIdCache?) -> [Action] {
        var pending: [Item] = []
        var seen: [Item] = []
        for item in stored {
            if cache?.contains(item.msgId) ?? false { seen.append(item) } else { pending.append(item) }
        }
        counters.handledBefore += seen.count
        var actions: [Action] = seen.isEmpty ? [] : [.remove(seen)]
        if pending.isEmpty {
            actions += wait(now, settings.intervalMs)
        } else {
            state = .delivering(count: pending.count)
            actions.append(.deliver(pending))
        }
        return actions
    }

    private mutating func wait(_ now: Instant, _ delayMs: Int64) -> [Action] {
        let at = now.adding(milliseconds: delayMs)
        state = .waiting(until: at)
        return [.scheduleTick(at: at)]
    }
}
