import ProtocolCore

/// Groups whose application acknowledges by hand (reference §5.3: `partition.setAutoAck(false)`,
/// `ack()`, `rollback()`, `message.setRollbackOnly()`), driven as `ClientEngine+Handler` drives a
/// `run(manualAck:)` handler: the fetch run's `DeliveryTracker` in `.manualAck` mode, a
/// `HandlerBatch` per delivered batch, a `ConsumerMachine` with `manualAck`, and the machine's
/// `acknowledged` handed to the `GroupMember` whenever it moves.
///
/// Per handled message the simulated application acks it (and everything before it), rolls back
/// (to its last ack, or to this message), or decides nothing — a later message's ack or rollback
/// decides for it, or the member crashes first. After the faults stop it no longer rolls back and
/// acks the last message of every batch, so the groups converge.
///
/// Drawn from a stream of its own (`SimManualAck.stream`), after everything else, and only in
/// worlds with groups: every world without a manual group runs exactly as before.
public struct SimManualAck: Sendable, Equatable, CustomStringConvertible {
    /// Indices of the groups whose members handle in manual-ack mode.
    public var groups: [Int]
    /// The chance that the application acks a message it handled.
    public var ackProbability: Double
    /// The chance that it rolls back after handling a message.
    public var rollbackProbability: Double
    /// Of the rollbacks, the share that go back to this message (`setRollbackOnly`) rather than
    /// to the last ack.
    public var rollbackToMessageShare: Double
    /// The chance that a batch left with undecided messages is followed within its processing
    /// time by its member's crash (the safety phase only).
    public var crashUndecidedProbability: Double

    /// The constant keeps every pinned seed of SimTests (0, 2, 7, 14, 97, 136, 137, 185, 304, 316,
    /// 12,345, 2^40) free of manual groups, so their scenarios still run byte for byte as pinned.
    public static func stream(seed: UInt64) -> SimRandom { SimRandom(seed: seed ^ 0x1F10_AA81_9162_C287) }

    /// Nil for worlds without groups and for about half of those with; draws nothing from `rng`
    /// when there are no groups.
    static func draw(_ rng: inout SimRandom, groups: Int) -> SimManualAck? {
        guard groups > 0, rng.chance(0.5) else { return nil }
        var chosen = (0..<groups).filter { _ in rng.chance(0.7) }
        if chosen.isEmpty { chosen = [rng.int(in: 0..<groups)] }
        return SimManualAck(groups: chosen, ackProbability: 0.05 + rng.unit() * 0.6,
                            rollbackProbability: rng.chance(0.8) ? 0.01 + rng.unit() * 0.15 : 0,
                            rollbackToMessageShare: rng.unit(),
                            crashUndecidedProbability: rng.chance(0.6) ? 0.01 + rng.unit() * 0.1 : 0)
    }

    public var description: String {
        func percent(_ p: Double) -> String { "\(Int((p * 100).rounded()))%" }
        return "manual-ack: groups=\(groups.map { "g\($0)" }.joined(separator: ",")) ack=\(percent(ackProbability)) "
            + "rollback=\(percent(rollbackProbability)) (to-message \(percent(rollbackToMessageShare))) "
            + "crash-undecided=\(percent(crashUndecidedProbability))"
    }
}

/// A message a manual-ack handler got (what the checkers need of it).
struct SimManualEntry: Equatable {
    var key: UInt64
    var msgId: Int64
}

/// What the application of a manual-ack group decided with one tracker event, as the
/// application meant it (the checkers go by this, not by what the event says).
enum SimManualDecision: Equatable {
    /// It acknowledged every message before `upTo` (the end of the message it acked).
    case ack(upTo: Int64)
    /// It rolled back to its last ack (`from` nil) or to the message at `from`.
    case rollback(from: Int64?)
    /// The batch ended (handled, or failed at a message).
    case end
}
