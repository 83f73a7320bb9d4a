/// The handler bookkeeping of one fetch run of one partition (reference §5.1, §5.3) as a pure
/// value: which fetched messages the handler gets (the group's dedup cache skips those it handled
/// before), which handled ids enter that cache and when (at once in automatic mode; in manual mode
/// only with the ack that covers them), and what the partition's `ConsumerMachine` hears when a
/// batch ends, is acknowledged or is rolled back.
///
/// The group's `MessageIdCache` is shared by every fetch run (and the recover rounds) of the
/// group in one process, so it is an input (`inout`, nil when dedup is off) rather than state.
/// A new fetch run (rebalance, restart) starts a new tracker: ids handled but never acknowledged
/// in an old run do not enter the cache later.
public struct DeliveryTracker: Sendable {
    public enum Mode: Equatable, Sendable {
        /// A message counts as handled when the handler returns (`run`).
        case automatic
        /// A message counts as handled only when the application acknowledges it (`run(manualAck:)`).
        case manualAck
    }

    /// How a batch (or part of one) ended, reported by the driver once the handler is done.
    public enum Event: Equatable, Sendable {
        /// Manual ack: every message before `upTo` is acknowledged; `ids` were handled since the
        /// previous ack of this batch.
        case acknowledged(upTo: Int64, ids: [Int64])
        /// Handled up to `upTo` (the batch's end, or a failed message to fetch again); `ids` were
        /// handled (and, in manual mode, not acknowledged yet).
        case processed(upTo: Int64, ids: [Int64])
        /// The application rolled back (§5.3) to its last ack (`to` nil) or to the message at
        /// `to`; `ids` were handled before that message and stay unacknowledged.
        case rolledBack(to: Int64?, ids: [Int64])
    }

    /// A fetched message the handler gets, with the offset where the next record starts (what an
    /// ack of it commits).
    public struct Delivery: Equatable, Sendable {
        public var message: Message
        public var end: Int64
    }

    public let mode: Mode
    /// The most unacknowledged ids kept (the dedup cache's capacity; 0 without dedup): older
    /// ones would be evicted from the cache by the next ack anyway.
    public let unackedLimit: Int
    /// Manual ack: ids handled in earlier batches but not acknowledged yet, oldest first.
    public private(set) var unacknowledged: [Int64] = []
    /// Fetched messages skipped because the group handled them before.
    public private(set) var skipped = 0

    public init(mode: Mode, unackedLimit: Int) {
        precondition(unackedLimit >= 0, "unackedLimit must not be negative")
        self.mode = mode
        self.unackedLimit = unackedLimit
    }

    /// The messages of a delivery (`ConsumerMachine.Action.deliver`) the handler must get, in
    /// order: those whose id is not in `cache`.
    public mutating func admit(_ messages: [Message], nextOffset: Int64, cache: inout MessageIdCache?) -> [Delivery] {
        var fresh: [Delivery] = []
        fresh.reserveCapacity(messages.count)
        for (i, message) in messages.enumerated() where !(cache?.contains(message.id) ?? false) {
            fresh.append(Delivery(message: message, end: i + 1 < messages.count ? messages[i + 1].offset : nextOffset))
        }
        skipped += messages.count - fresh.count
        return fresh
    }

    /// Records how the handler did; returns the event for the partition's `ConsumerMachine`.
    public mutating func handle(_ event: Event, cache: inout MessageIdCache?) -> ConsumerMachine.Event {
        switch event {
        case .acknowledged(let upTo, let ids):
            Self.remember(unacknowledged + ids, in: &cache)
            unacknowledged = []
            return .ack(upTo: upTo)
        case .processed(let upTo, let ids):
            switch mode {
            case .automatic: Self.remember(ids, in: &cache)
            case .manualAck: keepUnacknowledged(ids)
            }
            return .processed(nextOffset: upTo)
        case .rolledBack(let to, let ids):
            // Back to the last ack: everything since it comes again and is handled anew.
            if to == nil { unacknowledged = [] } else { keepUnacknowledged(ids) }
            return .rollback(to: to)
        }
    }

    private mutating func keepUnacknowledged(_ ids: [Int64]) {
        unacknowledged.append(contentsOf: ids)
        let excess = unacknowledged.count - unackedLimit
        if excess > 0 { unacknowledged.removeFirst(excess) }
    }

    /// Puts handled ids in the group's cache (nothing without dedup).
    public static func remember(_ ids: [Int64], in cache: inout MessageIdCache?) {
        guard cache != nil else { return }
        for id in ids { cache!.insert(id) }
    }
}
