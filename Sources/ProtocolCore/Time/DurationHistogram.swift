/// Durations in nanoseconds counted in log-linear buckets: values below 16 ns exactly, larger
/// ones in 16 buckets per power of two, so a percentile is within 1/16 (6.25 %) of the true value.
/// Fixed size (≈ 8 KiB), no allocation after creation: cheap enough to run always, on hot paths.
public struct DurationHistogram: Sendable {
    static let subBuckets = 16
    static let subBits = 4
    private var counts: [UInt64]
    public private(set) var count: UInt64 = 0
    public private(set) var maxNanoseconds: UInt64 = 0
    /// Sum of every recorded value (saturating), for totals such as "time spent in fdatasync".
    public private(set) var totalNanoseconds: UInt64 = 0

    public init() {
        counts = [UInt64](repeating: 0, count: (64 - Self.subBits + 1) * Self.subBuckets)
    }

    static func bucket(of value: UInt64) -> Int {
        if value < UInt64(subBuckets) { return Int(value) }
        let msb = 63 - value.leadingZeroBitCount                 // ≥ subBits
        let mantissa = Int(value >> UInt64(msb - subBits)) & (subBuckets - 1)
        return (msb - subBits + 1) * subBuckets + mantissa
    }

    /// The largest value that falls in `bucket`.
    static func upperBound(of bucket: Int) -> UInt64 {
        if bucket < subBuckets { return UInt64(bucket) }
        let msb = bucket / subBuckets + subBits - 1
        let mantissa = UInt64(bucket % subBuckets) | UInt64(subBuckets)
        let shift = UInt64(msb - subBits)
        let low = mantissa << shift
        return low &+ ((1 << shift) - 1)
    }

    /// Records `value` `times` times (a batch whose members all took at most `value`).
    public mutating func record(nanoseconds value: UInt64, times: UInt64 = 1) {
        guard times > 0 else { return }
        counts[Self.bucket(of: value)] += times
        count += times
        maxNanoseconds = max(maxNanoseconds, value)
        let (product, overflowed) = value.multipliedReportingOverflow(by: times)
        let (sum, overflow) = totalNanoseconds.addingReportingOverflow(product)
        totalNanoseconds = overflow || overflowed ? .max : sum
    }

    /// Records `to − from` (`times` times), or nothing if the clock went backwards.
    public mutating func record(from: Instant, to: Instant, times: UInt64 = 1) {
        guard to.nanoseconds >= from.nanoseconds else { return }
        record(nanoseconds: UInt64(to.nanoseconds - from.nanoseconds), times: times)
    }

    /// The value at `quantile` (0…1): the upper bound of its bucket, never above the maximum
    /// recorded. 0 when empty.
    public func value(atQuantile quantile: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let rank = max(1, UInt64((Double(count) * min(max(quantile, 0), 1)).rounded(.up)))
        var seen: UInt64 = 0
        for (bucket, n) in counts.enumerated() where n > 0 {
            seen += n
            if seen >= rank { return min(Self.upperBound(of: bucket), maxNanoseconds) }
        }
        return maxNanoseconds
    }

    /// How many recorded values are above `nanoseconds` (to within a bucket).
    public func countAbove(nanoseconds threshold: UInt64) -> UInt64 {
        let first = Self.bucket(of: threshold) + 1
        return counts[first...].reduce(0, +)
    }

    public mutating func reset() { self = DurationHistogram() }
}
