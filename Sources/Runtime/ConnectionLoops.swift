import Logging
import NIOCore
import NIOPosix
import ProtocolCore
import Synchronization

/// Client connections live on connection loops (`ioThreads` of them; with 0 on the node's own
/// loop): each loop reads its sockets, decodes frames and writes answers, so the syscalls and the
/// parsing of a busy broker run beside the node instead of on its thread. The node stays on one
/// loop and is only ever touched there (DESIGN.md §5): what a connection loop decodes reaches it
/// as one ordered batch per loop iteration (`Inbound`), and what the node answers goes back as
/// one batch per connection loop per tick (`Outbound`). No rule moved: the node sees the same
/// frames in the same order per connection, only fewer, larger hand-offs.
final class ConnectionLoop: @unchecked Sendable {
    /// What a connection loop tells the node, in the order it happened on the loop.
    enum Inbound {
        /// A connection was accepted: its channel and handler, for answers and read control.
        case opened(ConnectionID, any Channel, ConnectionHandler)
        case frame(ConnectionID, Frame)
        /// A read left the connection holding part of a frame, or ended one it held.
        case partial(ConnectionID, completedFrames: Int, FrameDecoder.PartialFrame)
        case closed(ConnectionID)
        /// A connection beyond `maxConnections` was closed at once.
        case refused
    }

    /// What the node hands a connection's channel, in order.
    enum Outbound {
        case bytes(ByteBuffer)
        /// Put answers, encoded on the connection's loop.
        case answers([BrokerMachine.PutAnswer])
        /// A segment slice sent with sendfile; its descriptor closes once sent (or failed).
        case file(FileRegion, NIOFileHandle)
        case close
    }

    struct Batch: @unchecked Sendable {
        var items: [Inbound]
        /// What `items` count towards `queuedBytes` (request bodies plus a fixed share per item).
        var bytes: Int
        /// The put bodies alone (`metaq_received_bytes_total`).
        var putBodyBytes: Int
    }

    /// What an item counts towards the bound on requests handed to the node: its body, plus this.
    static let itemOverheadBytes = 64

    struct Writes: @unchecked Sendable {
        var connections: [(channel: any Channel, items: [Outbound])]
    }

    let loop: any EventLoop
    /// Position in `BrokerServer.connectionLoops`.
    let index: Int
    unowned let server: BrokerServer
    /// Items for the node since the last hand-off (touched on `loop` only).
    @exclusivity(unchecked) private var inbound: [Inbound] = []
    private var inboundBytes = 0
    private var inboundPutBodyBytes = 0
    private var handOffScheduled = false
    /// Bytes of requests handed to the node and not yet handled there (the node subtracts what it
    /// handled). Above `maxQueuedBytes` this loop stops reading its connections until the node
    /// has caught up to half of it: a loop that reads faster than the node handles cannot queue
    /// without bound.
    let queuedBytes = Atomic<Int>(0)
    let maxQueuedBytes: Int
    /// Whether reading is paused because the node is behind (touched on `loop` only).
    private(set) var isPausedForNode = false
    /// This loop's connections, for pausing and resuming them (touched on `loop` only).
    private var handlers: [ConnectionID: (handler: ConnectionHandler, channel: any Channel)] = [:]
    /// How often a paused loop looks whether the node has caught up.
    static let resumeCheckNanoseconds: Int64 = 1_000_000

    init(loop: any EventLoop, index: Int, server: BrokerServer, maxQueuedBytes: Int) {
        self.loop = loop
        self.index = index
        self.server = server
        self.maxQueuedBytes = maxQueuedBytes
    }

    /// Queues an item for the node; the first one of a loop iteration schedules the hand-off,
    /// which runs after the iteration's reads (so it carries all of them).
    func post(_ item: Inbound) {
        if case .frame(_, let frame) = item, case .put(let put) = frame {
            inboundBytes += put.body.count
            inboundPutBodyBytes += put.body.count
        }
        inboundBytes += Self.itemOverheadBytes
        inbound.append(item)
        guard !handOffScheduled else { return }
        handOffScheduled = true
        loop.execute { self.handOff() }
    }

    private func handOff() {
        handOffScheduled = false
        let batch = Batch(items: inbound, bytes: inboundBytes, putBodyBytes: inboundPutBodyBytes)
        inbound = []
        inbound.reserveCapacity(batch.items.count)
        inboundBytes = 0
        inboundPutBodyBytes = 0
        let queued = queuedBytes.add(batch.bytes, ordering: .relaxed).newValue
        if queued > maxQueuedBytes && !isPausedForNode { pauseForNode() }
        let server = self.server
        if server.loop.inEventLoop {
            server.receive(batch, from: self)
        } else {
            server.loop.execute { server.receive(batch, from: self) }
        }
    }

    /// A connection opened on this loop (on `loop`).
    func added(_ handler: ConnectionHandler, channel: any Channel) {
        handlers[handler.id] = (handler, channel)
        if isPausedForNode { handler.updateAutoRead(channel) }
    }

