import NIOCore
import NIOPosix
import ProtocolCore

/// One TCP connection to a broker for one machine, on an event loop: frames in through a
/// `FrameDecoder`, frames out encoded. The client's links use it, and the broker's link to its
/// master (a slave's fetches). Create it, call it and drop it only on `loop`; callbacks run there.
public final class BrokerChannel {
    /// The decoder's bounds when the caller gives none: a client's gets are answered with at most
    /// the broker's `maxTransferSize` (1 MiB by default), far below this.
    public static let defaultLimits = FrameDecoder.Limits(maxLineBytes: 4096, maxBodyBytes: 64 << 20)

    private var channel: (any Channel)?
    private var isClosed = false
    /// Whether a write of `outgoing` is scheduled for the end of this loop tick.
    private var flushPending = false
    /// Frames sent since the last write, encoded back to back: one buffer, one pipeline write and
    /// one flush per loop tick carry them all (not one write per frame).
    private var outgoing: [UInt8] = []
    /// `outgoing`'s capacity is kept between ticks up to this; a larger one (a tick of big
    /// frames) is given back after its write.
    private static let keptCapacityBytes = 1 << 20
    /// Why the attempt failed or the connection ended, when known (read it in `onClose`).
    public private(set) var failure: (any Error)?

    /// Connects; `onOpen` or `onClose` follows exactly once for the attempt, then `onFrame`s and
    /// one `onClose` when the connection ends (not after `close()`). An answer that breaks the
    /// framing rules or `limits` closes the connection (`onClose`).
    public convenience init(address: BrokerAddress, loop: any EventLoop, timeoutMs: Int64,
                            limits: FrameDecoder.Limits = defaultLimits, onOpen: @escaping () -> Void,
                            onFrame: @escaping (Frame) -> Void, onClose: @escaping () -> Void) {
        self.init(address: address, loop: loop, timeoutMs: timeoutMs, limits: limits, onOpen: onOpen,
                  delivery: .each(onFrame), onClose: onClose)
    }

    /// As above, but the frames decoded from one read arrive together, in order, in one
    /// `onFrames` (a caller that handles answers in bulk pays its per-call work once per read).
    /// Frames decoded before a framing error are delivered, then the connection closes.
    public convenience init(address: BrokerAddress, loop: any EventLoop, timeoutMs: Int64,
                            limits: FrameDecoder.Limits = defaultLimits, onOpen: @escaping () -> Void,
                            onFrames: @escaping ([Frame]) -> Void, onClose: @escaping () -> Void) {
        self.init(address: address, loop: loop, timeoutMs: timeoutMs, limits: limits, onOpen: onOpen,
                  delivery: .batch(onFrames), onClose: onClose)
    }

    private init(address: BrokerAddress, loop: any EventLoop, timeoutMs: Int64, limits: FrameDecoder.Limits,
                 onOpen: @escaping () -> Void, delivery: FrameHandler.Delivery, onClose: @escaping () -> Void) {
        let handler = FrameHandler(limits: limits, delivery: delivery, onClose: onClose)
        handler.owner = self
        let bound = NIOLoopBound(handler, eventLoop: loop)
        let bootstrap = ClientBootstrap(group: loop)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.milliseconds(timeoutMs))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(bound.value) }
            }
        bootstrap.connect(host: address.host, port: address.port).assumeIsolatedUnsafeUnchecked().whenComplete { result in
            switch result {
            case .success(let channel):
                if self.isClosed {
                    channel.close(promise: nil)
                } else {
                    self.channel = channel
                    onOpen()
                }
            case .failure(let error):
                self.failure = error
                if !self.isClosed { onClose() }
            }
        }
    }

    /// Writes `frame`; frames sent during one loop tick go out together at its end, in order, in
    /// one write and one flush (one syscall).
    public func send(_ frame: Frame) {
        guard let channel, !isClosed else { return }
        frame.encode(into: &outgoing)
        guard !flushPending else { return }
        flushPending = true
        channel.eventLoop.assumeIsolatedUnsafeUnchecked().execute { self.writeOutgoing(to: channel) }
    }

    private func writeOutgoing(to channel: any Channel) {
        flushPending = false
        defer {
            if outgoing.capacity > Self.keptCapacityBytes { outgoing = [] } else { outgoing.removeAll(keepingCapacity: true) }
        }
        guard !isClosed, !outgoing.isEmpty else { return }
        var buffer = channel.allocator.buffer(capacity: outgoing.count)
        buffer.writeBytes(outgoing)
        channel.writeAndFlush(buffer, promise: nil)
    }

    /// Closes without reporting `onClose`.
    public func close() {
        isClosed = true
        channel?.close(promise: nil)
        channel = nil
    }

    var isOpenForCallbacks: Bool { !isClosed }

    fileprivate func failed(_ error: any Error) {
        if failure == nil { failure = error }
    }
}

private final class FrameHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// Frame by frame (the owner's state is checked before each), or all frames of a read at once.
    enum Delivery {
        case each((Frame) -> Void)
        case batch(([Frame]) -> Void)
    }

    weak var owner: BrokerChannel?
    var decoder: FrameDecoder
    let delivery: Delivery
    let onClose: () -> Void
    var reported = false

    init(limits: FrameDecoder.Limits, delivery: Delivery, onClose: @escaping () -> Void) {
        decoder = FrameDecoder(limits: limits)
        self.delivery = delivery
        self.onClose = onClose
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { decoder.feed($0) }
        switch delivery {
        case .each(let onFrame):
            do {
                while let frame = try decoder.next() {
                    guard owner?.isOpenForCallbacks == true else { return }
                    onFrame(frame)
                }
            } catch {
                owner?.failed(error)
                context.close(promise: nil)
            }
        case .batch(let onFrames):
            var frames: [Frame] = []
            var failure: (any Error)?
            do {
                while let frame = try decoder.next() { frames.append(frame) }
            } catch {
                failure = error
            }
            if !frames.isEmpty, owner?.isOpenForCallbacks == true { onFrames(frames) }
            if let failure {
                owner?.failed(failure)
                context.close(promise: nil)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !reported, owner?.isOpenForCallbacks == true {
            reported = true
            onClose()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        owner?.failed(error)
        context.close(promise: nil)
    }
}
