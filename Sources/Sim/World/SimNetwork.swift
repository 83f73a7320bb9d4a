/// The simulated network: TCP-like connections between clients and brokers. Bytes arrive in
/// order after a random delay; a close arrives after the bytes sent before it. A partition
/// between a client and a broker stalls everything between them (connects included) until it
/// heals — TCP neither loses nor reorders, it waits; clients notice by their own timeouts.
/// A crashed broker's connections are reset (the client learns it); a broker that lost power
/// answers nothing at all. A slave's master link (issue 17) is one more connection, the slave its
/// client; a master that restarted resets the link's late bytes, as a rebooted host's kernel does
/// (the world's clients time out instead, as they always have).
final class SimNetwork {
    final class Connection {
        let id: Int
        let client: Int
        let broker: Int
        /// A slave's master link (its client is the slave process).
        let masterLink: Bool
        /// The broker process incarnation the connection reached.
        var incarnation = 0
        var openAtClient = true
        var openAtBroker = false
        var established = false
        var lastToBroker: Int64 = 0
        var lastToClient: Int64 = 0

        init(id: Int, client: Int, broker: Int, masterLink: Bool) {
            self.id = id
            self.client = client
            self.broker = broker
            self.masterLink = masterLink
        }
    }

    unowned let sim: Simulation
    private(set) var connections: [Int: Connection] = [:]
    private var nextId = 1
    /// (broker, client) → the time the partition between them heals.
    private var partitions: [Int: Int64] = [:]

    init(sim: Simulation) { self.sim = sim }

    private func key(_ broker: Int, _ client: Int) -> Int { broker * 1_000_000 + client }

    func healTime(broker: Int, client: Int) -> Int64? {
        guard let until = partitions[key(broker, client)], until > sim.nowNs else { return nil }
        return until
    }

    /// A partition between the connection's ends holds `event` back until it heals (TCP waits;
    /// it neither loses nor reorders). True when it did.
    private func stalled(_ c: Connection, _ event: Simulation.Event) -> Bool {
        guard let heal = healTime(broker: c.broker, client: c.client) else { return false }
        sim.schedule(event, atNs: heal)
        return true
    }

    func partition(broker: Int, client: Int, untilNs: Int64) {
        let k = key(broker, client)
        partitions[k] = max(partitions[k] ?? 0, untilNs)
    }

    func healAll() { partitions.removeAll() }

    private func delay() -> Int64 {
        Int64(sim.rng.int(in: sim.options.networkDelayMs)) * 1_000_000 + Int64(sim.rng.int(in: 1_000...200_000))
    }

    /// A client opens a connection; the answer comes as `connected` or `connectionLost`.
    func connect(client: Int, broker: Int, masterLink: Bool = false) -> Int {
        let connection = Connection(id: nextId, client: client, broker: broker, masterLink: masterLink)
        nextId += 1
        connections[connection.id] = connection
        sim.schedule(.connectArrives(connection.id), afterNs: delay())
        return connection.id
    }

    func connectArrives(_ id: Int) {
        guard let c = connections[id], c.openAtClient else { return }
        if stalled(c, .connectArrives(id)) { return }
        let broker = sim.process(c.broker)
        if broker.isUp {
            c.established = true
            c.openAtBroker = true
            c.incarnation = broker.incarnation
            broker.accept(id)
            sim.schedule(.connectAnswered(id, ok: true), afterNs: delay())
        } else {
            sim.schedule(.connectAnswered(id, ok: false), afterNs: delay())
        }
    }

    func connectAnswered(_ id: Int, ok: Bool) {
        guard let c = connections[id], c.openAtClient else { return }
        if !ok || !c.openAtBroker { c.openAtClient = false }
        sim.clientConnectAnswered(client: c.client, connection: id, ok: ok && c.openAtBroker)
        if !c.openAtClient { connections[id] = nil }
    }

    func sendToBroker(_ id: Int, _ bytes: [UInt8]) {
        guard let c = connections[id], c.openAtClient else { return }
        c.lastToBroker = max(sim.nowNs + delay(), c.lastToBroker)
        sim.schedule(.bytesToBroker(id, bytes), atNs: c.lastToBroker)
    }

