import ProtocolCore

/// Transactional producers in the world (reference §4): local transactions on one connection to
/// one broker, and XA transactions driven by a simulated transaction manager with a durable
/// decision log. Drawn from a stream of its own (`SimTransactions.stream`), so worlds without
/// them draw nothing new from the other streams and run byte for byte as before.
public struct SimTransactions: Sendable, Equatable, CustomStringConvertible {
    /// Producers running local transactions (BEGIN, puts, COMMIT_ONE_PHASE / ROLLBACK / abandon).
    public var localProducers: Int
    /// Transactions each local producer runs, one after the other.
    public var localTransactions: Int
    /// Transaction managers running XA transactions (branches on one or two brokers).
    public var managers: Int
    /// Global transactions each manager runs.
    public var globalTransactions: Int
    /// Messages per transaction (per branch) at most.
    public var maxMessages: Int
    /// Chance that a local transaction is rolled back / abandoned (connection closed, or the
    /// producer crashes) instead of committed; that a manager decides rollback after all prepared.
    public var rollbackChance: Double
    public var abandonChance: Double
    /// Chance that a BEGIN carries a timeout (1–2 s, §4.6).
    public var timeoutChance: Double
    /// Chance that a pause between two puts is long (300–1500 ms: timeouts fire).
    public var longPauseChance: Double
    /// Chance that a manager crashes between prepare and commit (before or after it logs its
    /// decision, or after finishing some branches).
    public var managerCrashChance: Double
    /// `checkpointInterval` of the brokers (ms), nil for the default (an hour: never in a run).
    public var checkpointIntervalMs: Int?

    /// The constant keeps every seed pinned in SimTests (0, 2, 7, 14, 97, 136, 137, 185, 304, 316,
    /// 12345, 2^40) free of transactions, so their scenarios still run byte for byte as pinned.
    public static func stream(seed: UInt64) -> SimRandom { SimRandom(seed: seed ^ 0x6D1A_3C20_C2E9_104D) }

    /// Nil for about two thirds of the worlds.
    static func draw(_ rng: inout SimRandom) -> SimTransactions? {
        guard rng.chance(0.35) else { return nil }
        var local = rng.int(in: 0...2)
        let managers = rng.chance(0.7) ? 1 : 0
        if local == 0 && managers == 0 { local = 1 }
        return SimTransactions(localProducers: local, localTransactions: rng.int(in: 3...14), managers: managers,
                               globalTransactions: rng.int(in: 3...10), maxMessages: rng.int(in: 1...5),
                               rollbackChance: 0.1 + rng.unit() * 0.25, abandonChance: rng.unit() * 0.2,
                               timeoutChance: rng.chance(0.5) ? rng.unit() * 0.5 : 0,
                               longPauseChance: rng.chance(0.4) ? rng.unit() * 0.15 : 0,
                               managerCrashChance: managers > 0 ? 0.15 + rng.unit() * 0.5 : 0,
                               checkpointIntervalMs: rng.chance(0.5) ? rng.int(in: 100...2000) : nil)
    }

    public var description: String {
        func pct(_ x: Double) -> String { "\(Int((x * 100).rounded()))%" }
        return "transactions: local=\(localProducers)x\(localTransactions) xa=\(managers)x\(globalTransactions) "
            + "messages<=\(maxMessages) rollback=\(pct(rollbackChance)) abandon=\(pct(abandonChance)) "
            + "timeouts=\(pct(timeoutChance)) long-pauses=\(pct(longPauseChance)) tm-crash=\(pct(managerCrashChance))"
            + (checkpointIntervalMs.map { " checkpoint=\($0)ms" } ?? "")
    }
}

/// One transaction (local) or XA branch, as the world saw it: what was put, where, and what its
/// client learnt of its end. The checkers compare it with what the brokers hold.
final class SimTxRecord {
    enum Kind { case local, branch(global: Int) }
    /// What the client knows of the end.
    enum Outcome: Equatable {
        /// Running (or, for a branch, waiting for its manager).
        case open
        /// COMMIT answered 200.
        case committed
        /// Never committed: ROLLBACK answered, abandoned before COMMIT, refused on the way.
        case notCommitted(String)
        /// COMMIT sent and its answer lost (or a heuristic hazard): all of it or nothing.
        case unknown(String)
    }
    struct Put {
        var key: UInt64
        var partition: Int32
        var topic: String
        var msgId: Int64?
    }
    /// How a local transaction is meant to end.
    enum Plan { case commit, rollback, abandon }

