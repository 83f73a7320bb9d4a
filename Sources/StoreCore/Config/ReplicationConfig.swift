// Replication settings (issue 17, reference §6.1): the `[replication]` section of server.ini, or
// the original's `async_slave.properties` given to `metaq-server start --slave <file>`. Both fill
// this one value; docs/REPLICATION.md and docs/CONFIGURATION.md describe the keys.

/// How this broker takes part in replication. A broker with no `slave` is a master (or a broker
/// without slaves): it serves the fetches of slaves of its `brokerId` and — in synchronous mode —
/// answers a put only once enough copies hold it.
public struct ReplicationConfig: Equatable, Sendable {
    /// A slave's own settings (the original's `async_slave.properties` keys, §6.1).
    public struct Slave: Equatable, Sendable {
        /// `slaveId`, required, 0...1023: distinct per slave of one master.
        public var slaveId: Int
        /// `slaveGroup`, `meta-slave-group_<slaveId>` when omitted: the consumer group of the
        /// slave's fetches. A master counts a fetch toward synchronous replication only when its
        /// group has that default form (it names the slave).
        public var slaveGroup: String
        /// `slaveMaxDelayInMills`, 500: the longest back-off between fetches at the master's end.
        public var maxDelayMs: Int64
        /// `master` (ours): `host:port` or `meta://host:port` of the master, stored by the parsers
        /// as `meta://host:port`. nil: the master is
        /// the broker ZooKeeper names in `/meta/brokers/ids/<brokerId>/master` (cluster mode);
        /// without ZooKeeper it is required.
        public var master: String?

        public init(slaveId: Int, slaveGroup: String? = nil, maxDelayMs: Int64 = 500, master: String? = nil) {
            self.slaveId = slaveId
            self.slaveGroup = slaveGroup ?? Self.defaultGroup(slaveId)
            self.maxDelayMs = maxDelayMs
            self.master = master
        }

        /// The original's default slave group, `meta-slave-group_<slaveId>`.
        public static func defaultGroup(_ slaveId: Int) -> String { "meta-slave-group_\(slaveId)" }

        /// The slave id a default slave group names (`meta-slave-group_<n>`), else nil.
        public static func slaveId(ofGroup group: String) -> Int? {
            let prefix = "meta-slave-group_"
            guard group.hasPrefix(prefix) else { return nil }
            let digits = group.dropFirst(prefix.count)
            guard !digits.isEmpty, digits.count <= 4, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let id = Int(digits), id <= 1023 else { return nil }
            return id
        }
    }

    /// Set when this broker is a slave (`[replication] slaveId`, or `start --slave <file>`).
    public var slave: Slave?
    /// `synchronous` (ours), false: a put is answered only once `minInSyncReplicas` copies (this
    /// master's included) hold it durably. Applies to a master.
    public var synchronous: Bool
    /// `maxLagMs` (ours), 10000: how long a slave may be behind or silent before it leaves the
    /// in-sync set.
    public var maxLagMs: Int64
    /// `minInSyncReplicas` (ours), 2: copies (the master's included) that must be in sync for a
    /// synchronous put to be answered; with fewer, puts are refused with the original's
    /// `Slave is disconnected `. 1 keeps answering with no slave in sync.
    public var minInSyncReplicas: Int
    /// `fetchHoldMs` (ours), 200: how long a master holds a slave's fetch at the end of a
    /// partition before answering that nothing is there (so a slave hears of a put at once).
    public var fetchHoldMs: Int64

    /// `failover` (ours), false: in cluster mode the broker takes part in the election of its
    /// broker id (docs/REPLICATION.md): an in-sync slave takes over when the master's session
    /// ends, a deposed master rejoins as a slave.
    public var failover: Bool
    /// `acceptSync` (ours), false; `metaq-server start --gregor` sets it: the broker is a
    /// gregor-style synchronous slave of an original samsa master (reference §6.2) — it stores
    /// the master's `sync` requests with the master's msgId (its offsets may differ).
    public var acceptSync = false
    /// `rejoinSlaveId` (ours): the slave id a configured master uses once deposed and following
    /// the new master (it needs one to appear in the new master's in-sync set); nil: it follows
    /// under slave id 1023 and never takes over again by itself.
    public var rejoinSlaveId: Int?

    public init(slave: Slave? = nil, synchronous: Bool = false, maxLagMs: Int64 = 10_000, minInSyncReplicas: Int = 2,
                fetchHoldMs: Int64 = 200, failover: Bool = false, rejoinSlaveId: Int? = nil) {
        self.failover = failover
        self.rejoinSlaveId = rejoinSlaveId
        self.slave = slave
        self.synchronous = synchronous
        self.maxLagMs = maxLagMs
        self.minInSyncReplicas = minInSyncReplicas
        self.fetchHoldMs = fetchHoldMs
    }

    public var isSlave: Bool { slave != nil }
}
