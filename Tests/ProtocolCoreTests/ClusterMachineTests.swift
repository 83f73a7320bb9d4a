import Sim
import Testing
@testable import ProtocolCore

/// A tiny world for the cluster machines: a `SimZooKeeper` and a virtual clock; each machine is
/// fed its session's events and its own timer ticks.
final class ZKWorld {
    var now: Int64 = 0
    private var queue: [(at: Int64, seq: Int, run: () -> Void)] = []
    private var seq = 0
    lazy var zooKeeper = SimZooKeeper { [unowned self] delay, deliver in self.after(delay, deliver) }

    func after(_ delayNs: Int64, _ run: @escaping () -> Void) {
        queue.append((now + delayNs, seq, run))
        seq += 1
    }

    var instant: Instant { Instant(nanoseconds: now) }

    /// Runs everything due up to `ms` milliseconds of virtual time.
    func run(untilMs ms: Int64) {
        let end = ms * 1_000_000
        while let next = queue.indices.min(by: { (queue[$0].at, queue[$0].seq) < (queue[$1].at, queue[$1].seq) }),
              queue[next].at <= end {
            let item = queue.remove(at: next)
            now = max(now, item.at)
            zooKeeper.advance(to: instant)
            item.run()
        }
        now = max(now, end)
        zooKeeper.advance(to: instant)
    }

    func text(_ path: String) -> String? { zooKeeper.data(at: path).map { String(decoding: $0, as: UTF8.self) } }
}

/// Drives a `BrokerRegistration` over a session of the world.
final class RegistrationDriver {
    var machine: BrokerRegistration
    var session: SimZKSession!
    var actions: [BrokerRegistration.Action] = []
    let world: ZKWorld

    init(_ world: ZKWorld, _ settings: BrokerRegistration.Settings) {
        self.world = world
        machine = BrokerRegistration(settings: settings)
        session = world.zooKeeper.openSession(timeoutMs: 2000) { [unowned self] in self.feed(.coordination($0)) }
    }

    func feed(_ event: BrokerRegistration.Event) {
        for action in machine.handle(event, now: world.instant) {
            actions.append(action)
            switch action {
            case .coordinate(let request, let tag): session.submit(request, tag: tag)
            case .scheduleTick(let at): world.after(at.nanoseconds - world.now) { self.feed(.tick) }
            case .registered, .conflict, .stopped: break
            }
        }
    }
}

@Suite("Broker registration in ZooKeeper (reference §3.1, §3.2)")
struct BrokerRegistrationTests {
    static func settings(_ id: Int = 0, port: Int = 8123, topics: [BrokerRegistration.Topic] = [.init(name: "test", numPartitions: 2)])
        -> BrokerRegistration.Settings {
        .init(brokerId: id, uri: "meta://127.0.0.1:\(port)", configChecksum: 1_230_062_599, topics: topics)
    }

    /// §3.1, §6.1: a slave registers `ids/<id>/slave<n>` and its topics as `<id>-s<n>` (pub, sub and
    /// the deprecated node, JSON naming `<id>-s<n>`), and neither the master node, nor the data of
    /// `ids/<id>`, nor `master_config_checksum`: those are the master's. Beside a master, both sets
    /// stand.
    @Test func aSlaveRegistersTheOriginalsSlaveNodesBesideItsMaster() {
        let world = ZKWorld()
        let master = RegistrationDriver(world, Self.settings())
        master.feed(.start)
        var slaveSettings = Self.settings(port: 8124)
        slaveSettings.role = .slave(slaveId: 1)
        let slave = RegistrationDriver(world, slaveSettings)
        slave.feed(.start)
        world.run(untilMs: 100)
        #expect(slave.actions.contains(.registered) && master.actions.contains(.registered))
        #expect(world.text("/meta/brokers/ids/0/slave1") == "meta://127.0.0.1:8124")
        #expect(world.text("/meta/brokers/ids/0/master") == "meta://127.0.0.1:8123")
        #expect(world.text("/meta/brokers/ids/0") == "meta://127.0.0.1:8123", "the master's to write")
        #expect(world.text("/meta/brokers/topics/test/0-s1") == "2")
        #expect(world.text("/meta/brokers/topics-pub/test/0-s1") == "{\"numParts\":2,\"broker\":\"0-s1\"}")
        #expect(world.text("/meta/brokers/topics-sub/test/0-s1") == "{\"numParts\":2,\"broker\":\"0-s1\"}")
        #expect(world.text("/meta/brokers/topics-sub/test/0-m") == "{\"numParts\":2,\"broker\":\"0-m\"}")
        #expect(!slave.machine.nodes.contains { $0.path.hasSuffix("/master") || $0.path.hasSuffix("master_config_checksum") })
    }

