import BrokerCore
import Foundation
import Glibc
import Logging
import ProtocolCore
import StoreCore
import Synchronization
import Testing
@testable import Runtime

/// Issue 17: the runtime carries the node's master-link actions over a real socket (the node's
/// own rules are BrokerCore's; here the actions are performed by hand, as the node would ask).
/// Every wait is for an observable event (a log line, a byte on the socket) with a deadline.
@Suite("Master link of a slave (runtime driver)", .serialized)
struct MasterLinkTests {
    /// A server whose node is open but not started: nothing but the test asks for links.
    static func withServer(maxTransferSize: Int = 1 << 20,
                           _ body: (BrokerServer, LogRecorder) throws -> Void) throws {
        try withTemporaryDirectory { directory in
            let ini = "[system]\nbrokerId=1\ndataPath=\(directory)\nmaxTransferSize=\(maxTransferSize)\n[topic=test]\n"
            let config = try ServerConfig(parsing: ini, path: "test.ini")
            let settings = BrokerNode.Settings(brokerURI: "meta://127.0.0.1:8123", version: "t", configFile: Array(ini.utf8), seed: 1)
            let (node, _) = try BrokerNode.open(storage: FileStorage(), config: config, defaultDataPath: directory,
                                                settings: settings, clock: NodeClock(now: Clocks.monotonic(), wallMs: Clocks.wallMs()))
            let recorder = LogRecorder()
            let server = BrokerServer(node: node, logger: Logger(label: "test") { _ in recorder })
            defer {
                try? server.connectionGroup?.syncShutdownGracefully()
                try? server.group.syncShutdownGracefully()
            }
            try body(server, recorder)
        }
    }

    static func perform(_ server: BrokerServer, _ action: BrokerNode.Action) throws {
        // Actions are not Sendable (they may carry files); this one is made here and only used there.
        nonisolated(unsafe) let action = action
        try server.loop.submit { server.perform(action) }.wait()
    }

    static func links(_ server: BrokerServer) throws -> [UInt64] {
        try server.loop.submit { server.masterLinks.keys.sorted() }.wait()
    }

    @Test func aRefusedConnectionIsReportedAndLoggedWithoutALinePerRetry() throws {
        let port = try TestSocket.refusingPort()
        try Self.withServer { server, log in
            for link in UInt64(1)...3 {
                try Self.perform(server, .connectToMaster(link: link, uri: "meta://127.0.0.1:\(port)"))
                #expect(try log.wait { _ in try Self.links(server).isEmpty }, "link \(link) ended")
            }
            let lines = log.lines(containing: "cannot connect to the master")
            #expect(lines.map { $0.metadata["failedAttempts"] } == ["1", "2"], "failures 1 and 2 are logged, 3 is not")
            #expect(lines.allSatisfy { $0.metadata["error"] == "Connection refused (ECONNREFUSED)" }, "\(lines)")
            #expect(lines.first?.metadata["master"] == "meta://127.0.0.1:\(port)")
        }
    }

    @Test func aURIThatIsNotAnAddressFailsTheAttempt() throws {
        try Self.withServer { server, log in
            try Self.perform(server, .connectToMaster(link: 7, uri: "meta://no-port"))
            #expect(try log.wait { _ in try Self.links(server).isEmpty })
            #expect(log.lines(containing: "not a meta://host:port address").count == 1)
        }
    }

    /// Open, a request out encoded as the wire has it, the master closing: reported and logged.
    @Test func framesGoOutAndTheMastersCloseIsReported() throws {
        let master = try TestSocket.listener()
        defer { master.close() }
        try Self.withServer { server, log in
            try Self.perform(server, .connectToMaster(link: 1, uri: "meta://127.0.0.1:\(master.port)"))
            let peer = try #require(master.accept())
            defer { peer.close() }
            #expect(log.wait { $0.lines(containing: "connected to the master").count == 1 })
            let get = Frame.get(GetCommand(topic: "test", group: "meta-slave-group_1", partition: 0, offset: 0,
                                           maxSize: 1 << 20, opaque: 3))
            try Self.perform(server, .sendToMaster(link: 1, get))
            #expect(peer.read(count: get.encoded().count) == get.encoded())
            shutdown(peer.fd, Int32(SHUT_RDWR))
            #expect(try log.wait { _ in try Self.links(server).isEmpty })
            #expect(log.lines(containing: "the connection to the master closed").count == 1)
        }
    }

