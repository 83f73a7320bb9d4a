import ProtocolCore
import Sim
import Testing

/// Connection loss, expiry and close of the simulated ZooKeeper (DESIGN.md §6 faults).
@Suite struct SimZooKeeperFaultTests {
    @Test func disconnectFailsWhatIsInFlightButKeepsTheSession() {
        let h = ZKHarness()
        let a = h.open("a"), b = h.open("b")
        _ = h.ask(a, .create(path: "/eph", data: [], mode: .ephemeral))
        _ = h.ask(b, .create(path: "/w", data: [], mode: .persistent))
        _ = h.ask(a, .getData(path: "/w", watch: true))
        let id = a.session.id
        let inFlight = a.send(.create(path: "/x", data: [], mode: .persistent))
        let lostAt = h.now
        h.zk.disconnect(a.session, now: lostAt)
        let whileAway = a.send(.getData(path: "/w", watch: false))
        h.run()
        // The create took effect although its client hears connection loss.
        #expect(h.zk.data(at: "/x") == [])
        #expect(Array(a.events.suffix(3)) == [.reply(tag: inFlight, .failed(.connectionLoss)), .session(.connecting),
                                               .reply(tag: whileAway, .failed(.connectionLoss))])
        #expect(a.session.status == .disconnected(since: lostAt))
        _ = h.ask(b, .setData(path: "/w", data: [1]))
        #expect(a.watchEvents == [], "a disconnected client hears no watch")
        h.zk.reconnect(a.session, now: h.now)
        h.run()
        #expect(Array(a.events.suffix(2)) == [.session(.connected), .watch(.dataChanged(path: "/w"))])
        #expect(a.session.id == id)
        #expect(h.zk.ephemeralOwner(of: "/eph") == id)
        #expect(h.ask(a, .exists(path: "/eph", watch: false)) == .exists(true))
    }

    @Test func watchesSurviveAReconnectionUntilTheyFire() {
        let h = ZKHarness()
        let a = h.open("a"), b = h.open("b")
        _ = h.ask(b, .create(path: "/p", data: [], mode: .persistent))
        _ = h.ask(a, .getChildren(path: "/p", watch: true))
        _ = h.ask(a, .exists(path: "/later", watch: true))
        h.zk.disconnect(a.session, now: h.now)
        h.zk.reconnect(a.session, now: h.now)
        h.run()
        _ = h.ask(b, .create(path: "/p/c", data: [], mode: .persistent))
        _ = h.ask(b, .create(path: "/later", data: [], mode: .persistent))
        #expect(a.watchEvents == [.childrenChanged(path: "/p"), .created(path: "/later")])
        #expect(a.states == [.connected, .connecting, .connected])
    }

    /// A client re-arms only the watches it heard the reply for; one whose reply was lost is gone.
    @Test func aWatchWhoseReplyWasLostIsNotReArmed() {
        let h = ZKHarness()
        let a = h.open("a"), b = h.open("b")
        _ = h.ask(b, .create(path: "/w", data: [], mode: .persistent))
        let tag = a.send(.getData(path: "/w", watch: true))
        h.zk.disconnect(a.session, now: h.now)
        h.run()
        #expect(a.reply(tag) == .failed(.connectionLoss))
        h.zk.reconnect(a.session, now: h.now)
        h.run()
        _ = h.ask(b, .setData(path: "/w", data: [1]))
        #expect(a.watchEvents == [])
    }

    @Test func aWatchEventLostOnTheWireIsToldAfterReconnecting() {
        let h = ZKHarness()
        let a = h.open("a"), b = h.open("b")
        _ = h.ask(b, .create(path: "/w", data: [], mode: .persistent))
        _ = h.ask(a, .getData(path: "/w", watch: true))
        _ = b.send(.setData(path: "/w", data: [1]))
        h.zk.disconnect(a.session, now: h.now)
        h.run()
        #expect(a.watchEvents == [])
        h.zk.reconnect(a.session, now: h.now)
        h.run()
        #expect(Array(a.events.suffix(2)) == [.session(.connected), .watch(.dataChanged(path: "/w"))])
        _ = h.ask(b, .setData(path: "/w", data: [2]))
        #expect(a.watchEvents.count == 1, "the watch fired once")
    }

    /// The server expires a session whose client stayed away for its whole timeout; the client
    /// learns it only when it comes back.
    @Test func aClientAwayLongerThanItsTimeoutIsExpiredByTheServer() {
        let h = ZKHarness()
        let a = h.open("a", timeoutMs: 100), b = h.open("b")
        _ = h.ask(a, .create(path: "/eph", data: [], mode: .ephemeral))
        _ = h.ask(b, .exists(path: "/eph", watch: true))
        let old = a.session.id
        let since = h.nowNs
        h.zk.disconnect(a.session, now: h.now)
        h.zk.advance(to: Instant(nanoseconds: since + 99_999_999))
        #expect(h.zk.ephemeralOwner(of: "/eph") == old)
        h.zk.advance(to: Instant(nanoseconds: since + 100_000_000))
        h.run()
        #expect(h.zk.data(at: "/eph") == nil)
        #expect(b.watchEvents == [.deleted(path: "/eph")])
        #expect(a.states == [.connected, .connecting])
        #expect(a.session.status == .expiredWhileDisconnected)
        #expect(h.ask(a, .exists(path: "/", watch: false)) == .failed(.connectionLoss))
        h.zk.reconnect(a.session, now: h.now)
        h.run()
        #expect(a.states == [.connected, .connecting, .expired, .connected])
        #expect(a.session.id != old)
        #expect(h.ask(a, .create(path: "/eph", data: [], mode: .ephemeral)) == .created(path: "/eph"))
        #expect(h.zk.ephemeralOwner(of: "/eph") == a.session.id)
    }

    @Test func reconnectingPastTheTimeoutFindsTheSessionExpired() {
        let h = ZKHarness()
        let a = h.open("a", timeoutMs: 100)
        _ = h.ask(a, .create(path: "/eph", data: [], mode: .ephemeral))
        h.zk.disconnect(a.session, now: h.now)
        h.zk.reconnect(a.session, now: h.now.adding(milliseconds: 100))
        #expect(h.zk.data(at: "/eph") == nil)
        h.run()
        #expect(a.states == [.connected, .connecting, .expired, .connected])
    }

    @Test func expiryDeletesEphemeralsTellsOthersAndRenewsTheSession() {
        let h = ZKHarness()
        let a = h.open("a"), b = h.open("b")
        _ = h.ask(b, .create(path: "/ids", data: [], mode: .persistent))
        _ = h.ask(b, .create(path: "/w", data: [], mode: .persistent))
        _ = h.ask(a, .create(path: "/ids/a", data: [], mode: .ephemeral))
        _ = h.ask(a, .create(path: "/owner", data: [], mode: .ephemeral))
        _ = h.ask(a, .getData(path: "/w", watch: true))
        _ = h.ask(b, .getChildren(path: "/ids", watch: true))
        _ = h.ask(b, .getData(path: "/owner", watch: true))
        let old = a.session.id
        let inFlight = a.send(.create(path: "/made", data: [], mode: .persistent))
        h.zk.expire(a.session)
        #expect(h.zk.paths == ["/", "/ids", "/made", "/w"])
        let beforeRenewal = a.send(.exists(path: "/w", watch: false))
        h.run()
        #expect(b.watchEvents == [.childrenChanged(path: "/ids"), .deleted(path: "/owner")])
        #expect(Array(a.events.suffix(4)) == [.reply(tag: inFlight, .failed(.sessionExpired)), .session(.expired),
                                               .reply(tag: beforeRenewal, .failed(.sessionExpired)), .session(.connected)])
        #expect(a.session.id != old)
        #expect(a.session.status == .connected)
        // The old session's watches went with it.
        _ = h.ask(b, .setData(path: "/w", data: [1]))
        #expect(a.watchEvents == [])
        #expect(h.ask(a, .create(path: "/ids/a", data: [], mode: .ephemeral)) == .created(path: "/ids/a"))
        #expect(h.zk.ephemeralOwner(of: "/ids/a") == a.session.id)
    }

    /// The owner may act on `.expired` at once: what it submits then goes to the new session.
    @Test func requestsSubmittedOnHearingExpiredGoToTheNewSession() {
        let h = ZKHarness()
        let a = h.open("a")
        h.zk.expire(a.session)
        h.run()
        let tag = a.send(.create(path: "/again", data: [], mode: .ephemeral))
        h.run()
        #expect(a.reply(tag) == .created(path: "/again"))
        #expect(h.zk.ephemeralOwner(of: "/again") == a.session.id)
    }

    @Test func closeDeletesEphemeralsAndSilencesTheSession() {
        let h = ZKHarness()
        let a = h.open("a"), b = h.open("b")
        _ = h.ask(a, .create(path: "/eph", data: [], mode: .ephemeral))
        _ = h.ask(a, .create(path: "/kept", data: [], mode: .persistent))
        _ = h.ask(b, .getData(path: "/eph", watch: true))
        let heard = a.events.count
        _ = a.send(.exists(path: "/eph", watch: false))
        a.session.close()
        _ = a.send(.exists(path: "/eph", watch: false))
        h.zk.expire(a.session)
        h.run()
        #expect(a.events.count == heard)
        #expect(a.session.status == .closed)
        #expect(h.zk.paths == ["/", "/kept"])
        #expect(b.watchEvents == [.deleted(path: "/eph")])
    }

    /// One script, run twice: the same events at the same times, in the same order across
    /// sessions (fan-out of watches and expiry of several ephemerals included).
    @Test func theSameScriptGivesTheSameJournal() {
        // Several runs: a Set's order changes from one instance to the next, so a leak shows.
        let first = Self.script()
        #expect(first.journal.count > 40)
        for _ in 0..<4 {
            let again = Self.script()
            #expect(again.journal == first.journal)
            #expect(again.paths == first.paths)
        }
    }

    private static func script() -> (journal: [String], paths: [String]) {
        let h = ZKHarness()
        let clients = (0..<5).map { h.open("c\($0)", timeoutMs: 50) }
        _ = h.ask(clients[0], .create(path: "/g", data: [], mode: .persistent))
        for (i, c) in clients.enumerated() {
            _ = c.send(.create(path: "/g/m-", data: [UInt8(i)], mode: .ephemeralSequential))
            _ = c.send(.create(path: "/g/e\(i)", data: [], mode: .ephemeral))
        }
        h.run()
        for c in clients {
            _ = c.send(.getChildren(path: "/g", watch: true))
            for j in 0..<5 { _ = c.send(.exists(path: "/g/e\(j)", watch: true)) }
        }
        h.run()
        h.zk.expire(clients[1].session)
        h.zk.disconnect(clients[2].session, now: h.now)
        _ = clients[3].send(.delete(path: "/g/e4"))
        h.run(untilNs: h.nowNs + 60_000_000)
        h.zk.advance(to: h.now)
        h.zk.reconnect(clients[2].session, now: h.now)
        for c in clients { _ = c.send(.getChildren(path: "/g", watch: false)) }
        clients[4].session.close()
        h.run()
        return (h.journal, h.zk.paths)
    }
}