    /// With automatic failover the master node belongs to `BrokerElection`: registration neither
    /// creates nor re-creates it (followers would read a delete-and-recreate as the master leaving).
    @Test func withFailoverTheMasterNodeIsLeftToTheElection() {
        var settings = Self.settings()
        settings.masterNodeByElection = true
        let registration = BrokerRegistration(settings: settings)
        #expect(!registration.nodes.contains { $0.path == "/meta/brokers/ids/0/master" })
        #expect(registration.nodes.contains { $0.path == "/meta/brokers/ids/0/master_config_checksum" })
        #expect(registration.nodes.contains { $0.path == "/meta/brokers/topics-pub/test/0-m" })
    }

    /// Failover: a slave that takes over registers as the master (topic nodes `<id>-m`, the
    /// checksum, the data of `ids/<id>`), its slave nodes gone; a deposed master that follows
    /// registers as a slave, its master's ephemeral nodes gone. The master node stays the
    /// election's.
    @Test func aRoleChangeSwapsTheRegisteredNodes() {
        let world = ZKWorld()
        var settings = Self.settings(port: 8124)
        settings.role = .slave(slaveId: 1)
        settings.masterNodeByElection = true
        let broker = RegistrationDriver(world, settings)
        broker.feed(.start)
        world.run(untilMs: 100)
        #expect(world.text("/meta/brokers/topics-pub/test/0-s1") != nil)
        broker.feed(.roleChanged(.master))
        world.run(untilMs: 200)
        #expect(world.text("/meta/brokers/ids/0/slave1") == nil && world.text("/meta/brokers/topics-pub/test/0-s1") == nil)
        #expect(world.text("/meta/brokers/topics-pub/test/0-m") == #"{"numParts":2,"broker":"0-m"}"#)
        #expect(world.text("/meta/brokers/ids/0") == "meta://127.0.0.1:8124")
        #expect(world.text("/meta/brokers/ids/0/master_config_checksum") == "1230062599")
        #expect(world.text("/meta/brokers/ids/0/master") == nil, "the election's node")
        #expect(broker.machine.isRegistered)
        broker.feed(.roleChanged(.slave(slaveId: 2)))
        world.run(untilMs: 300)
        #expect(world.text("/meta/brokers/topics-pub/test/0-m") == nil && world.text("/meta/brokers/ids/0/master_config_checksum") == nil)
        #expect(world.text("/meta/brokers/ids/0/slave2") == "meta://127.0.0.1:8124")
        #expect(world.text("/meta/brokers/ids/0") == "meta://127.0.0.1:8124", "the persistent node keeps the last leader's URI")
        #expect(broker.machine.isRegistered)
    }

    /// Failover settings of one process of broker id 0 in the master role.
    static func failoverMaster(port: Int) -> BrokerRegistration.Settings {
        var settings = Self.settings(port: port)
        settings.masterNodeByElection = true
        settings.retryDelayMs = 100
        return settings
    }

    /// Every master-role ephemeral node of `broker` is its current session's, with its data.
    static func ownsItsNodes(_ world: ZKWorld, _ broker: RegistrationDriver) -> Bool {
        broker.machine.nodes.filter(\.isEphemeral).allSatisfy {
            world.zooKeeper.ephemeralOwner(of: $0.path) == broker.session.id && world.zooKeeper.data(at: $0.path) == $0.data
        }
    }

