import CZooKeeper
import Dispatch
import Glibc

/// The session-expiry helper for tests (toolchain.md §2 "Forcing session expiry").
extension ZooKeeperSession {
    /// Returns once every event queued for the sink so far has been handed to it: a barrier for
    /// tests that check what did *not* arrive, without waiting for a while. Must not be called
    /// from the sink.
    public func waitForDeliveries() {
        dispatchPrecondition(condition: .notOnQueue(delivery))
        delivery.sync {}
    }

    /// Makes the server expire this session, by the "twin handle" method: a second handle opens
    /// the same session (same id and password), then closes it, which ends the session on the
    /// server; this handle then learns that its session expired. It is racy (this handle may
    /// reconnect first and take the session back), so up to 3 tries, each waiting 1 s for this
    /// session to report the expiry. Returns once `.session(.expired)` was reported; the
    /// renewal (and `.connected`) follows asynchronously.
    public func expireForTesting() async throws {
        for _ in 0..<3 {
            guard let (clientId, expiriesBefore) = currentClientId() else {
                throw ZooKeeperSessionError.notConnected
            }
            try await closeTwin(of: clientId, unlessExpiredAfter: expiriesBefore)
            if await waitForExpiry(after: expiriesBefore, timeoutMs: 1000) { return }
        }
        throw ZooKeeperSessionError.expiryNotObserved
    }

    /// The live handle's session id and password, and the expiries seen so far.
    private func currentClientId() -> (clientid_t, Int)? {
        core.withLock { core in
            guard core.reported == .connected, let live = core.liveHandle,
                  let id = zoo_client_id(live.handle.pointer) else { return nil }
            return (id.pointee, core.expiries)
        }
    }

    /// Opens a handle on the session `clientId`, waits until it is connected, and closes it.
    /// Stops waiting early if the twin finds the session already gone, or if this session
    /// reported an expiry after `expiries`.
    private func closeTwin(of clientId: clientid_t, unlessExpiredAfter expiries: Int) async throws {
        var id = clientId
        ZooKeeperLog.install(logger)
        guard let raw = zookeeper_init2(connectString, ignoringWatcher, Int32(clamping: requestedTimeoutMs), &id, nil, 0,
                                        zooKeeperLogCallback) else {
            throw ZooKeeperSessionError.handleNotCreated(errno: errno)
        }
        let twin = ZHandle(pointer: raw)
        for _ in 0..<500 {
            let state = zoo_state(twin.pointer)
            if state == ZOO_CONNECTED_STATE || state == ZOO_EXPIRED_SESSION_STATE { break }
            if core.withLock({ $0.expiries > expiries }) { break }
            try? await Task.sleep(for: .milliseconds(10))
        }
        // zookeeper_close waits for the server; keep it off the cooperative pool.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                zookeeper_close(twin.pointer)
                continuation.resume()
            }
        }
    }

    private func waitForExpiry(after expiries: Int, timeoutMs: Int) async -> Bool {
        for _ in 0..<(timeoutMs / 10) {
            if core.withLock({ $0.expiries > expiries }) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return core.withLock { $0.expiries > expiries }
    }
}

/// The twin handle's watcher: the twin only exists to be closed, its events do not matter.
private func ignoringWatcher(_ zh: OpaquePointer?, _ type: Int32, _ state: Int32,
                             _ path: UnsafePointer<CChar>?, _ context: UnsafeMutableRawPointer?) {}
