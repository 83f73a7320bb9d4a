/// Who of the brokers sharing one broker id may accept puts: a pure machine per broker that
/// elects the master of a broker id through ZooKeeper and fences a deposed one (issue 17,
/// docs/REPLICATION.md, "Failover"). It speaks ZooKeeper as values like `BrokerRegistration`: it
/// returns `CoordinationRequest`s with tags and is fed the replies, watches and session changes.
///
/// Nodes (paths in `Settings`):
/// - the term node `<swiftRoot>/brokers/<id>/term` — the authority: a `Record` holding the term,
///   its **owner** (the broker whose compare-and-set wrote it) and the in-sync set (the slaves
///   that may take over). Changed only by compare-and-set from the version read: a claim writes
///   the next term, the owner republishes its in-sync set in its term. Both in one node, so a
///   claim based on a set and a leader's change of that set cannot both succeed (the leader
///   cannot drop a slave, answer puts without it, and still lose the term to it);
/// - the original's master node `ids/<id>/master` (§3.1) — the advertisement: ephemeral, data
///   the leader's URI, what original clients follow.
///
/// Every machine reads both nodes with a watch and reads again whenever a watch fires; its
/// decisions are made only on fresh reads (`decide`). Rules:
/// 1. **Only the owner of a term accepts puts in it**, and only after its URI is in the master
///    node. Hence no two brokers accept puts for one broker id in the same term.
/// 2. A configured master at start claims a new term unless the master node holds another URI
///    (a slave took over while it was down): then it follows that broker (rejoin). With
///    `cleanTakeoverOnly` it claims only when it may take over (rule 10); else it waits.
/// 3. A follower claims when the master node is absent and it may take over (rule 10).
/// 4. Claiming: CAS the record read to term + 1, owner ourselves, the in-sync set carried over
///    (without ourselves). `badVersion` means another broker won: go back (a follower to
///    following, a configured master to its start decision) and claim again no sooner than
///    `retryDelayMs` later, with fresh reads, only if rule 2 or 3 still says so. A CAS whose
///    outcome is unknown (connection loss) is treated as lost; if it did apply, the record names
///    us its owner and rule 10 lets us claim the next term.
/// 5. Holding term T: master node absent → create it with our URI; holding our URI → accept
///    (created by this session) or delete it first (left by an earlier session); holding another
///    URI → wait for it to go (the older leader steps down by rule 6, or its session ends); a
///    term above T → we lost: follow.
/// 6. A leader that reads a newer term stops accepting, deletes its master node and follows.
/// 7. A leader whose connection drops stops accepting at once (the session may expire before
///    it hears so) and holds its term; once connected again it re-reads everything: term still
///    its own → rule 5 (re-creates the node if the session expired, and accepts again); newer →
///    stays stopped and follows.
/// 8. Promote runs rule 4 and 5 even while the master node holds another URI; the old leader
///    steps down by rule 6 when its term watch fires.
/// 9. A follower deletes a master node holding its own URI (left from its own earlier leadership),
///    so the term owner can advertise.
/// 10. **Who may take over** (`mayTakeOver`): the owner of the current term whose logs are intact
///    (nobody wrote a term since it was eligible to claim this one, so no put was answered
///    without it, and a deposed leader of an earlier term waited for it); a slave of
///    the current in-sync set whose logs are intact; a configured master at start while no
///    in-sync set was ever published (`.never`: nothing was ever answered as replicated). Logs are intact
///    when the broker's replication-term file exists (`logsConsistent`): a destroyed disk has
///    none. The in-sync set a synchronous leader publishes holds every slave with every answered
///    put: the node's high watermark waits for the published slaves, and with
///    `cleanTakeoverOnly` a set smaller than `minInSyncSlaves` is merged with the one before.
public struct BrokerElection: Sendable {
    public let settings: Settings
    var mode: Mode = .idle
    var connected = false
    var term: Observed<TermValue> = .unknown
    var master: Observed<String> = .unknown
    /// Requests in flight (at most one read per watched node plus one write), oldest first.
    var inFlight: [(tag: UInt64, purpose: Purpose)] = []
    var nextTag: UInt64 = 1
    /// Whether a master node with our URI may belong to this session (we asked to create it and
    /// have not deleted it since the session began).
    var mayOwnMaster = false
    /// An operator promote not yet acted on, and whether it ignores the in-sync set.
    var promote: (force: Bool, pending: Bool) = (false, false)
    /// True while claiming by promote (the live master's node does not stop the claim).
    var promoting = false
    /// True while the claim is a configured master's at start: a lost race returns to `.starting`.
    var claimAtStart = false
    /// The in-sync set the node last reported in this term while leading (nil: none yet). The
    /// leader writes `publishable(reported)` whenever the record holds another set.
    var reported: [Int]?
    /// The term the broker's logs are consistent with (nil: none — a new or destroyed disk).
    public private(set) var logsTerm: Int64?
    /// The record and logs for which "may not take over" was last said (said once per change).
    var refusalNoticed: (record: Record?, logs: Int64?)?
    /// Nothing is sent before this (after a failed request).
    var blockedUntil: Instant?
    /// A follower does not claim before this (after losing a race).
    var claimNotBefore: Instant?
    var scheduledTick: Instant?
    /// The master the last `follow` named.
    public private(set) var followedMaster: String?
    /// The term the broker accepts puts in, nil when it does not.
    public private(set) var acceptingTerm: Int64?
    /// The highest term this machine has read or written.
    public private(set) var highestTerm: Int64 = 0

