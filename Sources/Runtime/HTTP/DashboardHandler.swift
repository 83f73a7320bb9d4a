import NIOCore
import NIOHTTP1
import ProtocolCore

/// One answer of the dashboard before it is written.
struct DashboardResponse: Sendable {
    var status: HTTPResponseStatus
    var contentType: String
    var body: [UInt8]
    var headers: [(String, String)] = []

    static func text(_ status: HTTPResponseStatus, _ text: String, headers: [(String, String)] = []) -> DashboardResponse {
        DashboardResponse(status: status, contentType: "text/plain; charset=utf-8", body: Array((text + "\n").utf8), headers: headers)
    }
}

/// A dashboard connection: collects one request (head and bounded body), answers it, and keeps
/// the connection for the next request when the client asked for keep-alive. Runs on the
/// dashboard's loop.
final class DashboardHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let server: DashboardServer
    var head: HTTPRequestHead?
    var body: [UInt8] = []
    /// A request was refused (too large): everything after it is dropped; the connection ends.
    var refused = false
    /// An answer is being produced: HTTP/1.1 pipelining is answered in order by not reading on.
    var busy = false

    init(server: DashboardServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            guard !refused else { return }
            head = requestHead
            body = []
            let headBytes = requestHead.uri.utf8.count + requestHead.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
            if headBytes > server.settings.maxHeadBytes {
                refuse(context: context, .text(.requestHeaderFieldsTooLarge, "request head larger than \(server.settings.maxHeadBytes) bytes"))
            }
        case .body(var chunk):
            guard !refused else { return }
            if body.count + chunk.readableBytes > server.settings.maxBodyBytes {
                refuse(context: context, .text(.payloadTooLarge, "request body larger than \(server.settings.maxBodyBytes) bytes"))
                return
            }
            body += chunk.readBytes(length: chunk.readableBytes) ?? []
        case .end:
            guard !refused, let head else { return }
            self.head = nil
            busy = true
            let loop = context.eventLoop
            let keepAlive = head.isKeepAlive
            let isHead = head.method == .HEAD
            let bound = NIOLoopBound(context, eventLoop: loop)
            server.answer(head: head, body: body).hop(to: loop).whenComplete { result in
                let context = bound.value
                let response: DashboardResponse
                switch result {
                case .success(let r): response = r
                case .failure(let error): response = .text(.internalServerError, "dashboard error: \(error)")
                }
                self.write(context: context, response, keepAlive: keepAlive, omitBody: isHead)
                self.busy = false
            }
        }
    }

    /// Answers `response` and closes the output; the rest of the request is read and dropped
    /// until the client closes or the idle timeout ends the connection (closing at once with
    /// unread input would make the kernel reset the connection, and the client could lose the
    /// answer).
    func refuse(context: ChannelHandlerContext, _ response: DashboardResponse) {
        refused = true
        write(context: context, response, keepAlive: false, omitBody: false, closeOutputOnly: true)
    }

    func write(context: ChannelHandlerContext, _ response: DashboardResponse, keepAlive: Bool, omitBody: Bool,
               closeOutputOnly: Bool = false) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.count))
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))), promise: nil)
        if !omitBody && !response.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(mode: closeOutputOnly ? .output : .all, promise: nil) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent, !busy {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

extension DashboardServer {
    /// Whether the request asks for JSON: `Content-Type: application/json` (or a vendor
    /// `application/vnd…+json`), as the original's `json-request?` (reference §7.2).
    static func wantsJSON(_ head: HTTPRequestHead) -> Bool {
        guard let type = head.headers.first(name: "Content-Type")?.lowercased() else { return false }
        return type.hasPrefix("application/json") || (type.hasPrefix("application/vnd") && type.contains("json"))
    }

    /// The answer to one request.
    func answer(head: HTTPRequestHead, body: [UInt8]) -> EventLoopFuture<DashboardResponse> {
        let loop = self.loop
        let query = HTTPQuery(target: head.uri)
        let json = Self.wantsJSON(head)
        if let refusal = Self.crossSiteRefusal(head) { return loop.makeSucceededFuture(refusal) }
        switch DashboardRoute.resolve(method: head.method, query: query) {
        case .failure(.notFound):
            return loop.makeSucceededFuture(json ? Self.jsonResponse(.notFound, .object([("error", .string("not found"))]))
                                                 : .text(.notFound, "not found: \(query.path)"))
        case .failure(.methodNotAllowed(let allowed)):
            let names = allowed.map { "\($0)" }.joined(separator: ", ")
            return loop.makeSucceededFuture(.text(.methodNotAllowed, "\(head.method) is not allowed here; use \(names)",
                                                  headers: [("Allow", names)]))
        case .success(let route):
            return answer(route, json: json, loop: loop)
        }
    }

    /// A POST changes something (reload, skip a group's messages): a browser sends one from any
    /// page it shows, with that page's `Origin`. One whose origin is not this dashboard (its
    /// `Host`) is refused, so a page elsewhere cannot make an operator's browser skip messages.
    /// Clients that send no `Origin` (curl, scripts) are not browsers on someone else's page.
    static func crossSiteRefusal(_ head: HTTPRequestHead) -> DashboardResponse? {
        guard head.method == .POST, let origin = head.headers.first(name: "origin") else { return nil }
        let host = head.headers.first(name: "host") ?? ""
        let originHost = origin.split(separator: "://", maxSplits: 1).dropFirst().first.map(String.init)
        guard originHost != nil, originHost?.lowercased() == host.lowercased() else {
            return .text(.forbidden, "cross-site request refused: Origin \(origin) is not this dashboard (\(host))")
        }
        return nil
    }

    static func jsonResponse(_ status: HTTPResponseStatus, _ value: JSONValue) -> DashboardResponse {
        DashboardResponse(status: status, contentType: "application/json; charset=utf-8", body: Array(value.text.utf8))
    }

    func render(_ page: DashboardPage, _ context: DashboardContext, json: Bool) -> DashboardResponse {
        if json { return Self.jsonResponse(page.status, page.json) }
        let html = HTML.page(title: page.title, active: page.active, brokerId: context.brokerId,
                             version: context.observation.version, body: page.body)
        return DashboardResponse(status: page.status, contentType: "text/html; charset=utf-8", body: Array(html.utf8))
    }

    /// An observation and the facts around it, on the dashboard's loop.
    func context(loop: any EventLoop) -> EventLoopFuture<DashboardContext> {
        observe().hop(to: loop).map { observation in
            let sampler = self.state.withLockedValue { $0.sampler }
            return DashboardContext(settings: self.settings, observation: observation, facts: .read(), sampler: sampler)
        }
    }

    func answer(_ route: DashboardRoute, json: Bool, loop: any EventLoop) -> EventLoopFuture<DashboardResponse> {
        switch route {
        case .metrics:
            guard let metrics else { return loop.makeSucceededFuture(.text(.notImplemented, "metrics are not wired in this build")) }
            return metrics().hop(to: loop).map {
                DashboardResponse(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: Array($0.utf8))
            }
        case .reloadConfig:
            guard let reload else {
                return loop.makeSucceededFuture(.text(.notImplemented, "reloading the config is not available in this build; restart the broker to apply server.ini changes"))
            }
            return reload().hop(to: loop).map { .text(.ok, $0) }.recover { .text(.internalServerError, "reload failed: \($0)") }
        case .skip(let topic, let group, let partition):
            return skip(topic: topic, group: group, partition: partition, loop: loop)
        default:
            break
        }
        return context(loop: loop).flatMap { context -> EventLoopFuture<DashboardResponse> in
            switch route {
            case .overview: return loop.makeSucceededFuture(self.render(context.overview(), context, json: json))
            case .topics: return loop.makeSucceededFuture(self.render(context.topics(), context, json: json))
            case .config:
                return loop.makeSucceededFuture(self.render(context.config(reloadAvailable: self.reload != nil), context, json: json))
            case .logging: return loop.makeSucceededFuture(self.render(context.logging(self.logLines()), context, json: json))
            case .stats(let item):
                return self.statsText(item: item).map { self.render(context.stats(item: item, text: $0), context, json: json) }
                    .recover { .text(.badGateway, "the broker did not answer stats: \($0)") }
            case .topic(let name, let group):
                return self.groupView(topic: name, group: group, observation: context.observation, loop: loop).map {
                    self.render(context.topic(name, group: $0), context, json: json)
                }
            case .cluster:
                return self.clusterView(loop: loop).map { self.render(context.cluster($0), context, json: json) }
            case .metrics, .reloadConfig, .skip:
                return loop.makeSucceededFuture(.text(.internalServerError, "unreachable"))
            }
        }
    }
}