    /// A connection of this loop closed (on `loop`).
    func removed(_ id: ConnectionID) {
        handlers[id] = nil
    }

    private func pauseForNode() {
        isPausedForNode = true
        for (handler, channel) in handlers.values { handler.updateAutoRead(channel) }
        scheduleResumeCheck()
    }

    private func scheduleResumeCheck() {
        loop.scheduleTask(in: .nanoseconds(Self.resumeCheckNanoseconds)) {
            guard self.queuedBytes.load(ordering: .relaxed) <= self.maxQueuedBytes / 2 else {
                self.scheduleResumeCheck()
                return
            }
            self.isPausedForNode = false
            for (handler, channel) in self.handlers.values { handler.updateAutoRead(channel) }
        }
    }

    /// `result 200 <length> <opaque>␍␊<msgId> <partition> <offset>` per answer, encoded from the
    /// numbers straight into one buffer.
    static func encode(_ answers: [BrokerMachine.PutAnswer], allocator: ByteBufferAllocator) -> ByteBuffer {
        let most = ResultResponse.maxHeaderBytes + BrokerMachine.PutAnswer.maxBodyBytes
        var buffer = allocator.buffer(capacity: answers.count * most)
        for answer in answers {
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: most) { raw in
                // The body is written after the longest possible header, then the header in front
                // of it once the body's length is known, and the body moved up against it.
                let base = raw.baseAddress!
                let bodyStart = base + ResultResponse.maxHeaderBytes
                let bodyLength = answer.writeBody(to: bodyStart)
                let headerLength = ResultResponse.writeHeader(to: base, code: StatusCode.success, bodyLength: bodyLength,
                                                              opaque: answer.opaque)
                (base + headerLength).copyMemory(from: bodyStart, byteCount: bodyLength)
                return headerLength + bodyLength
            }
        }
        return buffer
    }

    /// Carries out the node's writes for connections of this loop (on this loop).
    static func write(_ writes: Writes) {
        for (channel, items) in writes.connections {
            for item in items {
                switch item {
                case .bytes(let buffer): channel.write(buffer, promise: nil)
                case .answers(let answers): channel.write(encode(answers, allocator: channel.allocator), promise: nil)
                case .file(let region, let handle):
                    let promise = channel.eventLoop.makePromise(of: Void.self)
                    promise.futureResult.whenComplete { _ in try? handle.close() }
                    channel.write(region, promise: promise)
                case .close:
                    channel.flush()
                    channel.close(promise: nil)
                }
            }
            channel.flush()
        }
    }
}

/// One connection on its connection loop: bytes in through a `FrameDecoder`, frames to the node
/// (through the loop's batch); a framing error closes the connection without a reply, as MetaQ
/// does (§1.1). Reading pauses while the client does not take its answers (back-pressure) or
/// while the node says the connection waits for the partial-frame budget.
final class ConnectionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let home: ConnectionLoop
    let id: ConnectionID
    @exclusivity(unchecked) var decoder = FrameDecoder(limits: .init(retainedBufferBytes: ConnectionHandler.retainedBufferBytes))
    /// Whether the decoder held part of a frame after the last read (the partial-frame guard
    /// tracks the connection exactly then).
    var holdsPartialFrame = false
    /// Not read until the partial-frame budget has room for the frame it is receiving (set by
    /// the node's guard, on this loop).
    var isWaitingForBudget = false
    /// The decoder's buffer keeps this much storage between frames: enough for the usual batch
    /// of puts, while a connection that once sent a large frame does not keep its size for good
    /// (memory `maxPartialFrameBytes` would not account for).
    static let retainedBufferBytes = 64 << 10

    init(home: ConnectionLoop, id: ConnectionID) {
        self.home = home
        self.id = id
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { decoder.feed($0) }
        var completed = 0
        do {
            while let frame = try decoder.next() {
                completed += 1
                home.post(.frame(id, frame))
            }
        } catch {
            home.server.logger.info("closing connection after a framing error", metadata: ["connection": "\(id)", "error": "\(error)"])
            context.close(promise: nil)
            return
        }
        // Most reads end between frames, with nothing partial before either: nothing to track.
        let partial = decoder.partialFrame
        guard holdsPartialFrame || partial != .none else { return }
        holdsPartialFrame = partial != .none
        home.post(.partial(id, completedFrames: completed, partial))
    }

    /// Back-pressure: a client that does not read its answers stops being read (bounded memory).
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        updateAutoRead(context.channel)
        context.fireChannelWritabilityChanged()
    }

    func setWaitingForBudget(_ waiting: Bool, channel: any Channel) {
        isWaitingForBudget = waiting
        updateAutoRead(channel)
    }

    /// A connection is read while its client takes its answers, it is not waiting for budget and
    /// the node is not behind on what its loop handed over.
    func updateAutoRead(_ channel: any Channel) {
        let read = channel.isWritable && !isWaitingForBudget && !home.isPausedForNode
        try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: read)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        home.added(self, channel: context.channel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        home.removed(id)
        home.server.openConnections.subtract(1, ordering: .relaxed)
        home.post(.closed(id))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