    public init(settings: Settings, logsTerm: Int64? = nil) {
        self.settings = settings
        self.logsTerm = logsTerm
    }

    /// Whether the last record read names this broker's follower id in its in-sync set.
    public var isInSync: Bool {
        guard let id = settings.followerId, case .value(let value) = term else { return false }
        return value.record.ids.contains(id)
    }

    /// Rule 10 on the last record read (nil: no term node yet).
    func mayTakeOver(_ current: Record?) -> Bool {
        let atStart = mode == .starting
        guard let current, current.term >= 1 else { return settings.role == .master && atStart }
        let intact = logsTerm != nil || settings.canaryIgnoreLostLogs
        if current.owner == settings.uri, intact { return true }
        if let id = settings.followerId, current.ids.contains(id), intact { return true }
        // Nothing was ever answered as replicated: the configured master starts whatever its
        // logs (its disk may have been replaced); while following it waits like any follower.
        return current.inSync == .never && settings.role == .master && atStart
    }

    /// The in-sync set to publish for the node's `ids`, given the record's present one: with
    /// `cleanTakeoverOnly`, never fewer than `minInSyncSlaves` (the slaves published before stay
    /// while too few are in sync — they hold every answered put); `.never` stays until a slave
    /// is first in sync.
    func publishable(_ ids: [Int], over present: Record.InSync) -> Record.InSync {
        if ids.isEmpty, present == .never { return .never }
        if settings.cleanTakeoverOnly, ids.count < settings.minInSyncSlaves, case .ids(let before) = present {
            return .ids(Self.normalized(ids + before))
        }
        return .ids(ids)
    }

    /// The term this broker owns (leading or about to), nil when it owns none.
    public var ownedTerm: Int64? {
        switch mode {
        case .holding(let t), .leading(let t): return t
        default: return nil
        }
    }

    /// Broken rules of the machine's own state, empty when sound.
    public func checkInvariants() -> [String] {
        var problems: [String] = []
        if case .leading(let t) = mode {
            if acceptingTerm != t { problems.append("leading \(t) but accepting \(String(describing: acceptingTerm))") }
            if followedMaster != nil { problems.append("leading while following \(followedMaster!)") }
        } else if let accepting = acceptingTerm {
            problems.append("accepting \(accepting) while \(mode)")
        }
        if let owned = ownedTerm, owned < 1 || owned > highestTerm {
            problems.append("owned term \(owned) outside 1...\(highestTerm)")
        }
        if inFlight.count > Watched.allCases.count + 1 { problems.append("\(inFlight.count) requests in flight") }
        if inFlight.filter({ if case .write = $0.purpose { true } else { false } }).count > 1 {
            problems.append("more than one write in flight")
        }
        for watched in Watched.allCases where inFlight.filter({ $0.purpose == .read(watched, exists: false) || $0.purpose == .read(watched, exists: true) }).count > 1 {
            problems.append("more than one read of \(watched) in flight")
        }
        return problems
    }
}

