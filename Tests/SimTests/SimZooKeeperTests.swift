import ProtocolCore
import Sim
import Testing

/// The simulated ZooKeeper's data model against ZooKeeper 3.8's (DESIGN.md §6, reference §3).
@Suite struct SimZooKeeperTreeTests {
    let noChildrenForEphemerals = CoordinationReply.failed(.other(code: -108, message: "no children for ephemerals"))
    let badArguments = CoordinationReply.failed(.other(code: -8, message: "bad arguments"))

    @Test func createReadWriteAndExists() {
        let h = ZKHarness()
        let a = h.open("a")
        #expect(h.ask(a, .create(path: "/meta", data: [1], mode: .persistent)) == .created(path: "/meta"))
        #expect(h.ask(a, .getData(path: "/meta", watch: false)) == .data([1]))
        #expect(h.ask(a, .exists(path: "/meta", watch: false)) == .exists(true))
        #expect(h.ask(a, .exists(path: "/nope", watch: false)) == .exists(false))
        #expect(h.ask(a, .setData(path: "/meta", data: [2, 3])) == .dataSet)
        #expect(h.zk.data(at: "/meta") == [2, 3])
        #expect(h.ask(a, .getData(path: "/nope", watch: false)) == .failed(.noNode))
        #expect(h.ask(a, .setData(path: "/nope", data: [])) == .failed(.noNode))
        #expect(h.ask(a, .create(path: "/meta/.x..", data: [], mode: .persistent)) == .created(path: "/meta/.x.."))
        #expect(h.zk.paths == ["/", "/meta", "/meta/.x.."])
        #expect(h.zk.ephemeralOwner(of: "/meta") == nil)
    }

    /// ZooKeeper's `Stat.version`: 0 at creation, one more per set (plain or versioned); a
    /// versioned set with another version fails with ZBADVERSION and changes nothing (the
    /// failover term's compare-and-set, docs/REPLICATION.md, "Failover").
    @Test func versionedReadsAndCompareAndSet() {
        let h = ZKHarness()
        let a = h.open("a")
        #expect(h.ask(a, .create(path: "/t", data: Array("0".utf8), mode: .persistent)) == .created(path: "/t"))
        #expect(h.ask(a, .getVersionedData(path: "/t", watch: false)) == .versionedData(Array("0".utf8), version: 0))
        #expect(h.ask(a, .setDataAtVersion(path: "/t", data: Array("1".utf8), version: 0)) == .dataSet)
        #expect(h.ask(a, .setDataAtVersion(path: "/t", data: Array("9".utf8), version: 0)) == .failed(.badVersion))
        #expect(h.zk.data(at: "/t") == Array("1".utf8))
        #expect(h.ask(a, .setData(path: "/t", data: Array("2".utf8))) == .dataSet)
        #expect(h.ask(a, .getVersionedData(path: "/t", watch: false)) == .versionedData(Array("2".utf8), version: 2))
        #expect(h.ask(a, .setDataAtVersion(path: "/nope", data: [], version: 0)) == .failed(.noNode))
        #expect(h.ask(a, .getVersionedData(path: "/nope", watch: false)) == .failed(.noNode))
    }

    @Test func createNeedsTheParentAndAFreeName() {
        let h = ZKHarness()
        let a = h.open("a")
        #expect(h.ask(a, .create(path: "/meta/brokers", data: [], mode: .persistent)) == .failed(.noNode))
        #expect(h.ask(a, .create(path: "/meta", data: [], mode: .persistent)) == .created(path: "/meta"))
        #expect(h.ask(a, .create(path: "/meta", data: [9], mode: .ephemeral)) == .failed(.nodeExists))
        #expect(h.zk.data(at: "/meta") == [])
        #expect(h.ask(a, .create(path: "/", data: [], mode: .persistent)) == .failed(.nodeExists))
        for bad in ["meta", "/meta/", "/meta//x", "/meta/./x", "/meta/../x", "", "/meta/..", "/.", "/meta/x\0"] {
            #expect(h.ask(a, .create(path: bad, data: [], mode: .persistent)) == badArguments, "\(bad)")
        }
        #expect(h.ask(a, .create(path: "/meta/.x..", data: [], mode: .persistent)) == .created(path: "/meta/.x.."))
        #expect(h.zk.paths == ["/", "/meta", "/meta/.x.."])
    }