    let kind: Kind
    let key: String
    let broker: Int
    let owner: String
    var puts: [Put] = []
    var outcome = Outcome.open
    /// Puts it is meant to make, and how it is meant to end (local transactions).
    var planned = 0
    var plan = Plan.commit
    /// A COMMIT was sent: from here on its messages may become readable.
    var commitSent = false
    // XA branches:
    /// PREPARE answered `0` (XA_OK).
    var prepared = false
    /// A PREPARE went out whose answer was lost (it may have prepared).
    var prepareUnknown = false
    /// COMMIT_TWO_PHASE / ROLLBACK answered 200, counted (must end at exactly one for a prepared branch).
    var finishes = 0
    /// The last finish was sent and its answer lost or hazardous: a RECOVER not listing the
    /// branch means it took effect.
    var finishUnresolved = false
    /// Finished as far as the manager can tell (answered 200, or no longer listed after an
    /// unresolved finish).
    var finished = false

    init(kind: Kind, key: String, broker: Int, owner: String) {
        self.kind = kind
        self.key = key
        self.broker = broker
        self.owner = owner
    }
}

/// One connection-holding client of a transactional producer or manager: one request in flight
/// at a time, each with a timeout; a lost answer closes the connection.
final class SimTxLink {
    let client: Int
    let broker: Int
    var connection: Int?
    var connected = false
    var decoder = FrameDecoder()
    /// The frame to send once connected.
    var pendingFrame: Frame?
    /// The request in flight: its opaque and what to do with its answer (nil: lost).
    var waiting: (opaque: Int32, then: (ResultResponse?) -> Void)?
    var nextOpaque: Int32 = 1

    init(client: Int, broker: Int) {
        self.client = client
        self.broker = broker
    }
}

/// A producer running local transactions on one broker, one after the other.
final class SimTxLocalProducer {
    let index: Int
    let keyPrefix: Int
    let total: Int
    let link: SimTxLink
    var started = 0
    var sequence = 0
    var current: SimTxRecord?
    /// Connections opened so far: the session id names the connection (a local transaction
    /// belongs to it).
    var session = 0

    init(index: Int, keyPrefix: Int, total: Int, link: SimTxLink) {
        self.index = index
        self.keyPrefix = keyPrefix
        self.total = total
        self.link = link
    }

    var name: String { "txp\(index)" }
    var isDone: Bool { started == total && current == nil }
}

/// A transaction manager: XA branches on the brokers, its decisions in a log that survives its
/// crashes; after a crash (and whenever a finish went unanswered) it asks every broker RECOVER
/// and finishes what is listed as its log says (no decision: rollback).
final class SimTxManager {
    struct Global {
        var gtrid: String
        var branches: [SimTxRecord]
    }

    let index: Int
    let keyPrefix: Int
    let total: Int
    var links: [SimTxLink]
    /// The durable decision log: global transaction id → commit (true) or rollback.
    var log: [String: Bool] = [:]
    var globals: [Global] = []
    var started = 0
    var sequence = 0
    var up = true
    /// Bumped at every crash: callbacks of an older process are ignored.
    var incarnation = 0
    /// Busy with a global transaction or a recovery round.
    var busy = false
    /// A recovery round is owed (after a restart or an unresolved finish).
    var recoveryOwed = false
    /// Liveness: when the last round that found nothing to finish began, with the broker
    /// incarnations that answered it.
    var cleanRoundAtNs: Int64?
    var cleanRoundIncarnations: [Int] = []

    init(index: Int, keyPrefix: Int, total: Int, links: [SimTxLink]) {
        self.index = index
        self.keyPrefix = keyPrefix
        self.total = total
        self.links = links
    }

    var name: String { "tm\(index)" }
    /// The unique qualifier of its XIDs (RECOVER lists by it).
    var qualifier: String { "XAMessageProducer-sim\(index)" }
}
