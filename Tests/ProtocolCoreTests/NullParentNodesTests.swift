import Sim
import Testing
@testable import ProtocolCore

/// Drives a `GroupMember` over a session of the world (ZooKeeper offsets).
final class MemberDriver {
    var machine: GroupMember
    var session: SimZKSession!
    let world: ZKWorld

    init(_ world: ZKWorld, _ settings: GroupMember.Settings) {
        self.world = world
        machine = GroupMember(settings: settings)
        session = world.zooKeeper.openSession(timeoutMs: 2000) { [unowned self] in self.feed(.coordination($0)) }
    }

    func feed(_ event: GroupMember.Event) {
        for action in machine.handle(event, now: world.instant) {
            switch action {
            case .coordinate(let request, let tag): session.submit(request, tag: tag)
            case .scheduleTick(let at): world.after(max(0, at.nanoseconds - world.now)) { self.feed(.tick) }
            default: break
            }
        }
    }
}

/// The persistent parents the machines create on the way have no data (ZooKeeper's null), as
/// the original's (zkclient's `createPersistent(path, true)`, reference §3.1); nodes written with
/// data keep it. Over `SimZooKeeper`, which tells null from empty like the real server.
@Suite("Parent znodes without data (reference §3.1)")
struct NullParentNodesTests {
    @Test func brokerProducerAndConsumerCreateParentsWithoutData() {
        let world = ZKWorld()
        let broker = RegistrationDriver(world, BrokerRegistrationTests.settings())
        broker.feed(.start)
        let producer = DirectoryDriver(world)
        producer.feed(.publish("fresh"))
        let member = MemberDriver(world, GroupMember.Settings(group: "g", consumerId: "g_c1", topics: ["test"]))
        member.feed(.start)
        world.run(untilMs: 1000)
        #expect(member.machine.owned["test"]?.count == 2)
        // A first commit creates the offset node with its ancestors.
        member.feed(.processed(topic: "test", partition: BrokerPartition(brokerId: 0, partition: 0), nextOffset: 20, msgId: 7))
        member.feed(.close)
        world.run(untilMs: 2000)

        let parents = [
            "/meta", "/meta/brokers", "/meta/brokers/ids", "/meta/brokers/topics", "/meta/brokers/topics/test",
            "/meta/brokers/topics-pub", "/meta/brokers/topics-pub/test", "/meta/brokers/topics-sub",
            "/meta/brokers/topics-sub/test", "/meta/brokers/topics-pub/fresh", "/meta/consumers", "/meta/consumers/g",
            "/meta/consumers/g/ids", "/meta/consumers/g/owners", "/meta/consumers/g/owners/test",
            "/meta/consumers/g/offsets", "/meta/consumers/g/offsets/test",
        ]
        for parent in parents {
            #expect(world.zooKeeper.hasNullData(at: parent), "\(parent)")
        }
        #expect(world.text("/meta/brokers/ids/0") == "meta://127.0.0.1:8123", "ids/<id> keeps the master's URI")
        #expect(world.text("/meta/brokers/topics/test/0-m") == "2")
        #expect(world.text("/meta/consumers/g/offsets/test/0-0") == "7-20")
        #expect(!world.zooKeeper.hasNullData(at: "/meta/brokers/ids/0") && !world.zooKeeper.hasNullData(at: "/nowhere"))
    }

    /// A read of a node without data answers `.data(nil)`, of empty data `.data([])`.
    @Test func readsTellNullFromEmpty() {
        let world = ZKWorld()
        var replies: [UInt64: CoordinationReply] = [:]
        let session = world.zooKeeper.openSession(timeoutMs: 2000) { event in
            if case .reply(let tag, let reply) = event { replies[tag] = reply }
        }
        session.submit(.create(path: "/null", data: nil, mode: .persistent), tag: 1)
        session.submit(.create(path: "/empty", data: [], mode: .persistent), tag: 2)
        session.submit(.getData(path: "/null", watch: false), tag: 3)
        session.submit(.getData(path: "/empty", watch: false), tag: 4)
        world.run(untilMs: 10)
        #expect(replies[3] == .data(nil) && replies[4] == .data([]))
        #expect(world.zooKeeper.hasNullData(at: "/null") && !world.zooKeeper.hasNullData(at: "/empty"))
    }
}