    /// Seeds 1977, 3910, 4935 of the failover sweep: a deposed leader's session expires and comes
    /// back while its successor registers. It must not register as master again on its own (it
    /// overwrote `ids/<id>` with its URI and took over the successor's checksum), and following
    /// afterwards must not delete the master-role paths, which are the successor's nodes by then.
    @Test func aDeposedMastersNewSessionLeavesItsSuccessorsNodesAlone() {
        let world = ZKWorld()
        let deposed = RegistrationDriver(world, Self.failoverMaster(port: 8124))
        deposed.feed(.start)
        world.run(untilMs: 100)
        #expect(deposed.machine.isRegistered)
        world.zooKeeper.expire(deposed.session)
        let leader = RegistrationDriver(world, Self.failoverMaster(port: 8123))
        leader.feed(.start)
        world.run(untilMs: 200)
        #expect(leader.machine.isRegistered)
        #expect(!deposed.machine.isRegistered, "a master waits for the election after an expiry")
        deposed.feed(.roleChanged(.slave(slaveId: 2)))
        world.run(untilMs: 300)
        #expect(deposed.machine.isRegistered && world.text("/meta/brokers/ids/0/slave2") == "meta://127.0.0.1:8124")
        #expect(Self.ownsItsNodes(world, leader))
        #expect(world.text("/meta/brokers/ids/0") == "meta://127.0.0.1:8123", "the leader's URI, not the deposed one's")
    }

