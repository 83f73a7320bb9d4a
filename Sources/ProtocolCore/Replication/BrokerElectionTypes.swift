/// The values of `BrokerElection`: its settings, what it is told and what it asks for.
extension BrokerElection {
    /// The role a broker is configured with. It only decides what the broker does at start: a
    /// master claims a new term (unless another broker already holds the master node), a slave
    /// follows. After that every broker is either the leader of its term or a follower.
    public enum Role: Equatable, Hashable, Sendable {
        case master
        case slave(slaveId: Int)
    }

    public struct Settings: Equatable, Sendable {
        public var brokerId: Int
        /// `meta://host:port` (§1.7): the data of the master node while this broker leads.
        public var uri: String
        public var role: Role
        /// The slave id a configured master uses once deposed and following (it can only be in
        /// the new master's in-sync set under some id). Nil: a deposed master never takes over by
        /// itself again; only `promote(force: true)` makes it leader.
        public var rejoinSlaveId: Int?
        public var layout: MetaZooKeeperLayout
        /// The root of our own znodes, beside the original's and never read by original clients.
        public var swiftRoot: String
        /// The one delay of the machine: after a failed request before trying again, and after
        /// losing a term race before claiming again. Fixed, so runs are reproducible.
        public var retryDelayMs: Int64
        /// Simulation only, never set in production (the failover canary, `metaq-sim
        /// --failover-canary`): a follower that takes over adopts the term it read instead of
        /// raising it by a compare-and-set, breaking rule 1 — two brokers accept puts in one term.
        public var canaryTakeOverWithoutNewTerm = false
        /// Simulation only (`metaq-sim --lost-logs-canary`): rule 10 forgets that logs must be
        /// intact — a term's owner or an in-sync slave whose disk was destroyed (or that is
        /// copying again) may still take over.
        public var canaryIgnoreLostLogs = false
        /// Synchronous replication with `minInSyncReplicas` ≥ 2: only a broker that holds every
        /// acknowledged put may take over — the owner of the current term with its logs, or a
        /// slave of the term's in-sync set with its logs (never the configured master merely
        /// because it starts). False (asynchronous, or `minInSyncReplicas=1`): a configured master
        /// claims at start as before, and a takeover may lose the unreplicated tail.
        public var cleanTakeoverOnly = false
        /// With `cleanTakeoverOnly`: the fewest slaves the published in-sync set keeps
        /// (`minInSyncReplicas` − 1). A smaller set from the leader is merged with the one
        /// published before, so the slaves that hold every acknowledged put stay eligible while
        /// too few are in sync for new puts to be answered.
        public var minInSyncSlaves = 1

        public init(brokerId: Int, uri: String, role: Role, rejoinSlaveId: Int? = nil,
                    layout: MetaZooKeeperLayout = MetaZooKeeperLayout(), swiftRoot: String = "/metaq-swift",
                    retryDelayMs: Int64 = 1000) {
            self.brokerId = brokerId
            self.uri = uri
            self.role = role
            self.rejoinSlaveId = rejoinSlaveId
            self.layout = layout
            self.swiftRoot = swiftRoot
            self.retryDelayMs = retryDelayMs
        }

        /// The id under which this broker appears in an in-sync set while following.
        public var followerId: Int? {
            if case .slave(let id) = role { return id }
            return rejoinSlaveId
        }

        /// `<swiftRoot>/brokers/<id>`: persistent, no data.
        public var electionPath: String { swiftRoot + "/brokers/\(brokerId)" }
        /// Persistent; data a `Record` (`term=<T> owner=<uri> in-sync=<ids>`). Created with term
        /// 0; only ever changed by a compare-and-set from the version read: by a claimant to the
        /// next term, or by the term's owner to publish its in-sync set. One node, so a claim and
        /// a change of the in-sync set can never both succeed from the same state. Never delete
        /// it: terms would repeat.
        public var termPath: String { electionPath + "/term" }
        /// The original's ephemeral master node (§3.1): data the leader's URI.
        public var masterPath: String { layout.masterPath(brokerId) }
    }

    /// Why a broker stopped accepting puts.
    public enum StopReason: Equatable, Hashable, Sendable {
        /// The ZooKeeper connection dropped: the session may expire meanwhile and a slave take
        /// over, so puts wait until the term is confirmed again.
        case disconnected
        /// The session ended: the master node is gone.
        case sessionExpired
        /// The term node holds a newer term: another broker leads (or is about to).
        case newerTerm(Int64)
        /// The master node holds another broker's URI while we led (only if someone edited it).
        case displaced(by: String)
        /// The term node is gone (someone deleted it): the term can no longer be proven.
        case termNodeMissing
    }

    public enum Event: Equatable, Sendable {
        case start
        case coordination(CoordinationEvent)
        /// The leader's current in-sync slaves (the replication layer decides who is in sync).
        /// Written to the in-sync node while this broker leads; ignored otherwise.
        case publishInSync([Int])
        /// The term the broker's logs are consistent with (`<dataPath>/replication-term`; nil when
        /// the file is missing — a new or destroyed disk). Decides whether it may take over.
        case logsConsistent(term: Int64?)
        /// Operator switchover (`metaq admin promote`): claim a new term even though the master
        /// is alive. Without `force`, only a follower in the in-sync set may do so.
        case promote(force: Bool)
        case tick
    }