    /// The counter is the parent's cversion: every child created counts, deletions never lower it.
    @Test func sequentialNamesCountEveryChildEverCreated() {
        let h = ZKHarness()
        let a = h.open("a")
        _ = h.ask(a, .create(path: "/q", data: [], mode: .persistent))
        #expect(h.ask(a, .create(path: "/q/n-", data: [], mode: .persistentSequential)) == .created(path: "/q/n-0000000000"))
        #expect(h.ask(a, .create(path: "/q/plain", data: [], mode: .persistent)) == .created(path: "/q/plain"))
        #expect(h.ask(a, .create(path: "/q/n-", data: [], mode: .ephemeralSequential)) == .created(path: "/q/n-0000000002"))
        #expect(h.zk.ephemeralOwner(of: "/q/n-0000000002") == a.session.id)
        #expect(h.ask(a, .delete(path: "/q/n-0000000002")) == .deleted)
        #expect(h.ask(a, .delete(path: "/q/plain")) == .deleted)
        #expect(h.ask(a, .create(path: "/q/", data: [], mode: .persistentSequential)) == .created(path: "/q/0000000003"))
        #expect(h.zk.children(of: "/q") == ["0000000003", "n-0000000000"])
    }

    @Test func ephemeralNodesCannotHaveChildren() {
        let h = ZKHarness()
        let a = h.open("a")
        #expect(h.ask(a, .create(path: "/e", data: [], mode: .ephemeral)) == .created(path: "/e"))
        #expect(h.zk.ephemeralOwner(of: "/e") == a.session.id)
        #expect(h.ask(a, .create(path: "/e/c", data: [], mode: .persistent)) == noChildrenForEphemerals)
        #expect(h.ask(a, .create(path: "/e/s-", data: [], mode: .ephemeralSequential)) == noChildrenForEphemerals)
        // ZooKeeper checks the name before the parent's kind.
        #expect(h.ask(a, .create(path: "/e", data: [], mode: .persistent)) == .failed(.nodeExists))
        #expect(h.zk.paths == ["/", "/e"])
    }

    @Test func deleteNeedsAnExistingChildlessNode() {
        let h = ZKHarness()
        let a = h.open("a")
        _ = h.ask(a, .create(path: "/p", data: [], mode: .persistent))
        _ = h.ask(a, .create(path: "/p/c", data: [], mode: .persistent))
        #expect(h.ask(a, .delete(path: "/p")) == .failed(.notEmpty))
        #expect(h.ask(a, .delete(path: "/p/x")) == .failed(.noNode))
        #expect(h.ask(a, .delete(path: "/")) == badArguments)
        #expect(h.ask(a, .delete(path: "/p/c")) == .deleted)
        #expect(h.ask(a, .delete(path: "/p")) == .deleted)
        #expect(h.zk.paths == ["/"])
    }

    /// Documented choice: creation order, so that callers must sort (real ZooKeeper answers in hash order).
    @Test func childrenComeInCreationOrder() {
        let h = ZKHarness()
        let a = h.open("a")
        _ = h.ask(a, .create(path: "/p", data: [], mode: .persistent))
        for name in ["b", "a", "c"] { _ = h.ask(a, .create(path: "/p/" + name, data: [], mode: .persistent)) }
        #expect(h.ask(a, .getChildren(path: "/p", watch: false)) == .children(["b", "a", "c"]))
        _ = h.ask(a, .delete(path: "/p/a"))
        #expect(h.ask(a, .getChildren(path: "/p", watch: false)) == .children(["b", "c"]))
        #expect(h.ask(a, .getChildren(path: "/nope", watch: false)) == .failed(.noNode))
        #expect(h.zk.children(of: "/p") == ["b", "c"])
        #expect(h.zk.children(of: "/") == ["p"])
    }
}

@Suite struct SimZooKeeperWatchTests {
    @Test func dataWatchFiresOnceAndIsReArmedByReading() {
        let h = ZKHarness()
        let a = h.open("a"), b = h.open("b")
        _ = h.ask(a, .create(path: "/n", data: [], mode: .persistent))
        // Armed twice (getData and exists on one path): still one watch, one event.
        _ = h.ask(b, .getData(path: "/n", watch: true))
        _ = h.ask(b, .exists(path: "/n", watch: true))
        _ = h.ask(a, .setData(path: "/n", data: [1]))
        _ = h.ask(a, .setData(path: "/n", data: [2]))
        #expect(b.watchEvents == [.dataChanged(path: "/n")])
        #expect(a.watchEvents == [])
        _ = h.ask(b, .getData(path: "/n", watch: true))
        _ = h.ask(a, .setData(path: "/n", data: [3]))
        #expect(b.watchEvents == [.dataChanged(path: "/n"), .dataChanged(path: "/n")])
        _ = h.ask(b, .getData(path: "/n", watch: true))
        _ = h.ask(a, .delete(path: "/n"))
        #expect(b.watchEvents.last == .deleted(path: "/n"))
        #expect(b.watchEvents.count == 3)
    }

