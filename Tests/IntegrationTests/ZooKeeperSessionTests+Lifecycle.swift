import Foundation
import ProtocolCore
import Runtime
import Testing

/// Session expiry and renewal, server restarts, close, and no server at all (reference §3.2:
/// "On ZK session expiry everything is re-registered"; toolchain.md §2).
extension ZooKeeperSessionTests {
    @Test(.enabled(if: serverInstalled, "needs zookeeper and java (scripts/install-deps.sh)"))
    func expiryIsReportedAndTheSessionRenewed() async throws {
        try await withServer { server in
            let (session, recorder) = try await connectedSession(server, timeoutMs: 2000)
            defer { session.close() }
            #expect(await session.perform(.create(path: "/x", data: [], mode: .ephemeral)) == .created(path: "/x"))
            session.submit(.getData(path: "/x", watch: true), tag: 1)
            #expect(await recorder.waitForReply(tag: 1) == .data([]))

            try await session.expireForTesting()
            #expect(await recorder.wait { $0.sessionStates.last == .connected && $0.sessionStates.contains(.expired) })
            // The twin takes the connection over first, so the original may lose it and get it
            // back (`.connecting`, `.connected`) before it learns of the expiry.
            let states = recorder.sessionStates
            #expect(states.first == .connected && states.suffix(2) == [.expired, .connected], "\(states)")
            #expect(states.filter { $0 == .expired }.count == 1, "\(states)")
            #expect(zip(states, states.dropFirst()).allSatisfy { $0 != $1 }, "one event per change: \(states)")
            // The expired session's ephemeral node went with it; the new session can create it again.
            #expect(await session.perform(.exists(path: "/x", watch: false)) == .exists(false))
            // The data watch on /x fired only if the original held the session when the twin
            // ended it; either way it died with the session: the new /x's deletion is silent.
            let watchesBefore = recorder.watches
            #expect(watchesBefore.allSatisfy { $0 == .deleted(path: "/x") }, "\(watchesBefore)")
            #expect(await session.perform(.create(path: "/x", data: [], mode: .ephemeral)) == .created(path: "/x"))
            let dump = try #require(server.fourLetterWord("dump"))
            #expect(dump.contains("/x"), "\(dump)")
            #expect(await session.perform(.delete(path: "/x")) == .deleted)
            session.submit(.exists(path: "/", watch: false), tag: 2)
            #expect(await recorder.waitForReply(tag: 2) == .exists(true))
            #expect(recorder.watches == watchesBefore)
        }
    }

    /// A server that stops answering for three session timeouts (toolchain.md §2: SIGSTOP).
    /// On SIGCONT the server's session expirer races the client's queued reconnection: either
    /// the session expired (`.expired`, a new session, the ephemeral node gone) or the
    /// reconnection won (same session, node intact). The events must say which one happened.
    @Test(.enabled(if: serverInstalled, "needs zookeeper and java (scripts/install-deps.sh)"))
    func suspendedServerLosesTheConnection() async throws {
        try await withServer { server in
            let (session, recorder) = try await connectedSession(server, timeoutMs: 1000)
            defer { session.close() }
            #expect(await session.perform(.create(path: "/s", data: [], mode: .ephemeral)) == .created(path: "/s"))
            server.suspend()
            #expect(await recorder.wait(timeoutMs: 3000) { $0.sessionStates.last == .connecting })
            try await Task.sleep(for: .seconds(2))
            server.resume()
            #expect(await recorder.wait { $0.sessionStates.count > 2 && $0.sessionStates.last == .connected })
            let states = recorder.sessionStates
            #expect(states.first == .connected && states.last == .connected, "\(states)")
            #expect(zip(states, states.dropFirst()).allSatisfy { $0 != $1 }, "one event per change: \(states)")
            let expired = states.contains(.expired)
            #expect(await session.perform(.exists(path: "/s", watch: false)) == .exists(!expired), "\(states)")
        }
    }

    @Test(.enabled(if: serverInstalled, "needs zookeeper and java (scripts/install-deps.sh)"))
    func serverRestartKeepsTheSession() async throws {
        try await withServer { server in
            let (session, recorder) = try await connectedSession(server, timeoutMs: 10_000)
            defer { session.close() }
            #expect(await session.perform(.create(path: "/r", data: [], mode: .ephemeral)) == .created(path: "/r"))
            server.stop()
            #expect(await recorder.wait { $0.sessionStates.last == .connecting })
            try server.start()
            #expect(await recorder.wait { $0.sessionStates.count >= 3 })
            #expect(recorder.sessionStates == [.connected, .connecting, .connected])
            #expect(await session.perform(.exists(path: "/r", watch: false)) == .exists(true))
        }
    }

    @Test(.enabled(if: serverInstalled, "needs zookeeper and java (scripts/install-deps.sh)"))
    func closeRemovesEphemeralsAndIsIdempotent() async throws {
        try await withServer { server in
            // A 20 s session: only the close can make the node vanish within the test.
            let (owner, ownerEvents) = try await connectedSession(server, timeoutMs: 20_000)
            let (observer, _) = try await connectedSession(server)
            defer { observer.close() }
            #expect(await owner.perform(.create(path: "/c", data: [], mode: .ephemeral)) == .created(path: "/c"))
            #expect(await observer.perform(.exists(path: "/c", watch: false)) == .exists(true))
            owner.close()
            #expect(await observer.perform(.exists(path: "/c", watch: false)) == .exists(false))
            #expect(server.fourLetterWord("dump")?.contains("/c") == false)

            owner.close()
            let before = ownerEvents.all.count
            owner.submit(.exists(path: "/", watch: false), tag: 9)
            #expect(await owner.perform(.exists(path: "/", watch: false)) == .failed(.sessionExpired))
            #expect(await owner.waitUntilConnected(timeoutMs: 100) == false)
            owner.waitForDeliveries()
            #expect(ownerEvents.all.count == before, "no event after close")
        }
    }

    @Test func noServerMeansNoEventsAndAPromptClose() async throws {
        let port = try LocalProcess.freePort()
        let recorder = EventRecorder()
        let session = try ZooKeeperSession(connect: "127.0.0.1:\(port)", sessionTimeoutMs: 2000,
                                           logger: Self.logger, sink: recorder.sink)
        #expect(await session.waitUntilConnected(timeoutMs: 1500) == false)
        session.submit(.create(path: "/n", data: [], mode: .persistent), tag: 1)
        let reply = await recorder.waitForReply(tag: 1, timeoutMs: 10_000)
        #expect(reply == .failed(.connectionLoss), "\(String(describing: reply))")
        #expect(recorder.sessionStates.allSatisfy { $0 == .connecting }, "\(recorder.sessionStates)")
        // Closing must not wait for a server that never answers: a deadline against a hang (the
        // C library gives up on its connection attempts every few seconds), not a speed check.
        let started = Date()
        session.close()
        #expect(Date().timeIntervalSince(started) < 15)
        #expect(session.negotiatedSessionTimeoutMs == 2000, "the requested timeout until a server grants one")
    }
}
