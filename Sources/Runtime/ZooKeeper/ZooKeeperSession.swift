import CZooKeeper
import Dispatch
import Logging
import ProtocolCore
import Synchronization

/// A ZooKeeper session over the C client (libzookeeper_mt), the `Coordination` the runtime's
/// drivers hand their machines' requests to (reference §3, DESIGN.md §5).
///
/// Only the C library's asynchronous calls are used, so no thread ever waits for the server:
/// `submit` queues the request and returns; the reply, watch notifications and session changes
/// reach the sink on one serial queue of this session, in the order they happened. Replies come
/// in submission order, including requests that fail before reaching the server.
///
/// Watches (`watch: true`) are set with the handle's default watcher, as ZooKeeper's own clients
/// do: one change of a path gives one notification, however many reads set a watch on it.
///
/// **Session contract.**
/// - `.session(.connected)` when the session is established, and again after a reconnection.
/// - `.session(.connecting)` when the connection is lost after having been connected (once per
///   loss): the session may still be alive; requests queue or fail with `.connectionLoss`.
/// - `.session(.expired)` when the server expired the session (or authentication failed): its
///   ephemeral nodes are gone and its watches will not fire. This type then closes the dead
///   handle and opens a new session with the same connect string and timeout, and reports
///   `.session(.connected)` once that one is connected. Between the two, requests fail with
///   `.sessionExpired` (or `.connectionLoss`). **Callers re-create their ephemeral nodes and set
///   their watches again on `.connected` after `.expired`** (reference §3.2: "On ZK session
///   expiry everything is re-registered").
///
/// The sink runs on a serial queue of this session: it should return quickly (a blocked sink
/// holds back every later event) and must not call `close()`. Call `close()` when done: the
/// C library's threads keep the session alive until then.
public final class ZooKeeperSession: Coordination, Sendable {
    let connectString: String
    let requestedTimeoutMs: Int
    let logger: Logger
    let sink: @Sendable (CoordinationEvent) -> Void

    /// Guards all mutable state. It is held while calling the C a-calls (`zoo_acreate` and the
    /// like only queue a request and never wait for the library's threads), so that a handle
    /// cannot be closed under them and sequence numbers follow the C library's queue order. It
    /// is never held while calling `zookeeper_init`/`zookeeper_close` (they wait for the
    /// library's threads, which take this lock in callbacks), the sink, or a continuation.
    let core = Mutex(Core())
    /// Serial: opens, renews and closes handles, so those never overlap. Renewal hops here
    /// because `zookeeper_close` from the C library's completion thread deadlocks (toolchain.md §1).
    let control = DispatchQueue(label: "metaq.zookeeper.control")
    /// Serial: the only place the sink is called.
    let delivery = DispatchQueue(label: "metaq.zookeeper.delivery")

    /// Opens a session to `connect` (`host:port[,host:port…]`). Returns at once: the connection
    /// is made in the background (`waitUntilConnected`, or `.session(.connected)` on the sink).
    /// Throws only if the C library cannot create a handle (e.g. an unparsable connect string).
    public init(connect: String, sessionTimeoutMs: Int, logger: Logger,
                sink: @escaping @Sendable (CoordinationEvent) -> Void) throws {
        connectString = connect
        requestedTimeoutMs = sessionTimeoutMs
        self.logger = logger
        self.sink = sink
        try openHandle()
    }

    /// Starts `request`; its outcome arrives on the sink as `.reply(tag:…)`, exactly once.
    /// Never blocks. After `close()` nothing arrives.
    public func submit(_ request: CoordinationRequest, tag: UInt64) {
        start(request, .sink(tag: tag))
    }

    /// Runs `request` and returns its reply, without involving the sink (for tools and tests).
    /// Suspends without blocking a thread. After `close()` the reply is `.failed(.sessionExpired)`.
    public func perform(_ request: CoordinationRequest) async -> CoordinationReply {
        await withCheckedContinuation { continuation in
            start(request, .caller(continuation))
        }
    }

