import ProtocolCore
import StoreCore

/// How far one copy of a partition is behind, as `stats replication` reports it, in numbers rather
/// than text, for `/metrics` (issue 19). A slave reports itself against its master (`slaveId` is
/// its own id, `role` `.slave`); a master reports each connected slave (`role` `.master`).
public struct ReplicationLag: Equatable, Sendable {
    public enum Role: Equatable, Sendable { case master, slave }
    public var role: Role
    public var slaveId: Int
    public var partition: TopicPartition
    /// Bytes of the master's log the slave does not hold yet (never negative).
    public var lagBytes: Int64
    /// How long the slave has been behind, in ms; 0 when it is at the end, nil when unknown.
    public var lagMs: Int64?

    public init(role: Role, slaveId: Int, partition: TopicPartition, lagBytes: Int64, lagMs: Int64?) {
        self.role = role
        self.slaveId = slaveId
        self.partition = partition
        self.lagBytes = lagBytes
        self.lagMs = lagMs
    }
}

extension BrokerNode {
    /// Every replication lag this broker knows, sorted by slave then partition: the same facts
    /// as `replicationStats` (`stats replication`), read by the runtime's observation. Empty on a
    /// master without connected slaves.
    public func replicationLag(_ clock: NodeClock) -> [ReplicationLag] {
        if let replica {
            return replica.masterEnds.keys.sorted().map { partition in
                let local = stores.log(partition)?.maxOffset ?? 0
                let master = replica.masterEnds[partition] ?? 0
                let lagMs: Int64?
                if replica.atEnd.contains(partition) {
                    lagMs = 0
                } else if let at = replica.caughtUpAt[partition] {
                    lagMs = clock.now.milliseconds(since: at)
                } else {
                    lagMs = nil
                }
                return ReplicationLag(role: .slave, slaveId: replica.settings.slaveId, partition: partition,
                                      lagBytes: max(0, master - local), lagMs: lagMs)
            }
        }
        let replication = replicas
        var rows: [ReplicationLag] = []
        for slave in Set(replication.slaveConnections.values).sorted() {
            let lagMs = replication.tracker.lagMs(of: slave, now: clock.now)
            for partition in stores.partitions {
                rows.append(ReplicationLag(role: .master, slaveId: slave, partition: partition,
                                           lagBytes: max(0, replication.tracker.lag(of: slave, partition)), lagMs: lagMs))
            }
        }
        return rows
    }
}
