import Sim
import Testing

@Suite struct SimRandomTests {
    /// Values from an independent Python transcription of SplitMix64 + xoshiro256** (the first
    /// SplitMix64 word for seed 0, 0xE220A8397B1DCDAF, matches the published reference output).
    @Test func matchesReferenceImplementation() {
        var zero = SimRandom(seed: 0)
        #expect([zero.next(), zero.next(), zero.next()] == [0x99EC_5F36_CB75_F2B4, 0xBF6E_1F78_4956_452A, 0x1A5F_849D_4933_E6E0])
        var fortyTwo = SimRandom(seed: 42)
        #expect([fortyTwo.next(), fortyTwo.next(), fortyTwo.next()] == [0x1578_0B2E_0C2E_C716, 0x6104_D986_6D11_3A7E, 0xAE17_5332_39E4_99A1])
    }

    @Test func sameSeedGivesSameSequence() {
        for seed: UInt64 in [0, 1, 7, .max] {
            var a = SimRandom(seed: seed)
            var b = SimRandom(seed: seed)
            #expect((0..<100).map { _ in a.next() } == (0..<100).map { _ in b.next() })
            #expect(a.bytes(37) == b.bytes(37))
            #expect(a.int(in: -5..<5) == b.int(in: -5..<5))
        }
    }

    @Test func differentSeedsDiffer() {
        var seen = Set<[UInt64]>()
        for seed: UInt64 in 0..<100 {
            var rng = SimRandom(seed: seed)
            seen.insert((0..<4).map { _ in rng.next() })
        }
        #expect(seen.count == 100)
    }

    @Test func intStaysInRangeAndHitsBothEnds() {
        var rng = SimRandom(seed: 3)
        var halfOpen = Set<Int>()
        var closed = Set<Int>()
        for _ in 0..<2_000 {
            let a = rng.int(in: -3..<4)
            #expect((-3..<4).contains(a))
            halfOpen.insert(a)
            let b = rng.int(in: 10...12)
            #expect((10...12).contains(b))
            closed.insert(b)
        }
        #expect(halfOpen == Set(-3..<4))
        #expect(closed == [10, 11, 12])
        #expect(rng.int(in: 5..<6) == 5)
        #expect(rng.int(in: 9...9) == 9)
    }

    @Test func intHandlesExtremeRanges() {
        var rng = SimRandom(seed: 11)
        for _ in 0..<100 {
            _ = rng.int(in: Int.min...Int.max)
            let wide = rng.int(in: Int.min..<Int.max)
            #expect(wide < Int.max)
            #expect(rng.int(in: (Int.max - 1)...Int.max) >= Int.max - 1)
        }
    }

    @Test func intIsRoughlyUniform() {
        var rng = SimRandom(seed: 5)
        var counts = [Int](repeating: 0, count: 6)
        for _ in 0..<60_000 { counts[rng.int(in: 0..<6)] += 1 }
        // Expected 10 000 each; a fair generator stays far inside ±5 %.
        #expect(counts.allSatisfy { abs($0 - 10_000) < 500 })
    }

    @Test func chanceHonoursEdgesAndOdds() {
        var rng = SimRandom(seed: 9)
        #expect((0..<100).allSatisfy { _ in !rng.chance(0) })
        #expect((0..<100).allSatisfy { _ in rng.chance(1) })
        let hits = (0..<10_000).filter { _ in rng.chance(0.25) }.count
        #expect((2_250...2_750).contains(hits))
    }

    @Test func unitStaysInHalfOpenInterval() {
        var rng = SimRandom(seed: 13)
        #expect((0..<10_000).allSatisfy { _ in (0..<1).contains(rng.unit()) })
    }

    @Test func bytesHaveRequestedLength() {
        var rng = SimRandom(seed: 2)
        for count in [0, 1, 7, 8, 9, 513] { #expect(rng.bytes(count).count == count) }
        #expect(Set(rng.bytes(4096)).count > 200)
    }

    @Test func forkIsDeterministicAndIndependent() {
        var a = SimRandom(seed: 21)
        var b = SimRandom(seed: 21)
        var childA = a.fork()
        var childB = b.fork()
        let streamA = (0..<8).map { _ in childA.next() }
        #expect(streamA == (0..<8).map { _ in childB.next() })
        // Forking advanced the parents identically, and the child does not replay the parent.
        let parentA = (0..<8).map { _ in a.next() }
        #expect(parentA == (0..<8).map { _ in b.next() })
        #expect(streamA != parentA)
        var secondChild = a.fork()
        #expect(streamA != (0..<8).map { _ in secondChild.next() })
    }

    @Test func pickReturnsEveryElementEventually() {
        var rng = SimRandom(seed: 17)
        let items = ["a", "b", "c", "d"]
        #expect(Set((0..<200).map { _ in rng.pick(items) }) == Set(items))
    }

    @Test func worksWithStandardLibraryRandomAPIs() {
        var a = SimRandom(seed: 8)
        var b = SimRandom(seed: 8)
        #expect(Array(0..<50).shuffled(using: &a) == Array(0..<50).shuffled(using: &b))
        #expect(Int.random(in: 0..<1000, using: &a) == Int.random(in: 0..<1000, using: &b))
    }
}
