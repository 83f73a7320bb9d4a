import ProtocolCore
import StoreCore

/// A slave's side of replication (issue 17, reference §6.1): the connection to the master, the
/// `ReplicaFetcher` it drives, the master's bytes appended as they are.
extension BrokerNode {
    func masterAddressChanged(_ uri: String?, _ clock: NodeClock, _ actions: inout [Action]) {}
    func masterLinkOpened(_ link: UInt64, _ clock: NodeClock, _ actions: inout [Action]) {}
    func masterLinkFrame(_ link: UInt64, _ frame: Frame, _ clock: NodeClock, _ actions: inout [Action]) {}
    func masterLinkClosed(_ link: UInt64, _ clock: NodeClock, _ actions: inout [Action]) {}
    func replicationTimerFired(_ clock: NodeClock, _ actions: inout [Action]) {}
}
