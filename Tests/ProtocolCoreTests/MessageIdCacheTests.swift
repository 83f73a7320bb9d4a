import Testing
@testable import ProtocolCore

/// The bounded LRU of handled message ids (reference §5.1, last bullet).
@Suite("Message id cache (reference §5.1)")
struct MessageIdCacheTests {
    @Test func defaultCapacityIsTheOriginals() {
        #expect(MessageIdCache().capacity == 4096)
    }

    /// The bound holds, and the least recently used id goes first.
    @Test func evictsTheLeastRecentlyUsed() {
        var cache = MessageIdCache(capacity: 3)
        #expect(cache.insert(1) == nil && cache.insert(2) == nil && cache.insert(3) == nil)
        #expect(cache.idsByRecency == [3, 2, 1])
        #expect(cache.insert(4) == 1 && cache.count == 3)
        #expect(!cache.contains(1) && cache.idsByRecency == [4, 3, 2])
        let hit = cache.contains(2)
        #expect(hit, "a hit makes 2 the most recent")
        #expect(cache.idsByRecency == [2, 4, 3])
        #expect(cache.insert(5) == 3)
        #expect(cache.insert(4) == nil, "inserting a kept id only refreshes it")
        #expect(cache.idsByRecency == [4, 5, 2] && cache.count == 3)
    }

    /// Removal frees a slot that is reused, and the list stays consistent from either end.
    @Test func removalAndReuse() {
        var cache = MessageIdCache(capacity: 3)
        for id: Int64 in [10, 20, 30] { cache.insert(id) }
        let removed = cache.remove(20)
        let again = cache.remove(20)
        #expect(removed && !again)
        #expect(cache.idsByRecency == [30, 10] && cache.count == 2)
        #expect(cache.insert(40) == nil, "room after the removal")
        let tail = cache.remove(10)
        let head = cache.remove(40)
        #expect(tail && head, "the tail, then the head")
        #expect(cache.idsByRecency == [30])
        #expect(cache.insert(50) == nil && cache.insert(60) == nil && cache.insert(70) == 30)
        #expect(cache.idsByRecency == [70, 60, 50])
    }

    /// A long mixed run against a plain array model: the bound and the order always agree.
    @Test func agreesWithASimpleModel() {
        var cache = MessageIdCache(capacity: 16)
        var model: [Int64] = []  // most recent first
        var state: UInt64 = 42
        for _ in 0..<5_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let id = Int64((state >> 33) % 40)
            switch (state >> 20) % 3 {
            case 0:
                let hit = cache.contains(id)
                #expect(hit == model.contains(id))
                if hit { model.removeAll { $0 == id }; model.insert(id, at: 0) }
            case 1:
                let evicted = cache.insert(id)
                var expected: Int64?
                if let i = model.firstIndex(of: id) { model.remove(at: i) } else if model.count == 16 { expected = model.removeLast() }
                model.insert(id, at: 0)
                #expect(evicted == expected)
            default:
                let removed = cache.remove(id)
                #expect(removed == model.contains(id))
                model.removeAll { $0 == id }
            }
        }
        #expect(cache.idsByRecency == model && cache.count <= 16)
    }
}
