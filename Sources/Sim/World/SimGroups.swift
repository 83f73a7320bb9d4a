import ProtocolCore
import StoreCore

/// One partition of a topic as a group sees it: `topic` on `brokerId`-`partition` (§3.1).
struct GroupSlot: Hashable, Comparable, CustomStringConvertible {
    var topic: String
    var partition: BrokerPartition

    static func < (a: GroupSlot, b: GroupSlot) -> Bool {
        a.topic != b.topic ? a.topic < b.topic : a.partition < b.partition
    }

    var description: String { "\(topic)/\(partition)" }
}

/// A consumer group of the simulation (reference §3.4, §5.4) and what the checkers know of it:
/// the messages it was handed, where its fetchers got stuck on bit rot, and the offsets it stored.
final class SimGroup {
    let index: Int
    let name: String
    let topics: [String]
    let strategy: RebalanceStrategy
    var members: [SimGroupMember] = []
    /// Message keys delivered to any member of the group (the at-least-once checker).
    var delivered: Set<UInt64> = []
    /// Message keys the group's application handled successfully (fetched or redelivered).
    var handled: Set<UInt64> = []
    /// The lowest offset a fetcher of this group was served damaged bytes at (bit rot only).
    var damagedAt: [GroupSlot: Int64] = [:]
    /// Offset node path → the offset last seen stored there (offsets must not go backwards).
    var storedOffsets: [String: Int64] = [:]
    /// Offset node path → the lowest offset a broker's 301 moved a fetcher back to since the last
    /// store: the one excuse for a stored offset to go backwards.
    var backwardMoves: [String: Int64] = [:]
    /// Partitions a crashed member owned (→ that member), until it restarts: another member
    /// fetching one of them is a takeover.
    var orphaned: [GroupSlot: Int] = [:]
    /// The members' handlers acknowledge by hand (SimManualAck).
    let manual: Bool
    /// Manual ack: messages handed to a handler of the group and not acknowledged yet, by
    /// partition and offset (no commit may pass them).
    var unacked: [GroupSlot: [Int64: SimManualEntry]] = [:]
    /// Manual ack: messages rolled back and not fetched again yet (key → where).
    var owed: [UInt64: (slot: GroupSlot, offset: Int64, msgId: Int64)] = [:]

    init(index: Int, spec: SimOptions.Group, manual: Bool = false) {
        self.index = index
        name = "g\(index)"
        topics = spec.topics
        strategy = spec.strategy
        self.manual = manual
    }
}

/// One member process of a group: the production `GroupMember` over its own ZooKeeper session,
/// and one fetcher per partition it was told to fetch. A crash loses all of it (nothing is
/// committed, the session is abandoned); the restart is a new process with the same consumer id.
final class SimGroupMember {
    let group: Int
    let index: Int
    /// The consumer id string `<group>_<id>` (§3.1).
    let consumerId: String
    var machine: GroupMember
    var session: SimZKSession?
    /// Bumped at every start; events of an older process are ignored.
    var incarnation = 0
    var isUp = false
    /// Owned partition → the client id of its fetcher.
    var fetchers: [GroupSlot: Int] = [:]
    /// The member's own disk (its `~/.meta_recover`): survives its crashes, may lose power.
    let disk = SimDisk()
    /// Topic → the open recover store (none after a failed write, until reopened).
    var stores: [String: RecoverStore] = [:]
    /// Topic → what the checkers know the store holds.
    var shadows: [String: SimStoreShadow] = [:]
    /// When the current redelivery round began, and when the last finished one did.
    var roundStartNs: Int64 = -1
    var completedRoundStartNs: Int64 = -1
    /// The msgIds its stores held when this process started (kept by an earlier one).
    var keptAtStart: Set<Int64> = []
    /// The production redelivery rounds of its recover stores (replaced at every start).
    var rounds = RecoverRounds<RecoveredMessage>(settings: .init(intervalMs: 1_000))
    /// The process's dedup cache of the group (§5.1), shared by its fetchers and its rounds;
    /// empty at every start, as a new process's is.
    var dedup: MessageIdCache? = MessageIdCache()

    init(group: Int, index: Int, consumerId: String, machine: GroupMember) {
        self.group = group
        self.index = index
        self.consumerId = consumerId
        self.machine = machine
    }

    var name: String { consumerId }
}

/// The fetch loop of one owned partition: the production `ConsumerMachine` with
/// `awaitsProcessing`, so the next `get` waits for the simulated application (§5.1).
final class SimGroupFetcher {
    let client: Int
    let group: Int
    let member: Int
    /// The member process that started it.
    let incarnation: Int
    let slot: GroupSlot
    let broker: Int
    var machine: ConsumerMachine
    /// The production handler bookkeeping of this fetch run (dedup with the member's cache).
    var tracker: DeliveryTracker
    var connection: Int?
    var decoder = FrameDecoder()
    var lastDeliveredOffset: Int64 = -1
    var deliveredInRun: Set<UInt64> = []
    /// A delivery is being processed (`.processed` not yet sent).
    var processing = false
    /// A `.recover` not yet answered `.handedOff`.
    var handingOff = false
    var damagedAt: Int64?
    /// The handler acknowledges by hand: `recorded` is the machine's `acknowledged` last handed
    /// to the member, `runUnacked` what this run's handler got and did not acknowledge yet.
    var manual: Bool { tracker.mode == .manualAck }
    var recorded: StoredOffset
    var runUnacked: [Int64: SimManualEntry] = [:]
    /// Manual ack: offset → key of what this run counts as delivered (a rollback takes back
    /// what lies at or after where it went back to).
    var runDelivered: [Int64: UInt64] = [:]

    init(client: Int, group: Int, member: Int, incarnation: Int, slot: GroupSlot, broker: Int, machine: ConsumerMachine,
         tracker: DeliveryTracker) {
        recorded = machine.acknowledged
        self.client = client
        self.group = group
        self.member = member
        self.incarnation = incarnation
        self.slot = slot
        self.broker = broker
        self.machine = machine
        self.tracker = tracker
    }
}
