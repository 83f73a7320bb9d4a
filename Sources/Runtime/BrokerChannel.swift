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
    /// Frames written since the last flush; one flush per loop tick carries them all.
    private var flushPending = false
    /// Encoding scratch, reused by every `send`.
    private var scratch: [UInt8] = []
    /// Why the attempt failed or the connection ended, when known (read it in `onClose`).
    public private(set) var failure: (any Error)?

    /// Connects; `onOpen` or `onClose` follows exactly once for the attempt, then `onFrame`s and
    /// one `onClose` when the connection ends (not after `close()`). An answer that breaks the
    /// framing rules or `limits` closes the connection (`onClose`).
    public init(address: BrokerAddress, loop: any EventLoop, timeoutMs: Int64, limits: FrameDecoder.Limits = defaultLimits,
                onOpen: @escaping () -> Void, onFrame: @escaping (Frame) -> Void, onClose: @escaping () -> Void) {
        let handler = FrameHandler(limits: limits, onFrame: onFrame, onClose: onClose)
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

    /// Writes `frame`; frames sent during one loop tick go out with one flush (one syscall).
    public func send(_ frame: Frame) {
        guard let channel, !isClosed else { return }
        scratch.removeAll(keepingCapacity: true)
        frame.encode(into: &scratch)
        var buffer = channel.allocator.buffer(capacity: scratch.count)
        buffer.writeBytes(scratch)
        channel.write(buffer, promise: nil)
        guard !flushPending else { return }
        flushPending = true
        channel.eventLoop.assumeIsolatedUnsafeUnchecked().execute {
            self.flushPending = false
            if !self.isClosed { channel.flush() }
        }
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
    weak var owner: BrokerChannel?
    var decoder: FrameDecoder
    let onFrame: (Frame) -> Void
    let onClose: () -> Void
    var reported = false

    init(limits: FrameDecoder.Limits, onFrame: @escaping (Frame) -> Void, onClose: @escaping () -> Void) {
        decoder = FrameDecoder(limits: limits)
        self.onFrame = onFrame
        self.onClose = onClose
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { decoder.feed($0) }
        do {
            while let frame = try decoder.next() {
                guard owner?.isOpenForCallbacks == true else { return }
                onFrame(frame)
            }
        } catch {
            owner?.failed(error)
            context.close(promise: nil)
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