    /// A leader that finds a master-role node it did not create (a deposed leader's session still
    /// holds it) waits for it to go instead of deleting it; the deposed one, following, deletes
    /// only the nodes its session created. The leader then owns every node, with its data.
    @Test func aNewLeaderWaitsForTheDeposedLeadersNodesInsteadOfTakingThemOver() {
        let world = ZKWorld()
        let deposed = RegistrationDriver(world, Self.failoverMaster(port: 8124))
        deposed.feed(.start)
        world.run(untilMs: 100)
        let leader = RegistrationDriver(world, Self.failoverMaster(port: 8123))
        leader.feed(.start)
        world.run(untilMs: 200)
        #expect(!leader.machine.isRegistered, "the deposed leader's nodes are still there")
        #expect(!leader.actions.contains { if case .coordinate(.delete, _) = $0 { return true }; return false },
                "a node another session created is never deleted")
        #expect(!leader.actions.contains { if case .conflict = $0 { return true }; return false })
        deposed.feed(.roleChanged(.slave(slaveId: 2)))
        world.run(untilMs: 600)
        #expect(leader.machine.isRegistered && Self.ownsItsNodes(world, leader))
        #expect(deposed.machine.isRegistered && world.text("/meta/brokers/topics-sub/test/0-s2") != nil)
    }

    /// A role change while a master-role create is in flight (fed by hand): nothing is deleted at
    /// the change (the create may have failed on another broker's node); a create that then
    /// succeeds made our node, which is deleted, and one that found the node in place is left to
    /// its owner.
    @Test(arguments: [true, false])
    func aCreateInFlightAtARoleChangeIsUndoneOnlyIfItMadeTheNode(created: Bool) {
        var machine = BrokerRegistration(settings: Self.failoverMaster(port: 8124))
        let checksum = "/meta/brokers/ids/0/master_config_checksum"
        func requests(_ actions: [BrokerRegistration.Action]) -> [(CoordinationRequest, UInt64)] {
            actions.compactMap { if case .coordinate(let request, let tag) = $0 { return (request, tag) }; return nil }
        }
        let now = Instant(nanoseconds: 0)
        guard let (setData, first) = requests(machine.handle(.start, now: now)).first,
              case .setData(path: "/meta/brokers/ids/0", _) = setData else { Issue.record("ids/<id> first"); return }
        guard let (create, tag) = requests(machine.handle(.coordination(.reply(tag: first, .dataSet)), now: now)).first,
              case .create(path: checksum, _, .ephemeral) = create else { Issue.record("the checksum next"); return }
        let atChange = requests(machine.handle(.roleChanged(.slave(slaveId: 2)), now: now))
        #expect(!atChange.contains { $0.0 == .delete(path: checksum) }, "not known to be ours yet")
        let reply: CoordinationReply = created ? .created(path: checksum) : .failed(.nodeExists)
        let after = requests(machine.handle(.coordination(.reply(tag: tag, reply)), now: now))
        #expect(after.contains { $0.0 == .delete(path: checksum) } == created)
    }

    /// A role change's delete whose outcome is unknown (connection loss) is sent again once the
    /// session is connected again, not at once: the node may still be ours, and a deposed master's
    /// node left behind would keep its successor waiting as long as its session lives.
    @Test func aRoleChangeDeleteLostWithTheConnectionIsSentAgainOnceConnected() {
        var machine = BrokerRegistration(settings: Self.failoverMaster(port: 8124))
        let checksum = "/meta/brokers/ids/0/master_config_checksum"
        let now = Instant(nanoseconds: 0)
        // Every request of the registration succeeds until it is registered.
        var actions = machine.handle(.start, now: now)
        while !machine.isRegistered, case .coordinate(let request, let tag)? = actions.first {
            let reply: CoordinationReply
            if case .create(let path, _, _) = request { reply = .created(path: path) } else { reply = .dataSet }
            actions = machine.handle(.coordination(.reply(tag: tag, reply)), now: now)
        }
        #expect(machine.isRegistered)
        let deletes = machine.handle(.roleChanged(.slave(slaveId: 2)), now: now).compactMap { action -> UInt64? in
            if case .coordinate(.delete(path: checksum), let tag) = action { return tag }
            return nil
        }
        guard let tag = deletes.first else { Issue.record("the checksum is ours: deleted"); return }
        let lost = machine.handle(.coordination(.reply(tag: tag, .failed(.connectionLoss))), now: now)
        #expect(!lost.contains { if case .coordinate(.delete(path: checksum), _) = $0 { return true }; return false })
        _ = machine.handle(.coordination(.session(.connecting)), now: now)
        let again = machine.handle(.coordination(.session(.connected)), now: now)
        #expect(again.contains { if case .coordinate(.delete(path: checksum), _) = $0 { return true }; return false })
    }

    @Test func registersTheOriginalsNodesWithTheirData() {
        let world = ZKWorld()
        let topics: [BrokerRegistration.Topic] = [.init(name: "test", numPartitions: 2),
                                                  .init(name: "sub-only", numPartitions: 1, acceptPublish: false)]
        let broker = RegistrationDriver(world, Self.settings(topics: topics))
        broker.feed(.start)
        world.run(untilMs: 100)
        #expect(broker.actions.contains(.registered) && broker.machine.isRegistered)
        #expect(world.text("/meta/brokers/ids/0") == "meta://127.0.0.1:8123")
        #expect(world.text("/meta/brokers/ids/0/master") == "meta://127.0.0.1:8123")
        #expect(world.text("/meta/brokers/ids/0/master_config_checksum") == "1230062599")
        #expect(world.text("/meta/brokers/topics/test/0-m") == "2")
        #expect(world.text("/meta/brokers/topics-pub/test/0-m") == #"{"numParts":2,"broker":"0-m"}"#)
        #expect(world.text("/meta/brokers/topics-sub/test/0-m") == #"{"numParts":2,"broker":"0-m"}"#)
        #expect(world.text("/meta/brokers/topics-sub/sub-only/0-m") == #"{"numParts":1,"broker":"0-m"}"#)
        #expect(world.text("/meta/brokers/topics-pub/sub-only/0-m") == nil, "acceptPublish=false: no topics-pub node")
        #expect(world.zooKeeper.ephemeralOwner(of: "/meta/brokers/ids/0") == nil, "ids/<id> is persistent")
        #expect(world.zooKeeper.ephemeralOwner(of: "/meta/brokers/ids/0/master") == broker.session.id)
        // §3.2's order: master first, then the broker node's data, the checksum, the topics. The
        // first create of master fails (no parents yet) and is repeated after them: count it once.
        var created: [String] = []
        for action in broker.actions {
            var path: String?
            if case .coordinate(.create(let p, _, .ephemeral), _) = action { path = p }
            if case .coordinate(.setData(let p, _), _) = action { path = p }
            if let path, created.last != path { created.append(path) }
        }
        #expect(Array(created.prefix(3)) == ["/meta/brokers/ids/0/master", "/meta/brokers/ids/0",
                                         "/meta/brokers/ids/0/master_config_checksum"])
    }

    /// A restart within the session timeout finds its own old ephemeral nodes: it takes them over.
    @Test func leftoverNodesOfAnEarlierSessionAreTakenOver() {
        let world = ZKWorld()
        let old = RegistrationDriver(world, Self.settings())
        old.feed(.start)
        world.run(untilMs: 100)
        let restarted = RegistrationDriver(world, Self.settings())
        restarted.feed(.start)
        world.run(untilMs: 200)
        #expect(restarted.machine.isRegistered)
        #expect(world.zooKeeper.ephemeralOwner(of: "/meta/brokers/ids/0/master") == restarted.session.id)
        #expect(world.zooKeeper.ephemeralOwner(of: "/meta/brokers/topics-pub/test/0-m") == restarted.session.id)
        world.zooKeeper.expire(old.session)
        world.run(untilMs: 300)
        #expect(world.text("/meta/brokers/ids/0/master") == "meta://127.0.0.1:8123", "the old session's expiry took nothing of ours")
    }

    /// Another broker with the same id (other address): reported, retried, registered once it is gone.
    @Test func anotherBrokerWithOurIdIsAConflictUntilItLeaves() {
        let world = ZKWorld()
        let other = RegistrationDriver(world, Self.settings(port: 9999))
        other.feed(.start)
        world.run(untilMs: 100)
        let broker = RegistrationDriver(world, Self.settings())
        broker.feed(.start)
        world.run(untilMs: 2500)
        #expect(broker.actions.contains(.conflict(path: "/meta/brokers/ids/0/master", existing: "meta://127.0.0.1:9999")))
        #expect(!broker.machine.isRegistered)
        other.session.close()
        world.run(untilMs: 5000)
        #expect(broker.machine.isRegistered && world.text("/meta/brokers/ids/0/master") == "meta://127.0.0.1:8123")
    }

    @Test func sessionExpiryReRegistersEverything() {
        let world = ZKWorld()
        let broker = RegistrationDriver(world, Self.settings())
        broker.feed(.start)
        world.run(untilMs: 100)
        let expected = world.zooKeeper.paths
        world.zooKeeper.expire(broker.session)
        #expect(world.text("/meta/brokers/ids/0/master") == nil, "ephemerals vanish with the session")
        world.run(untilMs: 300)
        #expect(broker.machine.registrations == 2 && world.zooKeeper.paths == expected)
        #expect(world.zooKeeper.ephemeralOwner(of: "/meta/brokers/ids/0/master") == broker.session.id)
    }

    @Test func aTopicCreatedByItsFirstPutIsRegistered() {
        let world = ZKWorld()
        let broker = RegistrationDriver(world, Self.settings())
        broker.feed(.start)
        world.run(untilMs: 100)
        broker.feed(.topicAdded(.init(name: "orders-eu", numPartitions: 4)))
        world.run(untilMs: 200)
        #expect(world.text("/meta/brokers/topics-pub/orders-eu/0-m") == #"{"numParts":4,"broker":"0-m"}"#)
        #expect(broker.machine.registrations == 2)
    }

    /// `reload` (reference §8.4) changed a registered topic's partition count: its nodes, which
    /// this session created, are replaced (not taken for another broker's).
    @Test func aReloadedTopicIsRegisteredAgainWithItsNewValues() {
        let world = ZKWorld()
        let broker = RegistrationDriver(world, Self.settings())
        broker.feed(.start)
        world.run(untilMs: 100)
        broker.feed(.topicAdded(.init(name: "orders-eu", numPartitions: 4)))
        world.run(untilMs: 200)
        broker.feed(.topicAdded(.init(name: "orders-eu", numPartitions: 4)))
        world.run(untilMs: 300)
        #expect(broker.machine.registrations == 2, "the same values change nothing")
        broker.feed(.topicAdded(.init(name: "orders-eu", numPartitions: 8)))
        world.run(untilMs: 400)
        #expect(world.text("/meta/brokers/topics-pub/orders-eu/0-m") == #"{"numParts":8,"broker":"0-m"}"#)
        #expect(broker.machine.registrations == 3)
        #expect(!broker.actions.contains { if case .conflict = $0 { return true } else { return false } })
    }

    @Test func stopRemovesTheRegistration() {
        let world = ZKWorld()
        let broker = RegistrationDriver(world, Self.settings())
        broker.feed(.start)
        world.run(untilMs: 100)
        broker.feed(.stop)
        world.run(untilMs: 200)
        #expect(broker.actions.last == .stopped)
        #expect(world.text("/meta/brokers/ids/0") == nil && world.text("/meta/brokers/ids/0/master") == nil)
        #expect(world.zooKeeper.children(of: "/meta/brokers/topics-pub/test").isEmpty)
    }
}