extension BrokerElection {
    /// Feeds one event; returns what the driver must do, in order.
    public mutating func handle(_ event: Event, now: Instant) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .start:
            guard mode == .idle else { break }
            mode = settings.role == .master ? .starting : .following
            connected = true
        case .coordination(.session(let state)):
            session(state, &actions)
        case .coordination(.reply(let tag, let reply)):
            guard let index = inFlight.firstIndex(where: { $0.tag == tag }) else { break }
            let purpose = inFlight.remove(at: index).purpose
            switch purpose {
            case .read(let watched, let exists): read(watched, exists: exists, reply, now, &actions)
            case .write(let write): wrote(write, reply, now, &actions)
            }
        case .coordination(.watch(let event)):
            for watched in Watched.allCases where path(watched) == event.path { forget(watched) }
        case .publishInSync(let ids):
            if case .leading = mode { reported = Self.normalized(ids) }
        case .logsConsistent(let logs):
            logsTerm = logs
        case .promote(let force):
            promote = (force, true)
        case .tick:
            if let until = blockedUntil, until <= now { blockedUntil = nil }
            if let until = claimNotBefore, until <= now { claimNotBefore = nil }
        }
        if mode != .idle { decide(now, &actions) }
        let wake = [blockedUntil, claimNotBefore].compactMap { $0 }.min()
        if let wake, wake != scheduledTick { actions.append(.scheduleTick(at: wake)) }
        scheduledTick = wake
        return actions
    }

    func path(_ watched: Watched) -> String {
        switch watched {
        case .term: return settings.termPath
        case .master: return settings.masterPath
        }
    }

    /// Marks `watched` as changed: its read in flight is dropped (its reply is ignored) and it is
    /// read again.
    mutating func forget(_ watched: Watched) {
        inFlight.removeAll { $0.purpose == .read(watched, exists: false) || $0.purpose == .read(watched, exists: true) }
        switch watched {
        case .term: term = .unknown
        case .master: master = .unknown
        }
    }

    // MARK: session (rule 7)

    mutating func session(_ state: SessionState, _ actions: inout [Action]) {
        guard mode != .idle else { return }
        switch state {
        case .connecting:
            connected = false
            stopLeading(.disconnected, &actions)
        case .expired:
            connected = false
            stopLeading(.sessionExpired, &actions)
            // Nothing of the old session survives: no replies, no watches, no ephemeral node.
            inFlight = []
            mayOwnMaster = false
            if mode == .claiming { mode = claimAtStart ? .starting : .following }
            for watched in Watched.allCases { forget(watched) }
        case .connected:
            connected = true
            // Same session or a new one: read everything again before deciding anything.
            inFlight = []
            for watched in Watched.allCases { forget(watched) }
        }
    }

    /// Leading → holding the same term, without accepting.
    mutating func stopLeading(_ reason: StopReason, _ actions: inout [Action]) {
        guard case .leading(let t) = mode else { return }
        mode = .holding(term: t)
        acceptingTerm = nil
        actions.append(.stopAcceptingPuts(reason))
        actions.append(.notice("broker \(settings.brokerId): stopped accepting puts of term \(t): \(reason)"))
    }

    // MARK: replies

    mutating func read(_ watched: Watched, exists: Bool, _ reply: CoordinationReply, _ now: Instant,
                       _ actions: inout [Action]) {
        switch reply {
        case .failed(.noNode) where !exists:
            // Missing: an `exists` watches for its creation.
            send(.read(watched, exists: true), &actions)
        case .exists(true):
            // Created meanwhile: still unknown, so `decide` reads its data.
            break
        case .exists(false):
            switch watched {
            case .term: term = .absent
            case .master: master = .absent
            }
        case .versionedData(let data, let version) where watched == .term:
            guard let record = Record.parse(data) else {
                actions.append(.notice("broker \(settings.brokerId): term node holds \(Self.text(data)), not a term"))
                block(now)
                return
            }
            let value = record.term
            term = .value(TermValue(record: record, version: version))
            if value < highestTerm {
                actions.append(.notice("broker \(settings.brokerId): term went back from \(highestTerm) to \(value): was the term node deleted?"))
            }
            highestTerm = max(highestTerm, value)
        case .data(let data) where watched == .master:
            master = .value(Self.text(data))
        case .failed(.sessionExpired):
            session(.expired, &actions)
        default:
            block(now)
        }
    }

    mutating func wrote(_ write: Write, _ reply: CoordinationReply, _ now: Instant, _ actions: inout [Action]) {
        switch (write, reply) {
        case (_, .failed(.sessionExpired)):
            session(.expired, &actions)
        case (.ensurePath(let paths), .created), (.ensurePath(let paths), .failed(.nodeExists)):
            if paths.count > 1 { send(.write(.ensurePath(Array(paths.dropFirst()))), &actions) }
        case (.createTerm, .failed(.noNode)):
            send(.write(.ensurePath(MetaZooKeeperLayout.ancestors(of: settings.termPath))), &actions)
        case (.createMaster, .failed(.noNode)):
            send(.write(.ensurePath(MetaZooKeeperLayout.ancestors(of: settings.masterPath))), &actions)
        case (.createTerm, _):
            forget(.term)
            if case .failed(let error) = reply, error != .nodeExists { block(now) }
        case (.cas(let record, let version), .dataSet):
            let t = record.term
            term = .value(TermValue(record: record, version: version &+ 1))
            highestTerm = max(highestTerm, t)
            if mode == .claiming {
                // Rule 1: this broker alone wrote `t`.
                mode = .holding(term: t)
                actions.append(.notice("broker \(settings.brokerId): owns term \(t)"))
            } else if case .leading(let led) = mode, led == t {
                // The owner's publish: these slaves may take over from now on.
                actions.append(.notice("broker \(settings.brokerId): in-sync set of term \(t) is now "
                    + (record.inSync == .never ? "none yet" : "[\(record.ids.map(String.init).joined(separator: ","))]")))
                actions.append(.inSyncPublished(record.ids))
            }
        case (.cas(let record, _), _):
            // Lost (bad version), or unknown (connection loss): not ours either way (rule 4). A
            // leader's publish that lost re-reads: a newer term deposes it (rule 6), else it
            // writes again on the fresh version.
            let t = record.term
            forget(.term)
            if mode == .claiming {
                mode = claimAtStart ? .starting : .following
                promoting = false
                claimNotBefore = now.adding(milliseconds: settings.retryDelayMs)
                actions.append(.notice("broker \(settings.brokerId): did not get term \(t): \(reply)"))
            }
            if reply != .failed(.badVersion) { block(now) }
        case (.createMaster, .created):
            mayOwnMaster = true
            master = .value(settings.uri)
        case (.createMaster, .failed(.nodeExists)):
            // Not made by this request: a node with our URI is an earlier session's.
            mayOwnMaster = false
            forget(.master)
        case (.createMaster, _):
            // Unknown outcome: `mayOwnMaster` stays set (it may be ours).
            block(now)
            forget(.master)
        case (.deleteMaster, .deleted), (.deleteMaster, .failed(.noNode)):
            mayOwnMaster = false
            forget(.master)
        default:
            block(now)
        }
    }

    mutating func block(_ now: Instant) {
        blockedUntil = now.adding(milliseconds: settings.retryDelayMs)
    }

    // MARK: decisions

    /// Issues the reads that are due, then applies rules 2–9 to the fresh reads until nothing changes.
    mutating func decide(_ now: Instant, _ actions: inout [Action]) {
        guard connected, blockedUntil == nil else { return }
        for watched in Watched.allCases where isUnknown(watched) && !isReading(watched) {
            send(.read(watched, exists: false), &actions)
        }
        guard term != .unknown, master != .unknown else { return }
        var current: TermValue?
        if case .value(let value) = term { current = value }
        var steps = 0
        while steps < 8, step(current, now, &actions) { steps += 1 }
    }

    var isWriting: Bool { inFlight.contains { if case .write = $0.purpose { true } else { false } } }

    func isUnknown(_ watched: Watched) -> Bool {
        switch watched {
        case .term: return term == .unknown
        case .master: return master == .unknown
        }
    }

    func isReading(_ watched: Watched) -> Bool {
        inFlight.contains { $0.purpose == .read(watched, exists: false) || $0.purpose == .read(watched, exists: true) }
    }

    /// One rule applied; true when the mode changed (so the rules run again).
    mutating func step(_ current: TermValue?, _ now: Instant, _ actions: inout [Action]) -> Bool {
        let id = settings.brokerId
        let other: String? = { if case .value(let uri) = master, uri != settings.uri { uri } else { nil } }()
        let ownNode = master == .value(settings.uri)
        switch mode {
        case .idle:
            return false
        case .starting:
            if takePromote(current?.record, &actions) {
                claimAtStart = true
                return true
            }
            // Rule 2.
            if let other {
                actions.append(.notice("broker \(id): \(other) holds the master node: rejoining as its slave"))
                mode = .following
                claimAtStart = false
                return true
            }
            // After a lost race, claim again once the delay has passed (rule 4).
            guard claimNotBefore == nil else { return false }
            if settings.cleanTakeoverOnly, !mayTakeOver(current?.record) {
                noticeRefusal(current?.record, &actions)
                return false
            }
            mode = .claiming
            claimAtStart = true
            return true
        case .following:
            if takePromote(current?.record, &actions) {
                followedMaster = nil
                return true
            }
            if let other, followedMaster != other {
                followedMaster = other
                actions.append(.follow(masterURI: other))
            }
            if ownNode, !isWriting {
                // Rule 9.
                send(.write(.deleteMaster), &actions)
                return false
            }
            // Rule 3.
            if master == .absent, claimNotBefore == nil {
                guard mayTakeOver(current?.record) else {
                    noticeRefusal(current?.record, &actions)
                    return false
                }
                actions.append(.notice("broker \(id): master node gone and it may take over: claiming"))
                mode = .claiming
                followedMaster = nil
                return true
            }
            return false
        case .claiming:
            if other != nil, !promoting {
                mode = .following
                return true
            }
            guard !isWriting else { return false }
            if settings.canaryTakeOverWithoutNewTerm, !claimAtStart, !promoting, let current, current.term >= 1 {
                mode = .holding(term: current.term)
                actions.append(.notice("broker \(id): (canary) takes term \(current.term) over without raising it"))
                return true
            }
            if let current {
                // Rule 4: the slaves that held every answered put stay eligible until the new
                // leader publishes its own set.
                var carried = current.record.inSync
                if case .ids(let ids) = carried { carried = .ids(ids.filter { $0 != settings.followerId }) }
                let record = Record(term: current.term + 1, owner: settings.uri, inSync: carried)
                send(.write(.cas(record, version: current.version)), &actions)
            } else {
                // The first claim of this broker id: the term node starts at 0.
                send(.write(.createTerm), &actions)
            }
            return false
        case .holding(let t):
            promote.pending = false
            guard let current else { return false }
            claimAtStart = false
            if current.term > t {
                // Rule 5: someone owns a newer term.
                actions.append(.notice("broker \(id): term \(current.term) is newer than ours (\(t)): following"))
                mode = .following
                promoting = false
                return true
            }
            if ownNode, mayOwnMaster {
                mode = .leading(term: t)
                promoting = false
                acceptingTerm = t
                followedMaster = nil
                refusalNoticed = nil
                reported = nil
                // The node's high watermark waits for these slaves before its first answer.
                actions.append(.inSyncPublished(current.record.ids))
                actions.append(.acceptPuts(term: t))
                return true
            }
            if !isWriting {
                if master == .absent { send(.write(.createMaster), &actions) }
                else if ownNode { send(.write(.deleteMaster), &actions) }
                // Another URI: wait for its node to go (the watch is armed).
            }
            return false
        case .leading(let t):
            promote.pending = false
            guard let current else {
                stopLeading(.termNodeMissing, &actions)
                return true
            }
            if current.term > t {
                stopLeading(.newerTerm(current.term), &actions)
                mode = .following
                return true
            }
            if let other {
                stopLeading(.displaced(by: other), &actions)
                mode = .following
                return true
            }
            if !isWriting {
                if master == .absent {
                    send(.write(.createMaster), &actions)
                } else if let ids = reported {
                    let target = publishable(ids, over: current.record.inSync)
                    if target != current.record.inSync {
                        let record = Record(term: t, owner: settings.uri, inSync: target)
                        send(.write(.cas(record, version: current.version)), &actions)
                    }
                }
            }
            return false
        }
    }

    /// Rule 8: an operator's promote, if one is pending, turns this broker into a claimant when it
    /// may take over (rule 10) or the promote is forced. True when it did.
    mutating func takePromote(_ record: Record?, _ actions: inout [Action]) -> Bool {
        guard promote.pending else { return false }
        promote.pending = false
        guard promote.force || mayTakeOver(record) else {
            actions.append(.notice("broker \(settings.brokerId): promote refused: it may not hold every acknowledged message "
                + "(neither the owner of the term with its logs nor in the in-sync set; use force)"))
            return false
        }
        mode = .claiming
        promoting = true
        actions.append(.notice("broker \(settings.brokerId): promoted by operator"))
        return true
    }

    /// Rule 10 said no: once per record and logs, for the operator.
    mutating func noticeRefusal(_ record: Record?, _ actions: inout [Action]) {
        guard refusalNoticed == nil || refusalNoticed!.record != record || refusalNoticed!.logs != logsTerm else { return }
        refusalNoticed = (record, logsTerm)
        let logs = logsTerm.map { "logs consistent with term \($0)" } ?? "no replication-term file (new or lost disk)"
        actions.append(.notice("broker \(settings.brokerId): may not take over term \(record?.term ?? 0) "
            + "(owner \(record?.owner ?? "none"), in-sync \(record.map { String(decoding: $0.data, as: UTF8.self) } ?? "none"); \(logs)): "
            + "waiting for a broker that holds every acknowledged message, or `metaq admin promote --force`"))
    }

    mutating func send(_ purpose: Purpose, _ actions: inout [Action]) {
        let tag = nextTag
        nextTag += 1
        let request: CoordinationRequest
        switch purpose {
        case .read(.term, false): request = .getVersionedData(path: settings.termPath, watch: true)
        case .read(let watched, false): request = .getData(path: path(watched), watch: true)
        case .read(let watched, true): request = .exists(path: path(watched), watch: true)
        case .write(.ensurePath(let paths)): request = .create(path: paths[0], data: nil, mode: .persistent)
        case .write(.createTerm):
            request = .create(path: settings.termPath, data: Record(term: 0, owner: nil, inSync: .never).data, mode: .persistent)
        case .write(.cas(let record, let version)):
            request = .setDataAtVersion(path: settings.termPath, data: record.data, version: version)
        case .write(.createMaster):
            mayOwnMaster = true
            request = .create(path: settings.masterPath, data: Array(settings.uri.utf8), mode: .ephemeral)
        case .write(.deleteMaster): request = .delete(path: settings.masterPath)
        }
        inFlight.append((tag, purpose))
        actions.append(.coordinate(request, tag: tag))
    }

    // MARK: node data

    static func text(_ data: [UInt8]?) -> String { String(decoding: data ?? [], as: UTF8.self) }

    /// A non-negative decimal (spaces around allowed); nil data or "" is term 0.
    static func decimal(_ data: [UInt8]?) -> Int64? {
        let trimmed = text(data).trimmingWhitespace
        if trimmed.isEmpty { return 0 }
        guard trimmed.utf8.count <= 19, trimmed.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int64(trimmed)
    }

    /// The ids of a comma-separated list; malformed entries are dropped (fewer slaves in sync is
    /// the safe reading).
    static func slaveIds(_ data: [UInt8]?) -> [Int] {
        normalized(text(data).split(separator: ",").compactMap { part -> Int? in
            let trimmed = String(part).trimmingWhitespace
            guard trimmed.utf8.count <= 9, let id = Int(trimmed), id >= 0 else { return nil }
            return id
        })
    }

    static func normalized(_ ids: [Int]) -> [Int] {
        var result: [Int] = []
        for id in ids.sorted() where id >= 0 && result.last != id { result.append(id) }
        return result
    }
}