    /// After `.closeMasterLink` nothing is reported for the link, even as the socket closes.
    @Test func aLinkTheNodeClosesIsNotReported() throws {
        let master = try TestSocket.listener()
        defer { master.close() }
        try Self.withServer { server, log in
            try Self.perform(server, .connectToMaster(link: 2, uri: "meta://127.0.0.1:\(master.port)"))
            let peer = try #require(master.accept())
            defer { peer.close() }
            #expect(log.wait { $0.lines(containing: "connected to the master").count == 1 })
            try Self.perform(server, .closeMasterLink(link: 2))
            #expect(peer.read(count: 1) == [], "the peer sees the connection end")
            try server.loop.submit {}.wait()
            #expect(try Self.links(server).isEmpty)
            #expect(log.lines(containing: "the connection to the master closed").isEmpty)
            #expect(log.lines(containing: "cannot connect").isEmpty)
        }
    }

    /// An answer larger than the largest fetch (plus slack) closes the link before it is read.
    @Test func anOversizedAnswerClosesTheLink() throws {
        let master = try TestSocket.listener()
        defer { master.close() }
        try Self.withServer(maxTransferSize: 64 << 10) { server, log in
            let limit = try server.loop.submit { server.masterLinkLimits.maxBodyBytes }.wait()
            #expect(limit == (1 << 20) + (64 << 10), "the fetcher asks at least 1 MiB; 64 KiB of slack")
            try Self.perform(server, .connectToMaster(link: 3, uri: "meta://127.0.0.1:\(master.port)"))
            let peer = try #require(master.accept())
            defer { peer.close() }
            #expect(log.wait { $0.lines(containing: "connected to the master").count == 1 })
            peer.write(Array("value \(limit + 1) 3\r\n".utf8))
            #expect(try log.wait { _ in try Self.links(server).isEmpty })
            let closed = log.lines(containing: "the connection to the master closed")
            #expect(closed.count == 1 && closed.first?.metadata["error"] != nil, "\(closed)")
        }
        try Self.withServer(maxTransferSize: 4 << 20) { server, _ in
            let limit = try server.loop.submit { server.masterLinkLimits.maxBodyBytes }.wait()
            #expect(limit == (4 << 20) + (64 << 10))
        }
    }
}

/// Log lines kept for assertions.
final class LogRecorder: LogHandler, Sendable {
    struct Line: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    /// Guards the lines: the server's loop appends, the test reads.
    private let recorded = Mutex<[Line]>([])

    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }

    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    func log(event: LogEvent) {
        let fields = (event.metadata ?? [:]).mapValues { "\($0)" }
        recorded.withLock { $0.append(Line(level: event.level, message: "\(event.message)", metadata: fields)) }
    }

    func lines(containing text: String) -> [Line] {
        recorded.withLock { lines in lines.filter { $0.message.contains(text) } }
    }

    /// Polls `condition` until it holds, at most `timeoutSeconds`; whether it held.
    func wait(timeoutSeconds: Double = 15, _ condition: (LogRecorder) throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        repeat {
            if try condition(self) { return true }
            usleep(5000)
        } while Date() < deadline
        return try condition(self)
    }
}

/// Plain sockets on 127.0.0.1 for the far end of a link; every blocking step has a deadline.
struct TestSocket {
    let fd: Int32
    let port: Int

    /// A listening socket on a free port.
    static func listener() throws -> TestSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 4) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard fd >= 0, ok else { throw POSIXError(.EADDRNOTAVAIL) }
        return TestSocket(fd: fd, port: Int(UInt16(bigEndian: address.sin_port)))
    }

    /// A port nothing listens on (bound, then closed).
    static func refusingPort() throws -> Int {
        let socket = try listener()
        socket.close()
        return socket.port
    }

    func accept(timeoutMs: Int32 = 15_000) -> TestSocket? {
        guard wait(POLLIN, timeoutMs: timeoutMs) else { return nil }
        let client = Glibc.accept(fd, nil, nil)
        return client >= 0 ? TestSocket(fd: client, port: port) : nil
    }

    /// Up to `count` bytes, as many as arrive before the peer closes or `timeoutMs` passes
    /// without a byte; empty at end of stream.
    func read(count: Int, timeoutMs: Int32 = 15_000) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: max(count, 1))
        while bytes.count < count, wait(POLLIN, timeoutMs: timeoutMs) {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, count - bytes.count) }
            guard n > 0 else { break }
            bytes += buffer[0..<n]
        }
        return bytes
    }

    func write(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    func close() { Glibc.close(fd) }

    private func wait(_ events: Int32, timeoutMs: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(events), revents: 0)
        return poll(&entry, 1, timeoutMs) == 1
    }
}
