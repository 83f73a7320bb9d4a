import ProtocolCore

/// Connection loss, session expiry and closing (DESIGN.md §6 faults). The simulator decides
/// when; these decide what each side sees, as a ZooKeeper 3.8 server and client would.
extension SimZooKeeper {
    /// The client loses its connection; the session stays alive at the server for its timeout.
    /// Replies not yet heard become `.connectionLoss` (their requests may well have taken
    /// effect: that is what real clients see), then the client hears `.connecting`. Requests fail
    /// `.connectionLoss` until `reconnect`. Watches the client knows of stay armed; one armed by
    /// a request whose reply was lost is gone, as the client cannot re-arm it. Only a connected
    /// session can be disconnected (otherwise nothing happens).
    public func disconnect(_ session: SimZKSession, now: Instant) {
        let client = self.client(session)
        guard client.status == .connected else { return }
        var kept: [Outgoing] = []
        var lostEvents: [WatchEvent] = []
        for var item in client.outbox {
            switch item.event {
            case .reply(let tag, _):
                item.event = .reply(tag: tag, .failed(.connectionLoss))
                item.arming = nil
                kept.append(item)
            case .watch(let event):
                // Lost on the wire. The client re-arms the watches it knows of when it is back and
                // the server fires them at once (their node changed): told after `.connected`.
                if !client.confirmed.isDisjoint(with: event.watchKeys) { lostEvents.append(event) }
            case .session:
                kept.append(item)
            }
        }
        client.outbox = kept
        client.held = lostEvents
        disarmWatches(of: client.id, keeping: client.confirmed.subtracting(lostEvents.flatMap(\.watchKeys)))
        client.status = .disconnected(since: now)
        enqueue(.session(.connecting), to: session.slot)
    }

    /// The client is back. Within the session timeout: `.connected`, ephemeral nodes and watches
    /// intact, and the watches that fired meanwhile are told after it. Past the timeout the
    /// server has expired the session: `.expired`, then the handle renews itself (`expire`).
    public func reconnect(_ session: SimZKSession, now: Instant) {
        let client = self.client(session)
        if case .disconnected(let since) = client.status, isOverdue(client, since: since, now: now) {
            expireAtServer(session.slot)
        }
        switch client.status {
        case .disconnected:
            client.status = .connected
            enqueue(.session(.connected), to: session.slot)
            let held = client.held
            client.held = []
            for event in held { enqueue(.watch(event), to: session.slot) }
        case .expiredWhileDisconnected:
            client.status = .expired
            enqueue(.session(.expired), to: session.slot)
        case .connected, .expired, .closed:
            return
        }
    }

    /// The server expires the session now: its ephemeral nodes are deleted (firing other
    /// sessions' watches) and its watches dropped. The client hears the replies it was still
    /// waiting for as `.sessionExpired`, then `.session(.expired)`; requests submitted until then
    /// fail `.sessionExpired`. When `.expired` is delivered the handle opens a new session (new
    /// `id`, requests go to it) and `.session(.connected)` follows — the runtime's contract.
    public func expire(_ session: SimZKSession) {
        let client = self.client(session)
        switch client.status {
        case .closed, .expired:
            return
        case .connected:
            // A client library fails what it still waits for with the session's end.
            client.outbox = client.outbox.compactMap { item in
                var item = item
                switch item.event {
                case .reply(let tag, _):
                    item.event = .reply(tag: tag, .failed(.sessionExpired))
                    item.arming = nil
                case .watch:
                    return nil
                case .session:
                    break
                }
                return item
            }
            expireAtServer(session.slot)
        case .disconnected:
            expireAtServer(session.slot)
        case .expiredWhileDisconnected:
            break
        }
        client.status = .expired
        enqueue(.session(.expired), to: session.slot)
    }

    /// Virtual time has reached `now`: the server expires every session whose client has been
    /// disconnected for its whole timeout. The client learns it only when it reconnects.
    public func advance(to now: Instant) {
        for id in liveSessions.keys.sorted() {
            guard let slot = liveSessions[id] else { continue }
            let client = clients[slot]
            if case .disconnected(let since) = client.status, isOverdue(client, since: since, now: now) {
                expireAtServer(slot)
            }
        }
    }

    /// Closes the handle: its ephemeral nodes are deleted and it hears nothing more (requests
    /// submitted afterwards are dropped).
    func close(_ slot: Int) {
        let client = clients[slot]
        switch client.status {
        case .closed:
            return
        case .connected, .disconnected:
            endSession(slot)
        case .expiredWhileDisconnected, .expired:
            break
        }
        client.status = .closed
        client.outbox = []
    }

    private func client(_ session: SimZKSession) -> Client {
        precondition(session.zooKeeper === self, "a session of another SimZooKeeper")
        return clients[session.slot]
    }

    private func isOverdue(_ client: Client, since: Instant, now: Instant) -> Bool {
        now.nanoseconds - since.nanoseconds >= client.timeoutMs * 1_000_000
    }

    /// The server side of an expiry; the client side is left to the caller.
    private func expireAtServer(_ slot: Int) {
        endSession(slot)
        if case .disconnected = clients[slot].status { clients[slot].status = .expiredWhileDisconnected }
    }

    /// The session ends at the server: watches dropped, then ephemerals deleted (in path order,
    /// so others hear the deletions in the same order every run).
    private func endSession(_ slot: Int) {
        let client = clients[slot]
        liveSessions[client.id] = nil
        disarmWatches(of: client.id)
        client.held = []
        client.confirmed = []
        for path in nodes.keys.sorted() where nodes[path]?.ephemeralOwner == client.id {
            remove(path)
        }
    }
}
