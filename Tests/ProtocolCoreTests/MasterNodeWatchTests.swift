import Sim
import Testing
@testable import ProtocolCore

/// Drives a `MasterNodeWatch` over a session of a `ZKWorld`, keeping what it reported.
final class MasterWatchDriver {
    var machine: MasterNodeWatch
    var session: SimZKSession!
    var reports: [String?] = []
    var requests: [CoordinationRequest] = []
    let world: ZKWorld

    init(_ world: ZKWorld, brokerId: Int = 0) {
        self.world = world
        machine = MasterNodeWatch(settings: .init(brokerId: brokerId, retryDelayMs: 200))
        session = world.zooKeeper.openSession(timeoutMs: 2000) { [unowned self] in self.feed(.coordination($0)) }
    }

    func feed(_ event: MasterNodeWatch.Event) {
        for action in machine.handle(event, now: world.instant) {
            switch action {
            case .coordinate(let request, let tag):
                requests.append(request)
                session.submit(request, tag: tag)
            case .masterAddress(let uri): reports.append(uri)
            case .scheduleTick(let at): world.after(at.nanoseconds - world.now) { self.feed(.tick) }
            }
        }
    }
}

/// Issue 17: a slave in cluster mode learns where its master is from `ids/<id>/master` (reference
/// §6.1), on every change, through one pure machine the runtime and the simulator share.
@Suite("Master node watch of a slave (reference §6.1)")
struct MasterNodeWatchTests {
    static let masterPath = "/meta/brokers/ids/0/master"

    static func master(_ world: ZKWorld, port: Int = 8123) -> RegistrationDriver {
        RegistrationDriver(world, BrokerRegistrationTests.settings(port: port))
    }

    /// Deleted → nil, re-created → the URI, each said once.
    @Test func followsTheMasterComingAndGoing() {
        let world = ZKWorld()
        let watch = MasterWatchDriver(world)
        watch.feed(.start)
        world.run(untilMs: 100)
        #expect(watch.reports == [nil], "no master yet")
        let first = Self.master(world)
        first.feed(.start)
        world.run(untilMs: 200)
        #expect(watch.reports == [nil, "meta://127.0.0.1:8123"])
        first.feed(.stop)
        world.run(untilMs: 300)
        #expect(watch.reports == [nil, "meta://127.0.0.1:8123", nil])
        let second = Self.master(world, port: 8200)
        second.feed(.start)
        world.run(untilMs: 400)
        #expect(watch.reports == [nil, "meta://127.0.0.1:8123", nil, "meta://127.0.0.1:8200"])
    }

    @Test func aMasterAlreadyThereIsReportedOnce() {
        let world = ZKWorld()
        let master = Self.master(world)
        master.feed(.start)
        world.run(untilMs: 100)
        let watch = MasterWatchDriver(world)
        watch.feed(.start)
        world.run(untilMs: 200)
        #expect(master.machine.isRegistered && watch.reports == ["meta://127.0.0.1:8123"])
        #expect(watch.machine.reported == .some("meta://127.0.0.1:8123"))
    }

    /// A changed URI in the node (someone set its data) is reported; an empty node is no master.
    @Test func dataChangesAreReported() {
        let world = ZKWorld()
        let admin = AdminSession(world)
        admin.run(.create(path: "/meta", data: nil, mode: .persistent))
        admin.run(.create(path: "/meta/brokers", data: nil, mode: .persistent))
        admin.run(.create(path: "/meta/brokers/ids", data: nil, mode: .persistent))
        admin.run(.create(path: "/meta/brokers/ids/0", data: nil, mode: .persistent))
        admin.run(.create(path: Self.masterPath, data: Array(" meta://a:1\n".utf8), mode: .persistent))
        let watch = MasterWatchDriver(world)
        watch.feed(.start)
        world.run(forMs: 100)
        admin.run(.setData(path: Self.masterPath, data: Array("meta://b:2".utf8)))
        admin.run(.setData(path: Self.masterPath, data: []))
        admin.run(.setData(path: Self.masterPath, data: Array("meta://c:3".utf8)))
        #expect(watch.reports == ["meta://a:1", "meta://b:2", nil, "meta://c:3"])
    }

