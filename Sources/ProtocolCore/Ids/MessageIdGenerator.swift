/// MetaQ message ids (reference §2.1): `((ms - epoch) << 22) | (workerId << 12) | sequence`, with
/// the broker id as worker id (10 bits) and a 12-bit per-millisecond sequence.
///
/// The original takes `ms` from `System.nanoTime()`, so its ids are negative and repeat after a
/// restart (§11.2). Here `ms` is wall-clock time given by the caller, and uniqueness across restarts
/// does not depend on the clock: the generator only issues timestamps up to a *reservation* that
/// the runtime persists before using them, and a restarted generator starts above the persisted
/// reservation. A clock that moves backwards (or a restart onto a slow clock) therefore never
/// repeats an id; timestamps just run ahead of the clock until it catches up.
public struct MessageIdGenerator: Sendable {
    /// MetaQ's id epoch, 2011-04-27T09:14:20.503Z.
    public static let epochMs: Int64 = 1_303_895_660_503
    public static let maxWorkerId = 1023
    static let maxSequence: Int64 = 4095

    /// One issued id and, when the reservation had to grow, the new reservation the caller must
    /// persist durably before the id is acknowledged to anyone.
    public struct Issue: Equatable, Sendable {
        public var id: Int64
        public var reservationToPersistMs: Int64?
    }

    public let workerId: Int
    /// How far ahead of the issued timestamps a reservation reaches; one persist per window.
    public let reservationWindowMs: Int64
    private var lastMs: Int64
    private var sequence: Int64
    public private(set) var reservedUntilMs: Int64
    /// The highest reservation known to be persisted (at start, the one read back).
    public private(set) var durableUntilMs: Int64

    /// - Parameters:
    ///   - workerId: the broker id, 0...1023.
    ///   - persistedReservationMs: the last reservation persisted by an earlier run (0 if none).
    public init(workerId: Int, persistedReservationMs: Int64, reservationWindowMs: Int64 = 60_000) {
        precondition((0...Self.maxWorkerId).contains(workerId), "worker id must be 0...1023")
        precondition(reservationWindowMs > 0)
        self.workerId = workerId
        self.reservationWindowMs = reservationWindowMs
        // Every id of an earlier run had a timestamp ≤ its reservation: start strictly above it.
        self.lastMs = persistedReservationMs
        self.sequence = Self.maxSequence
        self.reservedUntilMs = persistedReservationMs
        self.durableUntilMs = persistedReservationMs
    }

    /// The caller persisted reservation `ms` (an `Issue.reservationToPersistMs`).
    public mutating func reservationPersisted(_ ms: Int64) {
        durableUntilMs = max(durableUntilMs, ms)
    }

    /// Persisting reservation `ms` failed: the ids issued beyond the durable reservation must not
    /// be used (the caller refuses what it issued them for), and the next id asks again — a
    /// restarted generator starts above the durable reservation only, so using them could repeat
    /// an id after a restart.
    public mutating func reservationFailed(_ ms: Int64) {
        reservedUntilMs = durableUntilMs
    }

    /// The next id at wall-clock time `nowMs` (ms since the Unix epoch).
    public mutating func next(nowMs: Int64) -> Issue {
        var ms = max(nowMs, lastMs)
        if ms == lastMs {
            sequence += 1
            if sequence > Self.maxSequence {
                // The sequence is spent for this millisecond: borrow the next one instead of spinning.
                ms += 1
                sequence = 0
            }
        } else {
            sequence = 0
        }
        lastMs = ms
        var reservation: Int64?
        if ms > reservedUntilMs {
            reservedUntilMs = ms + reservationWindowMs
            reservation = reservedUntilMs
        }
        let id = ((ms - Self.epochMs) << 22) | (Int64(workerId) << 12) | sequence
        return Issue(id: id, reservationToPersistMs: reservation)
    }

    /// The parts of an id.
    public static func decompose(_ id: Int64) -> (timestampMs: Int64, workerId: Int, sequence: Int) {
        ((id >> 22) + epochMs, Int((id >> 12) & 0x3FF), Int(id & 0xFFF))
    }
}
