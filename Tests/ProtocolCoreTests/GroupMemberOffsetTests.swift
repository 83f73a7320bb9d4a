import Testing
@testable import ProtocolCore

/// Offsets of a group member (§3.4 step 6, §5.4).
@Suite struct GroupMemberOffsetTests {
    private let offsets = "/meta/consumers/g/offsets/test/"

    /// Stored `<msgId>-<offset>` (msgId negative) → that offset; nothing stored → `startOffset`;
    /// unparsable → as if nothing were stored.
    @Test func startsAtTheStoredOffsetElseStartOffset() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 3)
        h.zk.put(offsets + "0-0", "-5468932283484340224-126")
        h.zk.put(offsets + "0-2", "garbage")
        let c1 = h.addMember("c1") { $0.startOffset = 7 }
        h.send(c1, .start)
        #expect(h.starts(c1).map { [$0.partition.description: $0.offset] } == [["0-0": 126], ["0-1": 7], ["0-2": 7]])
        #expect(h.members[c1].counters.badStoredOffsets == 1)
    }

    @Test func consumeFromMaxOffsetStartsUnstoredPartitionsAtInt64Max() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 2)
        h.zk.put(offsets + "0-0", "-5468932283484340224-126")
        let c1 = h.addMember("c1") { $0.consumeFromMaxOffset = true }
        h.send(c1, .start)
        #expect(h.starts(c1).map(\.offset) == [126, Int64.max])
    }

    /// Modified offsets are written `commitIntervalMs` after the change, as `<msgId>-<offset>`;
    /// the first write creates the node. Unowned partitions and backward moves are ignored.
    @Test func processedOffsetsAreCommittedAfterTheInterval() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 2)
        let c1 = h.addMember("c1")
        h.send(c1, .start)
        h.send(c1, .processed(topic: "test", partition: bp("0-0"), nextOffset: 500, msgId: -123))
        h.send(c1, .processed(topic: "test", partition: bp("0-0"), nextOffset: 400, msgId: -122))
        h.send(c1, .processed(topic: "test", partition: bp("5-0"), nextOffset: 9, msgId: 1))
        h.send(c1, .processed(topic: "other", partition: bp("0-1"), nextOffset: 9, msgId: 1))
        #expect(h.members[c1].counters.ignoredProcessed == 3)
        #expect(h.log[c1].last == .scheduleTick(at: .milliseconds(5000)))
        h.advance(ms: 4999)
        #expect(!h.requests(c1).contains { $0.path.hasPrefix(offsets) && $0 != .getData(path: $0.path, watch: false) })
        h.advance(ms: 1)
        #expect(h.requests(c1).contains(.setData(path: offsets + "0-0", data: Array("-123-500".utf8))))
        #expect(h.zk.text(offsets + "0-0") == "-123-500")
        #expect(h.zk.nodes[offsets + "0-1"] == nil, "only modified partitions are written")
        #expect(h.members[c1].counters.commits == 1)
        // Nothing new: nothing written at the next interval.
        let written = h.requests(c1).count
        h.advance(ms: 5000)
        #expect(h.requests(c1).count == written)
    }

    /// §3.4 step 5, §5.4: a partition given up is stopped, then its offset written, then its owner
    /// node deleted — so the next owner reads the final offset.
    @Test func releaseStopsThenCommitsThenDeletes() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 2)
        let c1 = h.addMember("c1")
        h.send(c1, .start)
        h.send(c1, .processed(topic: "test", partition: bp("0-1"), nextOffset: 777, msgId: 5))
        let c2 = h.addMember("c2")
        h.send(c2, .start)
        h.settle()
        #expect(h.members[c1].owned == ["test": [bp("0-0")]])
        #expect(h.members[c2].owned == ["test": [bp("0-1")]])
        let stop = h.index(c1) { $0 == .stopFetching(topic: "test", partition: bp("0-1")) }
        let commit = h.index(c1) { if case .coordinate(.setData(offsets + "0-1", _), _) = $0 { true } else { false } }
        let delete = h.index(c1) { if case .coordinate(.delete("/meta/consumers/g/owners/test/0-1"), _) = $0 { true } else { false } }
        #expect(stop != nil && commit != nil && delete != nil)
        if let stop, let commit, let delete { #expect(stop < commit && commit < delete) }
        #expect(h.starts(c2).map(\.offset) == [777])
        #expect(h.fetching(c1) == [bp("0-0")])
    }

    /// §5.4: close commits, deletes the owner nodes and the ids node, then reports `.closed`.
    @Test func closeCommitsReleasesAndReportsClosed() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 2)
        let c1 = h.addMember("c1")
        h.send(c1, .start)
        h.send(c1, .processed(topic: "test", partition: bp("0-0"), nextOffset: 10, msgId: 3))
        let mark = h.log[c1].count
        h.send(c1, .close)
        let tail = Array(h.log[c1][mark...])
        let requests = tail.compactMap { if case .coordinate(let r, _) = $0 { r } else { nil } }
        #expect(Array(tail.prefix(2)) == [.stopFetching(topic: "test", partition: bp("0-0")),
                                         .stopFetching(topic: "test", partition: bp("0-1"))])
        #expect(requests.first == .setData(path: offsets + "0-0", data: Array("3-10".utf8)))
        #expect(Array(requests.suffix(3)) == [
            .delete(path: "/meta/consumers/g/owners/test/0-0"),
            .delete(path: "/meta/consumers/g/owners/test/0-1"),
            .delete(path: "/meta/consumers/g/ids/g_c1"),
        ])
        #expect(tail.last == .closed)
        #expect(h.zk.text(offsets + "0-0") == "3-10")
        #expect(h.zk.children(of: "/meta/consumers/g/owners/test").isEmpty)
        #expect(h.zk.children(of: "/meta/consumers/g/ids").isEmpty)
        #expect(h.members[c1].owned.isEmpty)
        h.send(c1, .close)
        #expect(h.log[c1].last == .closed && h.log[c1].filter { $0 == .closed }.count == 1)
    }

    @Test func closeWithoutASessionIsImmediate() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 1)
        let c1 = h.addMember("c1")
        h.send(c1, .start)
        h.expire(c1)
        h.run()
        #expect(h.members[c1].handle(.close, now: h.now) == [.closed])
    }

    /// External storage: the same moments, as `.loadOffsets` / `.storeOffsets`; a store comes
    /// before the owner delete that gives its partition away.
    @Test func externalStorageLoadsAndStoresThroughTheDriver() {
        var h = GroupHarness()
        h.addBrokers(1, partitions: 2)
        let c1 = h.addMember("c1") { $0.offsetStorage = .external }
        h.send(c1, .start)
        #expect(h.log[c1].last == .loadOffsets(topic: "test", [bp("0-0"), bp("0-1")]))
        #expect(h.starts(c1).isEmpty)
        h.send(c1, .offsetsLoaded(topic: "test", [bp("0-1"): StoredOffset(msgId: 8, offset: 64)]))
        #expect(h.starts(c1).map(\.offset) == [0, 64])
        h.send(c1, .processed(topic: "test", partition: bp("0-1"), nextOffset: 90, msgId: 9))
        h.advance(ms: 5000)
        #expect(h.log[c1].contains(.storeOffsets([.init(topic: "test", partition: bp("0-1"), offset: StoredOffset(msgId: 9, offset: 90))])))
        #expect(!h.requests(c1).contains { $0.path.contains("/offsets/") })

        h.send(c1, .processed(topic: "test", partition: bp("0-1"), nextOffset: 95, msgId: 10))
        let c2 = h.addMember("c2") { $0.offsetStorage = .external }
        h.send(c2, .start)  // a conflict first: c1 gives 0-1 up meanwhile
        h.advance(ms: 5000)
        #expect(h.log[c2].last == .loadOffsets(topic: "test", [bp("0-1")]))
        h.send(c2, .offsetsLoaded(topic: "test", [bp("0-1"): StoredOffset(msgId: 10, offset: 95)]))
        #expect(h.starts(c2).map(\.offset) == [95])
        #expect(h.members.allSatisfy { $0.isSettled })
        let store = h.index(c1) { $0 == .storeOffsets([.init(topic: "test", partition: bp("0-1"), offset: StoredOffset(msgId: 10, offset: 95))]) }
        let delete = h.index(c1) { if case .coordinate(.delete("/meta/consumers/g/owners/test/0-1"), _) = $0 { true } else { false } }
        #expect(store != nil && delete != nil)
        if let store, let delete { #expect(store < delete) }
    }
}