    /// Changes while the watching session is disconnected are seen once it is back; a read that
    /// fails is tried again after the retry delay.
    @Test func aDisconnectionMissesNothing() {
        let world = ZKWorld()
        let watch = MasterWatchDriver(world)
        watch.feed(.start)
        world.run(untilMs: 100)
        world.zooKeeper.disconnect(watch.session, now: world.instant)
        let master = Self.master(world)
        master.feed(.start)
        world.run(untilMs: 300)
        #expect(watch.reports == [nil])
        world.zooKeeper.reconnect(watch.session, now: world.instant)
        world.run(untilMs: 400)
        #expect(watch.reports == [nil, "meta://127.0.0.1:8123"])
    }

    @Test func aFailedReadIsRetried() {
        let world = ZKWorld()
        let watch = MasterWatchDriver(world)
        let master = Self.master(world)
        master.feed(.start)
        world.run(untilMs: 100)
        world.zooKeeper.disconnect(watch.session, now: world.instant)
        watch.feed(.start)
        world.run(untilMs: 150)
        #expect(master.machine.isRegistered && watch.reports.isEmpty, "the read failed with connection loss")
        #expect(watch.requests.count == 1)
        // Back before the retry: `.connected` reads at once; the retry tick then finds nothing to do.
        world.zooKeeper.reconnect(watch.session, now: world.instant)
        world.run(untilMs: 1000)
        #expect(watch.reports == ["meta://127.0.0.1:8123"])
    }

    @Test func aFailedReadIsRetriedAfterTheDelayWhileStillDisconnected() {
        let world = ZKWorld()
        let watch = MasterWatchDriver(world)
        world.run(untilMs: 10)
        world.zooKeeper.disconnect(watch.session, now: world.instant)
        watch.feed(.start)
        world.run(untilMs: 150)
        #expect(watch.requests.count == 1)
        world.run(untilMs: 250)
        #expect(watch.requests.count == 2, "read again 200 ms after the failure")
        #expect(watch.reports.isEmpty)
    }

    /// A new session (the old one expired) has no watch: everything is read again.
    @Test func anExpiredSessionReadsAgain() {
        let world = ZKWorld()
        let watch = MasterWatchDriver(world)
        watch.feed(.start)
        world.run(untilMs: 100)
        world.zooKeeper.expire(watch.session)
        let master = Self.master(world)
        master.feed(.start)
        world.run(untilMs: 300)
        #expect(watch.reports == [nil, "meta://127.0.0.1:8123"])
        master.feed(.stop)
        world.run(untilMs: 400)
        #expect(watch.reports == [nil, "meta://127.0.0.1:8123", nil], "the new session's watch is armed")
    }

    /// Only the master node of its own broker id counts.
    @Test func otherBrokersAreIgnored() {
        let world = ZKWorld()
        let watch = MasterWatchDriver(world, brokerId: 1)
        watch.feed(.start)
        let master = Self.master(world)
        master.feed(.start)
        world.run(untilMs: 200)
        #expect(master.machine.isRegistered && watch.reports == [nil])
    }
}

/// A session of the test's own that runs one request at a time to completion.
final class AdminSession {
    let world: ZKWorld
    var session: SimZKSession!
    var replies: [UInt64: CoordinationReply] = [:]
    var nextTag: UInt64 = 1

    init(_ world: ZKWorld) {
        self.world = world
        session = world.zooKeeper.openSession(timeoutMs: 10_000) { [unowned self] event in
            if case .reply(let tag, let reply) = event { self.replies[tag] = reply }
        }
    }

    @discardableResult
    func run(_ request: CoordinationRequest) -> CoordinationReply? {
        let tag = nextTag
        nextTag += 1
        session.submit(request, tag: tag)
        world.run(forMs: 50)
        return replies[tag]
    }
}

extension ZKWorld {
    /// Runs everything due in the next `ms` milliseconds of virtual time.
    func run(forMs ms: Int64) { run(untilMs: now / 1_000_000 + ms) }
}