/// Drives a `PublishDirectory`; keeps the last partitions reported per topic.
final class DirectoryDriver {
    var machine = PublishDirectory()
    var session: SimZKSession!
    var reported: [String: [PublishDirectory.Target]] = [:]
    var reports = 0
    let world: ZKWorld

    init(_ world: ZKWorld) {
        self.world = world
        session = world.zooKeeper.openSession(timeoutMs: 2000) { [unowned self] in self.feed(.coordination($0)) }
    }

    func feed(_ event: PublishDirectory.Event) {
        for action in machine.handle(event, now: world.instant) {
            switch action {
            case .coordinate(let request, let tag): session.submit(request, tag: tag)
            case .scheduleTick(let at): world.after(at.nanoseconds - world.now) { self.feed(.tick) }
            case .partitionsChanged(let topic, let targets):
                reported[topic] = targets
                reports += 1
            }
        }
    }
}

@Suite("Producer discovery (reference §3.3, §3.5)")
struct PublishDirectoryTests {
    @Test func partitionsSortedByBrokerThenPartitionAndFollowBrokersComingAndGoing() {
        let world = ZKWorld()
        let producer = DirectoryDriver(world)
        producer.feed(.publish("test"))
        world.run(untilMs: 50)
        #expect(producer.reported["test"] == [], "no broker yet: known, and empty")
        #expect(world.zooKeeper.children(of: "/meta/brokers/topics-pub").contains("test"), "§3.3: the topic node is made sure of")
        var brokers: [RegistrationDriver] = []
        for (id, parts) in [(10, 2), (2, 3)] {
            let broker = RegistrationDriver(world, BrokerRegistrationTests.settings(id, port: 9000 + id,
                                                                                  topics: [.init(name: "test", numPartitions: parts)]))
            broker.feed(.start)
            brokers.append(broker)
        }
        world.run(untilMs: 200)
        let targets = producer.reported["test"] ?? []
        #expect(targets.map(\.partition.description) == ["2-0", "2-1", "2-2", "10-0", "10-1"], "numeric order, §3.3")
        #expect(targets.first?.uri == "meta://127.0.0.1:9002" && targets.last?.uri == "meta://127.0.0.1:9010")
        brokers[0].session.close()  // broker 10 leaves
        world.run(untilMs: 300)
        #expect(producer.reported["test"]?.map(\.partition.description) == ["2-0", "2-1", "2-2"])
        let back = RegistrationDriver(world, BrokerRegistrationTests.settings(10, port: 9100, topics: [.init(name: "test", numPartitions: 1)]))
        back.feed(.start)
        world.run(untilMs: 400)
        #expect(producer.reported["test"]?.last == .init(partition: BrokerPartition(brokerId: 10, partition: 0), uri: "meta://127.0.0.1:9100"))
    }

    @Test func expiryOfTheProducersSessionRefreshesOnReconnect() {
        let world = ZKWorld()
        let broker = RegistrationDriver(world, BrokerRegistrationTests.settings())
        broker.feed(.start)
        let producer = DirectoryDriver(world)
        producer.feed(.publish("test"))
        world.run(untilMs: 100)
        #expect(producer.reported["test"]?.count == 2)
        world.zooKeeper.expire(producer.session)
        world.run(untilMs: 200)
        // Watches died with the session: a broker change is seen only if the directory re-read.
        let second = RegistrationDriver(world, BrokerRegistrationTests.settings(1, port: 9001))
        second.feed(.start)
        world.run(untilMs: 300)
        #expect(producer.reported["test"]?.count == 4)
    }
}
