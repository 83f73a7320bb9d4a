import Foundation
import Logging
import ProtocolCore
import Runtime
import Testing
import ProcessHarness

/// `ZooKeeperSession` against Debian's ZooKeeper 3.8, started per test by `ZooKeeperServer`
/// (reference §3: MetaQ's use of ZooKeeper; toolchain.md §1–§2: the C client and the server).
@Suite("ZooKeeper session against a real server", .serialized)
struct ZooKeeperSessionTests {
    static let serverInstalled = ZooKeeperServer.isInstalled

    /// Quiet unless METAQ_TEST_LOG names a level: the no-server and restart tests make the C
    /// library log a refused connection every few milliseconds.
    static let logger: Logger = {
        var logger = Logger(label: "metaq.zookeeper-test") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = ProcessInfo.processInfo.environment["METAQ_TEST_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
        return logger
    }()

    func withServer(_ body: (ZooKeeperServer) async throws -> Void) async throws {
        let server = try ZooKeeperServer()
        defer { server.stop() }
        try server.start()
        try await body(server)
    }

    func connectedSession(_ server: ZooKeeperServer, timeoutMs: Int = 4000) async throws -> (ZooKeeperSession, EventRecorder) {
        let recorder = EventRecorder()
        let session = try ZooKeeperSession(connect: server.connectString, sessionTimeoutMs: timeoutMs,
                                           logger: Self.logger, sink: recorder.sink)
        guard await session.waitUntilConnected(timeoutMs: 15_000) else {
            session.close()
            throw HarnessError("no connection to \(server.connectString)")
        }
        return (session, recorder)
    }

    @Test(.enabled(if: serverInstalled, "needs zookeeper and java (scripts/install-deps.sh)"))
    func createsReadsWritesAndLists() async throws {
        try await withServer { server in
            let (session, recorder) = try await connectedSession(server)
            defer { session.close() }
            #expect(recorder.sessionStates == [.connected])
            #expect(session.negotiatedSessionTimeoutMs == 4000)
            #expect(await session.perform(.create(path: "/meta", data: Array("root".utf8), mode: .persistent)) == .created(path: "/meta"))
            #expect(await session.perform(.create(path: "/meta/e", data: [], mode: .ephemeral)) == .created(path: "/meta/e"))
            // The 10-digit counter is the parent's child version: one child was created before.
            #expect(await session.perform(.create(path: "/meta/s-", data: [1], mode: .persistentSequential))
                == .created(path: "/meta/s-0000000001"))
            #expect(await session.perform(.create(path: "/meta/s-", data: [2], mode: .ephemeralSequential))
                == .created(path: "/meta/s-0000000002"))

            #expect(await session.perform(.getData(path: "/meta", watch: false)) == .data(Array("root".utf8)))
            #expect(await session.perform(.setData(path: "/meta", data: Array("new".utf8))) == .dataSet)
            #expect(await session.perform(.getData(path: "/meta", watch: false)) == .data(Array("new".utf8)))
            #expect(await session.perform(.getData(path: "/meta/e", watch: false)) == .data([]))
            #expect(await session.perform(.getData(path: "/meta/s-0000000002", watch: false)) == .data([2]))
            guard case .children(let names) = await session.perform(.getChildren(path: "/meta", watch: false)) else {
                Issue.record("no children")
                return
            }
            #expect(names.sorted() == ["e", "s-0000000001", "s-0000000002"])
            #expect(await session.perform(.exists(path: "/meta/e", watch: false)) == .exists(true))
            #expect(await session.perform(.exists(path: "/meta/none", watch: false)) == .exists(false))

            // The server's view: exactly the two ephemeral nodes belong to the session.
            let dump = try #require(server.fourLetterWord("dump"))
            #expect(dump.contains("/meta/e") && dump.contains("/meta/s-0000000002"), "\(dump)")
            #expect(!dump.contains("/meta/s-0000000001"), "\(dump)")
        }
    }

    @Test(.enabled(if: serverInstalled, "needs zookeeper and java (scripts/install-deps.sh)"))
    func serverClampsTheSessionTimeout() async throws {
        try await withServer { server in
            let (session, _) = try await connectedSession(server, timeoutMs: 100)
            defer { session.close() }
            #expect(session.negotiatedSessionTimeoutMs == 400, "2 × tickTime (toolchain.md §1)")
        }
    }

    @Test(.enabled(if: serverInstalled, "needs zookeeper and java (scripts/install-deps.sh)"))
    func failuresMapToCoordinationErrors() async throws {
        try await withServer { server in
            let (session, _) = try await connectedSession(server)
            defer { session.close() }
            #expect(await session.perform(.create(path: "/a", data: [], mode: .persistent)) == .created(path: "/a"))
            #expect(await session.perform(.create(path: "/a/b", data: [], mode: .persistent)) == .created(path: "/a/b"))
            #expect(await session.perform(.create(path: "/a", data: [], mode: .persistent)) == .failed(.nodeExists))
            #expect(await session.perform(.delete(path: "/a")) == .failed(.notEmpty))
            #expect(await session.perform(.delete(path: "/none")) == .failed(.noNode))
            #expect(await session.perform(.getData(path: "/none", watch: false)) == .failed(.noNode))
            #expect(await session.perform(.setData(path: "/none", data: [1])) == .failed(.noNode))
            #expect(await session.perform(.getChildren(path: "/none", watch: false)) == .failed(.noNode))
            #expect(await session.perform(.create(path: "/none/child", data: [], mode: .persistent)) == .failed(.noNode))
            // Refused by the C library before it is sent: still exactly one reply.
            #expect(await session.perform(.create(path: "relative", data: [], mode: .persistent))
                == .failed(.other(code: -8, message: "bad arguments")))
            #expect(await session.perform(.delete(path: "/a/b")) == .deleted)
            #expect(await session.perform(.delete(path: "/a")) == .deleted)
            #expect(await session.perform(.exists(path: "/a", watch: false)) == .exists(false))
        }
    }

    @Test(.enabled(if: serverInstalled, "needs zookeeper and java (scripts/install-deps.sh)"))
    func watchesFireOnce() async throws {
        try await withServer { server in
            let (session, recorder) = try await connectedSession(server)
            defer { session.close() }
            #expect(await session.perform(.create(path: "/w", data: [], mode: .persistent)) == .created(path: "/w"))
            session.submit(.getChildren(path: "/w", watch: true), tag: 1)
            #expect(await recorder.waitForReply(tag: 1) == .children([]))
            #expect(await session.perform(.create(path: "/w/a", data: [], mode: .persistent)) == .created(path: "/w/a"))
            #expect(await session.perform(.create(path: "/w/b", data: [], mode: .persistent)) == .created(path: "/w/b"))
            // Everything the sink got before this reply is in the recorder once it arrives.
            session.submit(.exists(path: "/w", watch: false), tag: 2)
            #expect(await recorder.waitForReply(tag: 2) == .exists(true))
            #expect(recorder.watches == [.childrenChanged(path: "/w")], "one-shot: the second child does not fire it again")

            session.submit(.getData(path: "/w/a", watch: true), tag: 3)
            #expect(await recorder.waitForReply(tag: 3) == .data([]))
            #expect(await session.perform(.setData(path: "/w/a", data: [7])) == .dataSet)
            session.submit(.exists(path: "/w/c", watch: true), tag: 4)
            #expect(await recorder.waitForReply(tag: 4) == .exists(false))
            #expect(await session.perform(.create(path: "/w/c", data: [], mode: .persistent)) == .created(path: "/w/c"))
            session.submit(.getData(path: "/w/b", watch: true), tag: 5)
            #expect(await recorder.waitForReply(tag: 5) == .data([]))
            #expect(await session.perform(.delete(path: "/w/b")) == .deleted)
            #expect(await session.perform(.setData(path: "/w/a", data: [8])) == .dataSet)
            session.submit(.exists(path: "/w", watch: false), tag: 6)
            #expect(await recorder.waitForReply(tag: 6) == .exists(true))
            #expect(recorder.watches == [
                .childrenChanged(path: "/w"), .dataChanged(path: "/w/a"), .created(path: "/w/c"), .deleted(path: "/w/b"),
            ])
        }
    }

    @Test(.enabled(if: serverInstalled, "needs zookeeper and java (scripts/install-deps.sh)"))
    func repliesArriveInSubmissionOrder() async throws {
        try await withServer { server in
            let (session, recorder) = try await connectedSession(server)
            defer { session.close() }
            #expect(await session.perform(.create(path: "/order", data: [], mode: .persistent)) == .created(path: "/order"))
            // Some fail on the server (duplicates), some in the C library before sending (bad path).
            func path(_ index: Int) -> String {
                if index % 50 == 49 { return "bad-\(index)" }
                return index % 7 == 3 ? "/order/n0" : "/order/n\(index)"
            }
            for index in 0..<200 {
                session.submit(.create(path: path(index), data: [], mode: .persistent), tag: UInt64(index))
            }
            await recorder.wait { $0.replies.count >= 200 }
            let replies = recorder.replies
            #expect(replies.map(\.tag) == (0..<200).map(UInt64.init))
            for (tag, reply) in replies {
                let index = Int(tag)
                if index % 50 == 49 {
                    #expect(reply == .failed(.other(code: -8, message: "bad arguments")))
                } else if index % 7 == 3 {
                    #expect(reply == .failed(.nodeExists))
                } else {
                    #expect(reply == .created(path: path(index)))
                }
            }
        }
    }
}
