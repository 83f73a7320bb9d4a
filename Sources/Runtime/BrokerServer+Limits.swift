import Glibc
import Logging
import NIOCore
import ProtocolCore

/// Carrying out the limits of DESIGN.md §8 on the sockets: the connection limit, the partial-frame
/// budget and timeout (decided by `PartialFrameGuard`), reads paused for either reason. All on the
/// loop, like the rest of the server's state.
extension BrokerServer {
    /// Whether a new connection may be served (on its connection loop); one beyond
    /// `maxConnections` is closed at once and reported to the node's loop (`connectionRefused`).
    func admit(_ channel: any Channel) -> Bool {
        let limit = config.maxConnections
        var open = openConnections.load(ordering: .relaxed)
        while open < limit {
            let (exchanged, original) = openConnections.compareExchange(expected: open, desired: open + 1, ordering: .relaxed)
            if exchanged { return true }
            open = original
        }
        channel.close(promise: nil)
        return false
    }

    /// A connection was refused for the limit: logged once per episode, and once more when the
    /// broker is below the limit again.
    func connectionRefused() {
        if connectionLimitEpisode.refused() {
            logger.warning("connection limit reached: new connections are closed at once", metadata: [
                "maxConnections": "\(config.maxConnections)",
            ])
        }
    }

    /// Ends a connection-limit episode once a connection closed brings the broker below the limit.
    func connectionLimitMayHaveEased() {
        guard connectionLimitEpisode.isActive, openConnections.load(ordering: .relaxed) < config.maxConnections,
              let refused = connectionLimitEpisode.succeeded() else { return }
        logger.info("below the connection limit again", metadata: [
            "maxConnections": "\(config.maxConnections)", "refused": "\(refused)",
        ])
    }

    /// A read left `id` holding part of a frame, or ended one it held: asks the guard what to do.
    func partialFrameRead(_ id: ConnectionID, completedFrames: Int, partial: FrameDecoder.PartialFrame) {
        // A connection closed while its read was decoded (`quit`) was already given up.
        guard connections[id] != nil else { return }
        var actions: [PartialFrameGuard.Action] = []
        partialFrames.afterRead(id, completedFrames: completedFrames, partial: partial, now: Clocks.monotonic(),
                                into: &actions)
        carryOut(actions)
        armPartialFrameTimer()
    }

    func partialFrameConnectionClosed(_ id: ConnectionID) {
        var actions: [PartialFrameGuard.Action] = []
        partialFrames.closed(id, now: Clocks.monotonic(), into: &actions)
        carryOut(actions)
        armPartialFrameTimer()
    }

    func carryOut(_ actions: [PartialFrameGuard.Action]) {
        for action in actions {
            switch action {
            case .pause(let id):
                if budgetEpisode.refused() {
                    logger.warning("partial-frame budget in use: connections sending a message wait unread", metadata: [
                        "maxPartialFrameBytes": "\(partialFrames.budget.capacityBytes)",
                        "reservedBytes": "\(partialFrames.budget.reservedBytes)",
                    ])
                }
                setWaitingForBudget(id, true)
            case .resume(let id):
                setWaitingForBudget(id, false)
                if partialFrames.budget.waitingCount == 0, let waited = budgetEpisode.succeeded() {
                    logger.info("partial-frame budget available again", metadata: ["waited": "\(waited)"])
                }
            case .close(let id):
                guard let connection = connections[id] else { continue }
                logger.info("closing a connection silent in the middle of a message", metadata: [
                    "connection": "\(id)", "partialFrameTimeoutMs": "\(partialFrames.timeoutMs)",
                    "remote": "\(connection.channel.remoteAddress.map { "\($0)" } ?? "?")",
                ])
                connection.channel.close(promise: nil)
            }
        }
    }

    /// The guard pauses or resumes reading a connection: its connection loop does it.
    func setWaitingForBudget(_ id: ConnectionID, _ waiting: Bool) {
        guard let connection = connections[id] else { return }
        let handler = connection.handler, channel = connection.channel
        handler.home.loop.execute { handler.setWaitingForBudget(waiting, channel: channel) }
    }

    /// Arms the timeout task for the earliest connection that may fall silent mid-frame. Armed
    /// once at a time: when it fires it closes what expired and arms itself for the next.
    func armPartialFrameTimer() {
        guard partialFrameTimer == nil, let deadline = partialFrames.nextDeadline() else { return }
        let delay = max(0, deadline.nanoseconds - Clocks.monotonic().nanoseconds)
        partialFrameTimer = loop.scheduleTask(in: .nanoseconds(delay)) {
            self.partialFrameTimer = nil
            var actions: [PartialFrameGuard.Action] = []
            self.partialFrames.expire(now: Clocks.monotonic(), into: &actions)
            self.carryOut(actions)
            self.armPartialFrameTimer()
        }
    }
}

/// On the listening channel: when accepting fails for want of descriptors (EMFILE per process,
/// ENFILE system-wide) or kernel memory (ENOBUFS, ENOMEM), stops accepting for `backoffMs` and
/// then tries again, logging once per episode and once more, with the count of failed attempts,
/// when a connection is accepted again. Connections already open are served throughout.
///
/// Why not NIO's `AcceptBackoffHandler`: it delays the channel's next `read`, but after a failed
/// accept the server channel never asks for one — its read is still pending and it stays
/// registered for readability, and the queued connection keeps the socket readable (epoll is
/// level-triggered). With the handler installed the loop still retried the accept some 90,000
/// times a second. Turning `autoRead` off unregisters the socket; turning it on again re-arms it.
final class AcceptMonitor: ChannelInboundHandler {
    typealias InboundIn = any Channel
    let logger: Logger
    var episode = RefusalEpisode()
    var isBackingOff = false

    init(logger: Logger) { self.logger = logger }

    static let backoffMs: Int64 = 100

    /// Whether waiting can cure the accept failure. Others (ECONNABORTED: a client gave up while
    /// queued) are NIO's to handle, as before.
    static func isCuredByWaiting(_ error: IOError) -> Bool {
        [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errnoCode)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let ioError = error as? IOError, Self.isCuredByWaiting(ioError) else {
            context.fireErrorCaught(error)
            return
        }
        if episode.refused() {
            logger.error("cannot accept connections, retrying every \(Self.backoffMs) ms; existing connections are served", metadata: [
                "error": "\(ioError)",
            ])
        }
        guard !isBackingOff else { return }
        isBackingOff = true
        let channel = context.channel
        try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Self.backoffMs)) {
            self.isBackingOff = false
            try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let refused = episode.succeeded() {
            logger.info("accepting connections again", metadata: ["refusedAttempts": "\(refused)"])
        }
        context.fireChannelRead(data)
    }
}
