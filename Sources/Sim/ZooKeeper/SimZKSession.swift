import ProtocolCore

/// A client's ZooKeeper handle in the simulator: what a machine's driver submits requests to.
/// Opened by `SimZooKeeper.openSession`; it keeps working across expiries by renewing its
/// session (its `id` changes), like the runtime's handle.
///
/// `@unchecked Sendable`: `Coordination` asks for `Sendable` because the runtime's sessions are
/// called from several threads; the simulator is single-threaded and touches a session only
/// from its event loop.
public final class SimZKSession: Coordination, @unchecked Sendable {
    /// Where the handle stands, for the simulator's fault choices and for checkers.
    public enum Status: Equatable, Sendable {
        case connected
        /// Connection lost at `since`; the session lives at the server until its timeout.
        case disconnected(since: Instant)
        /// The server expired the session while the client was away; the client still believes
        /// it is reconnecting and hears `.expired` once it reconnects.
        case expiredWhileDisconnected
        /// `.expired` is on its way; the handle renews its session when it is delivered.
        case expired
        case closed
    }

    let zooKeeper: SimZooKeeper
    let slot: Int

    init(zooKeeper: SimZooKeeper, slot: Int) {
        self.zooKeeper = zooKeeper
        self.slot = slot
    }

    /// The current session id (the owner of this handle's ephemeral nodes); it changes when
    /// the session is renewed after an expiry.
    public var id: Int64 { zooKeeper.clients[slot].id }

    public var status: Status { zooKeeper.clients[slot].status }

    /// The session timeout: how long the server keeps the session alive without its client.
    public var timeoutMs: Int64 { zooKeeper.clients[slot].timeoutMs }

    /// Applies `request` at the server now (when connected); the reply comes later through the
    /// sink, never from within this call.
    public func submit(_ request: CoordinationRequest, tag: UInt64) {
        zooKeeper.submit(request, tag: tag, slot: slot)
    }

    /// Ends the session: its ephemeral nodes are deleted and the handle hears nothing more.
    public func close() { zooKeeper.close(slot) }
}
