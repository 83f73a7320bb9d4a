import NIOCore
import NIOHTTP1
import ProtocolCore

/// One HTTP message-API connection (reference §7.1), between NIO's HTTP codec and the broker's own
/// `ConnectionHandler`: a request goes in as the wire bytes of the same command
/// (`MessageAPIRequest`), a put's body streamed to the frame decoder as it arrives (so the
/// partial-frame budget bounds it as on TCP); the node's answer comes out of the connection loop
/// as wire bytes (`result <code> <length> <opaque>␍␊<text>`, or `value <length> <opaque>␍␊` and
/// a sendfile region), and leaves as an HTTP response: status = MetaQ code, body = the answer's
/// body. NIO's pipelining handler in front lets one request in at a time, so answers cannot cross.
final class MessageAPIHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = HTTPServerResponsePart

    /// The wire decoder's body bound: a larger put is refused here rather than there.
    let maxBodyBytes: Int
    /// The request being received: whether its bytes go to the decoder (a valid put), or it is
    /// refused once its body has been read.
    private enum Receiving { case idle, putBody, refused, command }
    private var receiving = Receiving.idle
    private var keepAlive = true

    /// Parsing the node's answer, which may arrive in any number of writes.
    private enum Answer { case header, body(remaining: Int) }
    private var answer = Answer.header
    private var headerBytes: [UInt8] = []
    /// A wire answer line is short; anything longer is not one of the node's answers.
    static let maxAnswerLineBytes = 256

    init(maxBodyBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    // MARK: Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            keepAlive = head.isKeepAlive
            // curl and other clients wait (curl: 1 s) for a `100 Continue` before a large body.
            if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))),
                                      promise: nil)
            }
            let length = head.headers.first(name: "content-length").flatMap { Int($0) }
            let parsed = MessageAPIRequest.parse(HTTPQuery(target: head.uri), contentLength: length,
                                                 maxBodyBytes: maxBodyBytes)
            switch parsed {
            case .put(let line, _)?:
                receiving = .putBody
                fire(line, context: context)
            case .command(let bytes)?:
                receiving = .command
                fire(bytes, context: context)
            case nil:
                receiving = .refused
            }
        case .body(let buffer):
            // A put's body goes to the decoder as it comes; other bodies are ignored.
            if case .putBody = receiving { context.fireChannelRead(wrapInboundOut(buffer)) }
        case .end:
            if case .refused = receiving { respond(status: 400, body: MessageAPIRequest.invalid, context: context) }
            receiving = .idle
        }
    }

    private func fire(_ bytes: [UInt8], context: ChannelHandlerContext) {
        context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: bytes)))
    }

    /// An answer made here (a refused request), in one piece.
    private func respond(status: Int, body: String, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        context.write(wrapOutboundOut(.head(head(status: status, length: buffer.readableBytes, text: true))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        end(context: context, promise: nil)
        context.flush()
    }

    private func head(status: Int, length: Int, text: Bool) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: text ? "text/plain" : "application/octet-stream")
        headers.add(name: "Content-Length", value: String(length))
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        return HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
    }

    private func end(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        written.cascade(to: promise)
        if !keepAlive {
            written.whenComplete { _ in context.close(promise: nil) }
        }
    }

    // MARK: Answers

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .byteBuffer(var buffer):
            while buffer.readableBytes > 0 {
                switch answer {
                case .header:
                    guard takeHeader(from: &buffer, context: context) else {
                        promise?.fail(ChannelError.ioOnClosedChannel)
                        return
                    }
                case .body(let remaining):
                    let slice = buffer.readSlice(length: min(remaining, buffer.readableBytes))!
                    context.write(wrapOutboundOut(.body(.byteBuffer(slice))), promise: nil)
                    bodyWritten(slice.readableBytes, remaining: remaining, context: context)
                }
            }
            promise?.succeed()
        case .fileRegion(let region):
            guard case .body(let remaining) = answer, region.readableBytes <= remaining else {
                return unexpectedAnswer(context: context, promise: promise)
            }
            context.write(wrapOutboundOut(.body(.fileRegion(region))), promise: promise)
            bodyWritten(region.readableBytes, remaining: remaining, context: context)
        }
    }

    /// Reads the answer's line once it is complete: `result <code> <length> <opaque>` or
    /// `value <length> <opaque>`; writes the response head. False (and the connection closed) when
    /// the bytes are not an answer.
    private func takeHeader(from buffer: inout ByteBuffer, context: ChannelHandlerContext) -> Bool {
        while let byte = buffer.readInteger(as: UInt8.self) {
            headerBytes.append(byte)
            if headerBytes.count > Self.maxAnswerLineBytes { return unexpectedHeader(context: context) }
            guard byte == UInt8(ascii: "\n") else { continue }
            let line = String(decoding: headerBytes.dropLast(2), as: UTF8.self)
            headerBytes.removeAll(keepingCapacity: true)
            let tokens = line.split(separator: " ")
            let status: Int
            let length: Int
            if tokens.count == 4, tokens[0] == "result", let code = Int(tokens[1]), let n = Int(tokens[2]) {
                (status, length) = (code, n)
            } else if tokens.count == 3, tokens[0] == "value", let n = Int(tokens[1]) {
                (status, length) = (200, n)
            } else {
                return unexpectedHeader(context: context)
            }
            guard (100...999).contains(status), length >= 0 else { return unexpectedHeader(context: context) }
            context.write(wrapOutboundOut(.head(head(status: status, length: length, text: tokens[0] == "result"))),
                          promise: nil)
            if length == 0 {
                end(context: context, promise: nil)
            } else {
                answer = .body(remaining: length)
            }
            return true
        }
        return true
    }

    private func unexpectedHeader(context: ChannelHandlerContext) -> Bool {
        unexpectedAnswer(context: context, promise: nil)
        return false
    }

    private func bodyWritten(_ count: Int, remaining: Int, context: ChannelHandlerContext) {
        if count == remaining {
            answer = .header
            end(context: context, promise: nil)
        } else {
            answer = .body(remaining: remaining - count)
        }
    }

    /// The node wrote something that is not an answer this handler can carry: there is no HTTP
    /// way to say more than closing the connection (never happens with the node's answers).
    private func unexpectedAnswer(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.ioOnClosedChannel)
        context.close(promise: nil)
    }
}
