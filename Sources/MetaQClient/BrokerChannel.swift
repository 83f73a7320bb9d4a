import NIOCore
import NIOPosix
import ProtocolCore

/// A broker address from a `meta://host:port` URI (reference §1.7; IPv6 hosts in brackets).
public struct BrokerAddress: Hashable, Sendable, CustomStringConvertible {
    public let host: String
    public let port: Int
    /// `meta://host:port` (built once: every send result carries it).
    public let uri: String

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
        uri = host.utf8.contains(UInt8(ascii: ":")) ? "meta://[\(host)]:\(port)" : "meta://\(host):\(port)"
    }

    public init?(uri: String) {
        var rest = Substring(uri)
        if rest.hasPrefix("meta://") { rest = rest.dropFirst("meta://".count) }
        if let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) { rest = rest[..<slash] }
        let host: Substring
        let portText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            guard after.hasPrefix(":") else { return nil }
            portText = after.dropFirst()
        } else {
            guard let colon = rest.lastIndex(of: ":") else { return nil }
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (1...65_535).contains(port) else { return nil }
        self.init(host: String(host), port: port)
    }

    public var description: String { uri }
}

/// One TCP connection to a broker for one machine, on the client's event loop: frames in through
/// a `FrameDecoder`, frames out encoded. Callbacks run on the loop.
final class BrokerChannel {
    private var channel: (any Channel)?
    private var isClosed = false
    /// Frames written since the last flush; one flush per loop tick carries them all.
    private var flushPending = false
    /// Encoding scratch, reused by every `send`.
    private var scratch: [UInt8] = []

    /// Connects; `onOpen` or `onClose` follows exactly once for the attempt, then `onFrame`s and
    /// one `onClose` when the connection ends (not after `close()`).
    init(address: BrokerAddress, loop: any EventLoop, timeoutMs: Int64,
         onOpen: @escaping () -> Void, onFrame: @escaping (Frame) -> Void, onClose: @escaping () -> Void) {
        let handler = FrameHandler(onFrame: onFrame, onClose: onClose)
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
            case .failure:
                if !self.isClosed { onClose() }
            }
        }
    }

    /// Writes `frame`; frames sent during one loop tick go out with one flush (one syscall).
    func send(_ frame: Frame) {
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
    func close() {
        isClosed = true
        channel?.close(promise: nil)
        channel = nil
    }

    var isOpenForCallbacks: Bool { !isClosed }
}

private final class FrameHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    weak var owner: BrokerChannel?
    var decoder = FrameDecoder(limits: .init(maxLineBytes: 4096, maxBodyBytes: 64 << 20))
    let onFrame: (Frame) -> Void
    let onClose: () -> Void
    var reported = false

    init(onFrame: @escaping (Frame) -> Void, onClose: @escaping () -> Void) {
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
        context.close(promise: nil)
    }
}