    @Test func childWatchFiresOnCreateDeleteAndOwnDeletion() {
        let h = ZKHarness()
        let a = h.open("a"), b = h.open("b")
        _ = h.ask(a, .create(path: "/p", data: [], mode: .persistent))
        _ = h.ask(b, .getChildren(path: "/p", watch: true))
        _ = h.ask(a, .create(path: "/p/x", data: [], mode: .persistent))
        _ = h.ask(a, .create(path: "/p/y", data: [], mode: .persistent))
        #expect(b.watchEvents == [.childrenChanged(path: "/p")])
        _ = h.ask(b, .getChildren(path: "/p", watch: true))
        _ = h.ask(a, .setData(path: "/p", data: [1]))
        #expect(b.watchEvents.count == 1, "a data change is no child change")
        _ = h.ask(a, .delete(path: "/p/x"))
        #expect(b.watchEvents == [.childrenChanged(path: "/p"), .childrenChanged(path: "/p")])
        // Watching /p/y's children and data and /p's children: y's deletion is one `.deleted`, then /p's change.
        _ = h.ask(b, .getChildren(path: "/p/y", watch: true))
        _ = h.ask(b, .getData(path: "/p/y", watch: true))
        _ = h.ask(b, .getChildren(path: "/p", watch: true))
        _ = h.ask(a, .delete(path: "/p/y"))
        #expect(Array(b.watchEvents.dropFirst(2)) == [.deleted(path: "/p/y"), .childrenChanged(path: "/p")])
    }

    @Test func existsWatchOnAMissingNodeFiresCreated() {
        let h = ZKHarness()
        let a = h.open("a"), b = h.open("b")
        #expect(h.ask(b, .exists(path: "/late", watch: true)) == .exists(false))
        // A read that fails arms nothing.
        #expect(h.ask(b, .getData(path: "/late2", watch: true)) == .failed(.noNode))
        #expect(h.ask(b, .getChildren(path: "/late2", watch: true)) == .failed(.noNode))
        _ = h.ask(a, .create(path: "/late", data: [], mode: .ephemeral))
        _ = h.ask(a, .create(path: "/late2", data: [], mode: .persistent))
        #expect(b.watchEvents == [.created(path: "/late")])
    }

    /// The server notifies before it answers: a session hears the watch its own write fired
    /// before that write's reply.
    @Test func ownWriteFiresTheWatchBeforeItsReply() {
        let h = ZKHarness()
        let a = h.open("a")
        _ = h.ask(a, .create(path: "/n", data: [], mode: .persistent))
        _ = h.ask(a, .getData(path: "/n", watch: true))
        let tag = a.send(.setData(path: "/n", data: [1]))
        h.run()
        #expect(Array(a.events.suffix(2)) == [.watch(.dataChanged(path: "/n")), .reply(tag: tag, .dataSet)])
    }
}

@Suite struct SimZooKeeperDeliveryTests {
    @Test func repliesAreAsynchronousAndTakeTheLatency() {
        let h = ZKHarness(latencyNs: 3_000_000)
        let a = h.open("a")
        #expect(a.events == [.session(.connected)])
        #expect(a.times == [3_000_000])
        let tag = a.send(.create(path: "/n", data: [], mode: .persistent))
        #expect(a.events.count == 1, "submit must not call the sink")
        // The effect is at the server at once; only the answer travels.
        #expect(h.zk.paths == ["/", "/n"])
        h.run()
        #expect(a.events.last == .reply(tag: tag, .created(path: "/n")))
        #expect(a.times.last == 6_000_000)
    }

    /// A faster later delivery never overtakes: it hands over what was queued before it first.
    @Test func aSessionHearsThingsInTheOrderTheServerProducedThem() {
        let h = ZKHarness()
        let a = h.open("a"), b = h.open("b")
        _ = h.ask(a, .create(path: "/n", data: [], mode: .persistent))
        _ = h.ask(b, .getData(path: "/n", watch: true))
        let start = h.nowNs
        h.zk.latencyNs = 50_000_000
        let first = b.send(.getData(path: "/n", watch: false))
        h.zk.latencyNs = 10_000_000
        _ = a.send(.setData(path: "/n", data: [7]))
        h.zk.latencyNs = 1_000_000
        let last = b.send(.getData(path: "/n", watch: false))
        h.run()
        #expect(Array(b.events.suffix(3)) == [.reply(tag: first, .data([])), .watch(.dataChanged(path: "/n")),
                                               .reply(tag: last, .data([7]))])
        #expect(Array(b.times.suffix(3)) == [start + 1_000_000, start + 1_000_000, start + 1_000_000])
    }
}
