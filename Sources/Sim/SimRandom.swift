// The simulator's only source of randomness: one seed must replay a whole run bit for bit, so
// nothing here may read the system generator, a clock or the process environment.

/// A seeded pseudo-random generator: xoshiro256** whose state is filled from the seed by SplitMix64.
///
/// Both algorithms are Blackman and Vigna's (xoshiro256** 1.0; SplitMix64 as used to seed it).
/// The generator is a value: copying it copies the stream, so pass it `inout` to share one stream,
/// and use `fork()` to give a component a stream of its own.
public struct SimRandom: RandomNumberGenerator, Sendable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// Creates a generator whose whole output is decided by `seed`.
    public init(seed: UInt64) {
        // SplitMix64 spreads even small or similar seeds over the full state, and never yields
        // four zero words (the one state xoshiro cannot leave) from any seed in practice.
        var splitMix = seed
        s0 = Self.splitMix64(&splitMix)
        s1 = Self.splitMix64(&splitMix)
        s2 = Self.splitMix64(&splitMix)
        s3 = Self.splitMix64(&splitMix)
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = (s1 &* 5).rotatedLeft(by: 7) &* 9
        let shifted = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= shifted
        s3 = s3.rotatedLeft(by: 45)
        return result
    }

    /// A uniformly distributed integer in `range`, which must not be empty.
    public mutating func int(in range: Range<Int>) -> Int {
        precondition(!range.isEmpty, "SimRandom.int(in:) needs a non-empty range")
        let width = UInt64(bitPattern: Int64(range.upperBound &- range.lowerBound))
        return range.lowerBound &+ Int(bitPattern: UInt(uniform(below: width)))
    }

    /// A uniformly distributed integer in `range`.
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        let span = UInt64(bitPattern: Int64(range.upperBound &- range.lowerBound))
        // The full Int range has 2^64 values, one more than UInt64 can count: every word is fair.
        if span == UInt64.max { return Int(truncatingIfNeeded: next()) }
        return range.lowerBound &+ Int(bitPattern: UInt(uniform(below: span + 1)))
    }

    /// A uniformly distributed `Double` in `0 ..< 1` (53 random bits).
    public mutating func unit() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// True with probability `p` (false for `p <= 0`, true for `p >= 1`).
    public mutating func chance(_ p: Double) -> Bool {
        if p <= 0 { return false }
        if p >= 1 { return true }
        return unit() < p
    }

    /// `count` random bytes.
    public mutating func bytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0, "SimRandom.bytes needs a non-negative count")
        var out = [UInt8]()
        out.reserveCapacity(count)
        while out.count < count {
            var word = next()
            for _ in 0..<min(8, count - out.count) {
                out.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
        return out
    }

    /// A new generator for a component of its own, so that how much that component draws does not
    /// shift the numbers everyone else sees. Deterministic: the same parent state forks the same child.
    public mutating func fork() -> SimRandom {
        // Re-seeding through SplitMix64 from a fresh output decorrelates the child from the parent.
        SimRandom(seed: next())
    }

    /// A uniformly chosen element of `array`, which must not be empty.
    public mutating func pick<T>(_ array: [T]) -> T {
        precondition(!array.isEmpty, "SimRandom.pick needs a non-empty array")
        return array[int(in: 0..<array.count)]
    }

    /// A uniform value in `0 ..< bound` (bound > 0), by Lemire's multiply-and-reject method:
    /// the high word of `random * bound` is uniform once the few biased low words are rejected.
    private mutating func uniform(below bound: UInt64) -> UInt64 {
        precondition(bound > 0)
        var product = next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold {
                product = next().multipliedFullWidth(by: bound)
            }
        }
        return product.high
    }

    private static func splitMix64(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension UInt64 {
    fileprivate func rotatedLeft(by count: UInt64) -> UInt64 {
        (self << count) | (self >> (64 - count))
    }
}
