import ProtocolCore

/// The network's calls into the clients: client ids are producers first, then the consumers of
/// every (broker, partition), then one per broker of each ordered producer, then of each routed producer, then one per
/// transactional producer and one per broker of each transaction manager, then one per slave
/// (its master link), then the fetchers of group members (created as members are told to fetch,
/// never reused).
extension Simulation {
    func clientConnectAnswered(client: Int, connection: Int, ok: Bool) {
        if let slave = slave(client: client) { return slave.masterLinkAnswered(connection, ok: ok) }
        withClient(client, connection) { event in event(ok ? .connected : .connectionLost) }
    }

    func clientConnectionLost(client: Int, connection: Int) {
        if let slave = slave(client: client) { return slave.masterLinkLost(connection) }
        withClient(client, connection) { event in event(.connectionLost) }
    }

    /// The slave whose master link uses this client id.
    private func slave(client: Int) -> SimBroker? {
        slaves.isEmpty ? nil : slaves.first { $0.client == client }
            ?? options.replication.flatMap { $0.failover != nil && brokers[$0.master].client == client ? brokers[$0.master] : nil }
    }

    func clientReceive(client: Int, connection: Int, _ bytes: [UInt8]) {
        if let slave = slave(client: client) { return slave.masterLinkReceive(connection, bytes) }
        if client < producers.count {
            let producer = producers[client]
            guard producer.connection == connection else { return }
            producer.decoder.feed(bytes)
            do {
                while let frame = try producer.decoder.next() {
                    producerHandle(client, .frame(frame))
                    if producer.connection != connection { return }
                }
            } catch {
                fail("producer \(client) cannot decode the broker's bytes: \(error)")
            }
        } else if client < firstFetcherClient {
            let c = client - producers.count
            let consumer = consumers[c]
            guard consumer.connection == connection else { return }
            consumer.decoder.feed(bytes)
            do {
                while let frame = try consumer.decoder.next() {
                    consumerHandle(c, .frame(frame))
                    if consumer.connection != connection { return }
                }
            } catch {
                fail("consumer \(c) cannot decode the broker's bytes: \(error)")
            }
        } else if let (producer, link) = orderedLink(client) {
            guard link.connection == connection else { return }
            link.decoder.feed(bytes)
            do {
                while let frame = try link.decoder.next() {
                    linkHandle(producer, link, .frame(frame))
                    if link.connection != connection { return }
                }
            } catch {
                fail("\(producer.name) cannot decode broker\(link.broker)'s bytes: \(error)")
            }
        } else if let (producer, link) = routedLink(client) {
            guard link.connection == connection else { return }
            link.decoder.feed(bytes)
            do {
                while let frame = try link.decoder.next() {
                    routedLinkHandle(producer, link, .frame(frame))
                    if link.connection != connection { return }
                }
            } catch {
                fail("\(producer.name) cannot decode broker\(link.broker)'s bytes: \(error)")
            }
        } else if let link = txLinks[client] {
            txLinkReceive(link, connection, bytes)
        } else {
            guard let fetcher = groupFetchers[client], fetcher.connection == connection else { return }
            fetcher.decoder.feed(bytes)
            do {
                while let frame = try fetcher.decoder.next() {
                    fetcherHandle(fetcher, .frame(frame))
                    if fetcher.connection != connection || groupFetchers[client] == nil { return }
                }
            } catch {
                fail("fetcher \(fetcher.slot) of g\(fetcher.group) cannot decode the broker's bytes: \(error)")
            }
        }
    }

    private enum ClientEvent { case connected, connectionLost }

    private func withClient(_ client: Int, _ connection: Int, _ body: ((ClientEvent) -> Void) -> Void) {
        if client < producers.count {
            guard producers[client].connection == connection else { return }
            body { e in
                if e == .connectionLost { producers[client].connection = nil }
                producerHandle(client, e == .connected ? .connected : .connectionLost)
            }
        } else if client < firstFetcherClient {
            let c = client - producers.count
            guard consumers[c].connection == connection else { return }
            body { e in
                if e == .connectionLost { consumers[c].connection = nil }
                consumerHandle(c, e == .connected ? .connected : .connectionLost)
            }
        } else if let (producer, link) = orderedLink(client) {
            guard link.connection == connection else { return }
            body { e in
                if e == .connectionLost { link.connection = nil }
                linkHandle(producer, link, e == .connected ? .connected : .connectionLost)
            }
        } else if let (producer, link) = routedLink(client) {
            guard link.connection == connection else { return }
            body { e in
                if e == .connectionLost { link.connection = nil }
                routedLinkHandle(producer, link, e == .connected ? .connected : .connectionLost)
            }
        } else if let link = txLinks[client] {
            guard link.connection == connection else { return }
            body { e in
                if e == .connected { txLinkConnected(link) } else { txLinkLost(link) }
            }
        } else {
            guard let fetcher = groupFetchers[client], fetcher.connection == connection else { return }
            body { e in
                if e == .connectionLost { fetcher.connection = nil }
                fetcherHandle(fetcher, e == .connected ? .connected : .connectionLost)
            }
        }
    }
}
