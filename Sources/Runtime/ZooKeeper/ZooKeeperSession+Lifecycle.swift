import CZooKeeper
import Dispatch
import Glibc
import Logging

/// Opening, renewing and closing handles. Everything here but the first open (in `init`, before
/// the session is shared) runs on `control`, so these steps never overlap one another.
extension ZooKeeperSession {
    /// How long to wait before trying again when `zookeeper_init` fails during a renewal.
    static let reopenDelayMs = 1000

    /// Creates a handle of a new generation and makes it the live one.
    func openHandle() throws {
        let context: HandleContext? = core.withLock { core in
            guard !core.isClosed else { return nil }
            core.generation += 1
            return HandleContext(session: self, generation: core.generation)
        }
        guard let context else { return }
        ZooKeeperLog.install(logger)
        // The watcher may run before this returns; it is accepted because the generation is
        // already the current one, and `context` stays alive in this frame until installed.
        guard let zh = zookeeper_init2(connectString, zooKeeperWatcher, Int32(clamping: requestedTimeoutMs), nil,
                                       Unmanaged.passUnretained(context).toOpaque(), 0, zooKeeperLogCallback) else {
            throw ZooKeeperSessionError.handleNotCreated(errno: errno)
        }
        core.withLock { core in
            core.phase = .live(LiveHandle(handle: ZHandle(pointer: zh), context: context))
        }
    }

    /// After the handle of `generation` expired: close it, fail what it left unanswered, open
    /// a new one. On `control`.
    func renew(expired generation: UInt64) {
        let dead = core.withLock { core -> LiveHandle? in
            guard core.generation == generation, let live = core.liveHandle else { return nil }
            core.phase = .noHandle
            return live
        }
        guard let dead else { return }
        closeHandle(dead)
        settle(core.withLock { $0.failLeftovers(of: generation) })
        reopen()
    }

    /// Opens the next handle, trying again later if the C library cannot create one. On `control`.
    private func reopen() {
        do {
            try openHandle()
        } catch {
            logger.error("cannot open a new ZooKeeper session; retrying", metadata: [
                "error": "\(error)", "connect": "\(connectString)",
            ])
            control.asyncAfter(deadline: .now() + .milliseconds(Self.reopenDelayMs)) {
                let waiting = self.core.withLock { core in
                    if case .noHandle = core.phase { return true }
                    return false
                }
                if waiting { self.reopen() }
            }
        }
    }

    /// The body of `close()`, on `control`.
    func closeOnControl() {
        let (live, effects) = core.withLock { core -> (LiveHandle?, Effects) in
            guard !core.isClosed else { return (nil, Effects()) }
            let live = core.liveHandle
            core.phase = .closed
            var effects = Effects()
            for case .connectWaiters(let waiters) in core.outbox {
                effects.connectWaiters += waiters.map { ($0, false) }
            }
            core.outbox = []
            for destination in core.order.removeAll() {
                if case .caller(let continuation) = destination {
                    effects.replies.append((continuation, .failed(.sessionExpired)))
                }
            }
            effects.connectWaiters = core.connectWaiters.values.map { ($0, false) }
            core.connectWaiters = [:]
            return (live, effects)
        }
        if let live {
            let sessionId = core.withLock { $0.sessionId }
            closeHandle(live)
            logger.info("ZooKeeper session closed", metadata: ["session": "\(ZooKeeperCodes.hex(sessionId))"])
        }
        core.withLock { $0.inFlight = [:] }
        settle(effects)
    }

    /// `zookeeper_close`: joins the C library's threads, so afterwards no callback of this
    /// handle runs and the contexts it was given can go.
    private func closeHandle(_ live: LiveHandle) {
        let rc = zookeeper_close(live.handle.pointer)
        if rc != ZOK.rawValue {
            logger.debug("zookeeper_close", metadata: ["rc": "\(rc)", "error": "\(String(cString: zerror(rc)))"])
        }
        withExtendedLifetime(live.context) {}
    }
}