    /// True once the session is connected and the sink got `.session(.connected)` (soon if it
    /// already is), false after `timeoutMs` or if the session is closed.
    public func waitUntilConnected(timeoutMs: Int) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            enum Outcome { case closed, queued(Effects), waiting(UInt64) }
            let outcome = core.withLock { core -> Outcome in
                if core.isClosed { return .closed }
                if core.reported == .connected {
                    return .queued(core.enqueue(.connectWaiters([continuation])))
                }
                core.nextWaiter += 1
                core.connectWaiters[core.nextWaiter] = continuation
                return .waiting(core.nextWaiter)
            }
            switch outcome {
            case .closed:
                continuation.resume(returning: false)
            case .queued(let effects):
                settle(effects)
            case .waiting(let waiter):
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(max(0, timeoutMs))) {
                    let expired = self.core.withLock { $0.connectWaiters.removeValue(forKey: waiter) }
                    expired?.resume(returning: false)
                }
            }
        }
    }

    /// The session timeout the server granted (it clamps the request to its
    /// min/maxSessionTimeout, toolchain.md §1); the requested one until the first connection.
    public var negotiatedSessionTimeoutMs: Int {
        core.withLock { $0.negotiatedTimeoutMs } ?? requestedTimeoutMs
    }

    /// Closes the session (`zookeeper_close`: the server deletes its ephemeral nodes at once).
    /// After it returns no callback runs and no event is sent; callers waiting in `perform` get
    /// `.failed(.sessionExpired)`. Idempotent. May block for the time the C library takes to
    /// tell the server (it waits up to a few seconds). Must not be called from the sink.
    public func close() {
        dispatchPrecondition(condition: .notOnQueue(delivery))
        dispatchPrecondition(condition: .notOnQueue(control))
        control.sync { closeOnControl() }
        // A sink call that started before the close finishes before close returns.
        delivery.sync {}
    }

    /// Registers `request` and hands it to the C library, or fails it at once.
    private func start(_ request: CoordinationRequest, _ destination: ReplyDestination) {
        let effects = core.withLock { core -> Effects in
            guard !core.isClosed else {
                guard case .caller(let continuation) = destination else { return Effects() }
                return Effects(replies: [(continuation, .failed(.sessionExpired))])
            }
            let sequence = core.order.enqueue(destination)
            guard let live = core.liveHandle else { return core.resolve(sequence, .failed(.sessionExpired)) }
            let context = RequestContext(session: self, sequence: sequence, generation: live.context.generation)
            core.inFlight[sequence] = context
            let rc = Self.issue(request, on: live.handle.pointer, context: Unmanaged.passUnretained(context).toOpaque())
            guard rc == ZOK.rawValue else {
                // A marshalling error can come after the completion was registered, so the C
                // library may still call it: keep its context until the handle is closed (a
                // second reply is ignored). Other failures happen before registration.
                if rc != ZMARSHALLINGERROR.rawValue { core.inFlight[sequence] = nil }
                return core.resolve(sequence, .failed(ZooKeeperCodes.error(rc)))
            }
            return Effects()
        }
        settle(effects)
    }

    /// Carries out what a locked section decided.
    func settle(_ effects: Effects) {
        if effects.scheduleDelivery {
            delivery.async { self.deliver() }
        }
        for (continuation, reply) in effects.replies { continuation.resume(returning: reply) }
        for (continuation, connected) in effects.connectWaiters { continuation.resume(returning: connected) }
    }

    /// Hands the outbox out, on the delivery queue.
    private func deliver() {
        let items = core.withLock { core -> [Outgoing] in
            core.deliveryScheduled = false
            defer { core.outbox = [] }
            return core.outbox
        }
        for item in items {
            switch item {
            case .event(let event): sink(event)
            case .connectWaiters(let waiters): for waiter in waiters { waiter.resume(returning: true) }
            }
        }
    }
}

/// Why a `ZooKeeperSession` could not be created or a test helper failed.
public enum ZooKeeperSessionError: Error, Equatable, Sendable {
    /// `zookeeper_init` returned no handle; the errno it left.
    case handleNotCreated(errno: Int32)
    /// `expireForTesting` needs a connected session.
    case notConnected
    /// `expireForTesting` could not make the server expire the session.
    case expiryNotObserved
}