    func bytesToBroker(_ id: Int, _ bytes: [UInt8]) {
        guard let c = connections[id] else { return }
        if stalled(c, .bytesToBroker(id, bytes)) { return }
        let broker = sim.process(c.broker)
        guard c.openAtBroker, broker.isUp, broker.incarnation == c.incarnation else {
            if c.masterLink, broker.isUp, c.openAtClient { resetTowardClient(c) }
            return
        }
        broker.receive(bytes, on: id)
    }

    func sendToClient(_ id: Int, _ bytes: [UInt8]) {
        guard let c = connections[id], c.openAtBroker else { return }
        c.lastToClient = max(sim.nowNs + delay(), c.lastToClient)
        sim.schedule(.bytesToClient(id, bytes), atNs: c.lastToClient)
    }

    func bytesToClient(_ id: Int, _ bytes: [UInt8]) {
        guard let c = connections[id] else { return }
        if stalled(c, .bytesToClient(id, bytes)) { return }
        guard c.openAtClient else { return }
        sim.clientReceive(client: c.client, connection: id, bytes)
    }

    /// The client closed: the broker learns it after the bytes sent before.
    func closedByClient(_ id: Int) {
        guard let c = connections[id], c.openAtClient else { return }
        c.openAtClient = false
        c.lastToBroker = max(sim.nowNs + delay(), c.lastToBroker)
        sim.schedule(.closeReachesBroker(id), atNs: c.lastToBroker)
    }

    func closeReachesBroker(_ id: Int) {
        guard let c = connections[id] else { return }
        if stalled(c, .closeReachesBroker(id)) { return }
        if c.openAtBroker {
            c.openAtBroker = false
            let broker = sim.process(c.broker)
            if broker.incarnation == c.incarnation { broker.closed(id) }
        }
        connections[id] = nil
    }

    /// A restarted master's kernel answers a segment of a connection it does not know with a reset.
    private func resetTowardClient(_ c: Connection) {
        c.openAtBroker = false
        c.lastToClient = max(sim.nowNs + delay(), c.lastToClient)
        sim.schedule(.closeReachesClient(c.id), atNs: c.lastToClient)
    }

    /// The broker closed (or crashed and its kernel reset the connection): the client learns it
    /// after the bytes sent before.
    func closedByBroker(_ id: Int) {
        guard let c = connections[id], c.openAtBroker else { return }
        c.openAtBroker = false
        c.lastToClient = max(sim.nowNs + delay(), c.lastToClient)
        sim.schedule(.closeReachesClient(id), atNs: c.lastToClient)
    }

    func closeReachesClient(_ id: Int) {
        guard let c = connections[id] else { return }
        if stalled(c, .closeReachesClient(id)) { return }
        if c.openAtClient {
            c.openAtClient = false
            sim.clientConnectionLost(client: c.client, connection: id)
        }
        connections[id] = nil
    }

    /// Every connection of `broker`: reset (crash: the kernel answers with RST) or silently dead
    /// (power loss: nothing answers; clients find out by timing out).
    func brokerDied(_ broker: Int, silently: Bool) {
        for id in connections.keys.sorted() {
            guard let c = connections[id], c.broker == broker, c.openAtBroker else { continue }
            if silently {
                c.openAtBroker = false
            } else {
                closedByBroker(id)
            }
        }
    }

    /// A connection drop (both ends learn it), chosen among the established ones.
    func dropRandomConnection() -> Bool {
        let open = connections.keys.sorted().filter { connections[$0]!.established && connections[$0]!.openAtBroker }
        guard !open.isEmpty else { return false }
        let id = sim.rng.pick(open)
        let c = connections[id]!
        c.openAtBroker = false
        let broker = sim.process(c.broker)
        if broker.incarnation == c.incarnation { broker.closed(id) }
        c.lastToClient = max(sim.nowNs + delay(), c.lastToClient)
        sim.schedule(.closeReachesClient(id), atNs: c.lastToClient)
        return true
    }
}