    public enum Action: Equatable, Sendable {
        case coordinate(CoordinationRequest, tag: UInt64)
        /// Accept puts from now on, stamped with `term`.
        case acceptPuts(term: Int64)
        case stopAcceptingPuts(StopReason)
        /// Replicate from the broker at `masterURI` (said again whenever the master changes).
        case follow(masterURI: String)
        case scheduleTick(at: Instant)
        /// The in-sync set `ids` is now in ZooKeeper (written by this leader): only these slaves
        /// may take over. A synchronous leader stops waiting for a slave only once a set without
        /// it is published, or a slave it dropped could take over without its acknowledged puts.
        case inSyncPublished([Int])
        /// Something an operator should read in the log.
        case notice(String)
    }

    /// The two nodes every machine reads and keeps a watch on.
    enum Watched: Equatable, Hashable, Sendable, CaseIterable {
        case term, master
    }

    /// What the machine knows of a node: not read since the last change, absent, or its data.
    enum Observed<Value: Equatable & Sendable>: Equatable, Sendable {
        case unknown
        case absent
        case value(Value)
    }

    /// The term node's data: the term, the broker whose compare-and-set wrote it, and the slaves
    /// that may take over from it.
    public struct Record: Equatable, Sendable {
        /// Who may take over from the term's owner.
        public enum InSync: Equatable, Sendable {
            /// No in-sync set was ever published for this broker id: no put was ever answered
            /// as synchronously replicated, so a configured master may claim whatever its logs.
            case never
            case ids([Int])
        }

        public var term: Int64
        /// The URI of the broker that wrote `term` (nil for term 0 or a record of an earlier
        /// version of ours, which held the bare term).
        public var owner: String?
        public var inSync: InSync

        public init(term: Int64, owner: String?, inSync: InSync) {
            self.term = term
            self.owner = owner
            self.inSync = inSync
        }

        public var ids: [Int] {
            if case .ids(let ids) = inSync { return ids }
            return []
        }

        /// `term=<T> owner=<uri> in-sync=<ids|->`.
        public var data: [UInt8] {
            var text = "term=\(term)"
            if let owner { text += " owner=\(owner)" }
            switch inSync {
            case .never: text += " in-sync=-"
            case .ids(let ids): text += " in-sync=" + ids.map(String.init).joined(separator: ",")
            }
            return Array(text.utf8)
        }

        /// Parses the term node: the record above, or a bare decimal term (an earlier version's
        /// node: no owner, an empty in-sync set — the safe reading). Nil when malformed.
        public static func parse(_ data: [UInt8]?) -> Record? {
            let text = String(decoding: data ?? [], as: UTF8.self).trimmingWhitespace
            if !text.contains("=") {
                return BrokerElection.decimal(data).map { Record(term: $0, owner: nil, inSync: .ids([])) }
            }
            var term: Int64?
            var owner: String?
            var inSync = InSync.ids([])
            for field in text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }) {
                guard let equals = field.firstIndex(of: "=") else { return nil }
                let key = field[..<equals]
                let value = String(field[field.index(after: equals)...])
                switch key {
                case "term": term = BrokerElection.decimal(Array(value.utf8))
                case "owner": owner = value.isEmpty ? nil : value
                case "in-sync": inSync = value == "-" ? .never : .ids(BrokerElection.slaveIds(Array(value.utf8)))
                default: continue  // a later version's field
                }
            }
            guard let term else { return nil }
            return Record(term: term, owner: owner, inSync: inSync)
        }
    }

    struct TermValue: Equatable, Sendable {
        var record: Record
        var version: Int32
        var term: Int64 { record.term }
    }

    /// The one write in flight.
    enum Write: Equatable, Sendable {
        /// Persistent ancestors still to create (no data), first one in flight.
        case ensurePath([String])
        case createTerm
        /// Compare-and-set of the term node from `version` to `record`: a claim (a new term) or
        /// the owner publishing its in-sync set (same term).
        case cas(Record, version: Int32)
        case createMaster
        case deleteMaster
    }

    enum Purpose: Equatable, Sendable {
        /// A `getData`/`getVersionedData` (or, with `exists`, an `exists`) with a watch.
        case read(Watched, exists: Bool)
        case write(Write)
    }

    enum Mode: Equatable, Sendable {
        /// Not started.
        case idle
        /// A configured master at start, until it knows the term and the master node.
        case starting
        case following
        /// Wants to lead: the next step is the compare-and-set of the term.
        case claiming
        /// Owns `term` (its CAS wrote it) but does not accept puts yet: advertising it in the
        /// master node, or waiting for the session to come back after leading.
        case holding(term: Int64)
        /// Accepts puts in `term`.
        case leading(term: Int64)
    }
}
