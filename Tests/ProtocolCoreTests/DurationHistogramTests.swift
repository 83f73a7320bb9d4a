import Testing
@testable import ProtocolCore

@Suite("DurationHistogram")
struct DurationHistogramTests {
    @Test("bucket bounds: every value lies at or below its bucket's upper bound, above the previous one's")
    func bucketsCoverValues() {
        var values: [UInt64] = Array(0..<300)
        for shift in 8..<63 { values += [1 << shift, (1 << shift) - 1, (1 << shift) + 1, (1 << shift) * 3 / 2] }
        values.append(.max)
        for value in values {
            let bucket = DurationHistogram.bucket(of: value)
            #expect(value <= DurationHistogram.upperBound(of: bucket), "value \(value) bucket \(bucket)")
            if bucket > 0 { #expect(value > DurationHistogram.upperBound(of: bucket - 1), "value \(value) bucket \(bucket)") }
        }
    }

    @Test("percentiles within 1/16 of the exact ones; max and total exact")
    func percentiles() {
        var histogram = DurationHistogram()
        var exact: [UInt64] = []
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<10_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let value = 1_000 + (state >> 40) % 5_000_000      // 1 µs … 5 ms
            histogram.record(nanoseconds: value)
            exact.append(value)
        }
        exact.sort()
        for q in [0.5, 0.9, 0.99, 0.999] {
            let truth = Double(exact[Int((Double(exact.count) * q).rounded(.up)) - 1])
            let got = Double(histogram.value(atQuantile: q))
            #expect(got >= truth && got <= truth * (1 + 1.0 / 16), "q \(q): \(got) vs \(truth)")
        }
        #expect(histogram.value(atQuantile: 1) == exact.last)
        #expect(histogram.maxNanoseconds == exact.last)
        #expect(histogram.count == 10_000)
        #expect(histogram.totalNanoseconds == exact.reduce(0, +))
    }

    @Test("countAbove, empty histogram, clock going backwards")
    func edges() {
        var histogram = DurationHistogram()
        #expect(histogram.value(atQuantile: 0.99) == 0)
        for ms: UInt64 in [1, 2, 3, 50, 1_500] { histogram.record(nanoseconds: ms * 1_000_000) }
        #expect(histogram.countAbove(nanoseconds: 10_000_000) == 2)
        #expect(histogram.countAbove(nanoseconds: 1_000_000_000) == 1)
        histogram.record(from: Instant(nanoseconds: 10), to: Instant(nanoseconds: 5))
        #expect(histogram.count == 5)
        // A batch counts once per member: 95 puts at 9 ms outweigh the 5 single values.
        histogram.record(from: Instant(nanoseconds: 1_000_000), to: Instant(nanoseconds: 10_000_000), times: 95)
        #expect(histogram.count == 100)
        #expect(histogram.value(atQuantile: 0.5) >= 9_000_000 && histogram.value(atQuantile: 0.5) <= 9_000_000 * 17 / 16)
        #expect(histogram.totalNanoseconds == (1 + 2 + 3 + 50 + 1_500) * 1_000_000 + 95 * 9_000_000)
        histogram.reset()
        #expect(histogram.count == 0 && histogram.maxNanoseconds == 0)
    }
}
