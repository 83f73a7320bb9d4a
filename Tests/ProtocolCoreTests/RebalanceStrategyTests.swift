import Testing
@testable import ProtocolCore

private func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
}

@Suite struct MD5Tests {
    /// RFC 1321 appendix A.5, the test suite.
    @Test(arguments: [
        ("", "d41d8cd98f00b204e9800998ecf8427e"),
        ("a", "0cc175b9c0f1b6a831c399e269772661"),
        ("abc", "900150983cd24fb0d6963f7d28e17f72"),
        ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
        ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
        ("12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"),
    ])
    func rfc1321Vectors(input: String, expected: String) {
        #expect(hexString(MD5.digest(input)) == expected)
    }

    /// Lengths around the padding boundaries (56 bytes needs a second block; 64 is one full block).
    /// Expected values from coreutils `md5sum`.
    @Test(arguments: [
        (55, "ef1772b6dff9a122358552954ad0df65"),
        (56, "3b0c8ac703f828b04c6c197006d17218"),
        (63, "b06521f39153d618550606be297466d5"),
        (64, "014842d480b571495a4a0363793f7367"),
        (65, "c743a45e0d2e6a95cb859adae0248435"),
    ])
    func paddingBoundaries(length: Int, expected: String) {
        #expect(hexString(MD5.digest([UInt8](repeating: UInt8(ascii: "a"), count: length))) == expected)
    }
}

@Suite struct RebalanceStrategyTests {
    private func partitions(_ count: Int) -> [String] {
        (0..<count).map { "0-\($0)" }.sorted(by: RebalanceStrategy.precedes)
    }
    private func consumers(_ count: Int) -> [String] {
        (0..<count).map { "g_c\($0)" }.sorted(by: RebalanceStrategy.precedes)
    }

    /// §3.4 step 3 for every shape P in 0...10, C in 1...10: each share is the formula's slice, the
    /// shares cover every partition exactly once, and their sizes differ by at most one.
    @Test func defaultStrategyFollowsTheFormulaForEveryShape() {
        for p in 0...10 {
            for c in 1...10 {
                let parts = partitions(p)
                let members = consumers(c)
                var seen: [String] = []
                var sizes: [Int] = []
                for (i, member) in members.enumerated() {
                    let mine = RebalanceStrategy.default.assign(partitions: parts, consumers: members, me: member)
                    let n = p / c, extra = p % c
                    let start = n * i + min(i, extra)
                    let count = n + (i < extra ? 1 : 0)
                    #expect(mine == Array(parts[start..<(start + count)]), "P=\(p) C=\(c) i=\(i)")
                    if i >= p { #expect(mine.isEmpty, "consumers beyond P get nothing") }
                    seen += mine
                    sizes.append(mine.count)
                }
                #expect(seen.sorted() == parts.sorted(), "P=\(p) C=\(c): every partition exactly once")
                #expect((sizes.max() ?? 0) - (sizes.min() ?? 0) <= 1, "P=\(p) C=\(c)")
            }
        }
    }

    @Test func aConsumerNotInTheListGetsNothing() {
        #expect(RebalanceStrategy.default.assign(partitions: partitions(4), consumers: consumers(2), me: "g_x").isEmpty)
        #expect(RebalanceStrategy.consistentHash.assign(partitions: partitions(4), consumers: consumers(2), me: "g_x").isEmpty)
    }

    /// §3.4 step 2: partitions sort as strings, so with 11 partitions `0-10` is second and the
    /// first of two consumers takes 0-0, 0-1, 0-10, 0-2, 0-3, 0-4.
    @Test func partitionsSortAsStrings() {
        let children = [(name: "0-m", registration: TopicRegistration(numParts: 11, broker: "0-m"))]
        let strings = RebalanceStrategy.partitionStrings(topicSubChildren: children)
        #expect(Array(strings.prefix(4)) == ["0-0", "0-1", "0-10", "0-2"])
        let first = RebalanceStrategy.default.assign(partitions: strings, consumers: ["g_a", "g_b"], me: "g_a")
        #expect(first == ["0-0", "0-1", "0-10", "0-2", "0-3", "0-4"])
    }

    /// Master and slave of a broker give the same strings once; children that are not broker
    /// nodes are skipped.
    @Test func partitionStringsDeduplicateMasterAndSlaves() {
        let children: [(name: String, registration: TopicRegistration)] = [
            ("1-s0", TopicRegistration(numParts: 2, broker: "1-s0")),
            ("1-m", TopicRegistration(numParts: 2, broker: "1-m")),
            ("0-m", TopicRegistration(numParts: 1, broker: "0-m")),
            ("junk", TopicRegistration(numParts: 3, broker: "junk")),
        ]
        #expect(RebalanceStrategy.partitionStrings(topicSubChildren: children) == ["0-0", "1-0", "1-1"])
    }

    @Test func consumersOfATopicAreFilteredAndSorted() {
        let members: [(id: String, topics: [String])] = [
            ("g_c2", ["a", "b"]), ("g_c10", ["a"]), ("g_c1", ["b"]), ("g_c3", ["a"]),
        ]
        #expect(RebalanceStrategy.consumers(subscribedTo: "a", in: members) == ["g_c10", "g_c2", "g_c3"])
        #expect(RebalanceStrategy.consumers(subscribedTo: "c", in: members).isEmpty)
    }

    @Test func javaStringOrderComparesUTF16Units() {
        // U+FF21 (one UTF-16 unit 0xFF21) sorts after U+1F600 (surrogates 0xD83D…) in Java's order,
        // though its scalar value is smaller.
        #expect(RebalanceStrategy.precedes("\u{1F600}", "\u{FF21}"))
        #expect(!RebalanceStrategy.precedes("\u{FF21}", "\u{1F600}"))
        #expect(RebalanceStrategy.precedes("0-10", "0-2"))
    }

    /// Owners computed independently (a Python transcription of §3.4 step 4 over hashlib.md5).
    @Test func consistentHashMatchesAnIndependentComputation() {
        let members = ["g_c1", "g_c2", "g_c3"]
        let parts = (0..<2).flatMap { b in (0..<6).map { "\(b)-\($0)" } }.sorted(by: RebalanceStrategy.precedes)
        let strategy = RebalanceStrategy.consistentHash
        #expect(strategy.assign(partitions: parts, consumers: members, me: "g_c1") == ["0-3", "0-4", "1-0", "1-3", "1-4"])
        #expect(strategy.assign(partitions: parts, consumers: members, me: "g_c2") == ["0-2", "1-2", "1-5"])
        #expect(strategy.assign(partitions: parts, consumers: members, me: "g_c3") == ["0-0", "0-1", "0-5", "1-1"])
        #expect(HashRing.hash("0-0") == 53_638_855)
    }

    @Test func consistentHashGivesEachPartitionOneOwnerDeterministically() {
        let parts = (0..<4).flatMap { b in (0..<8).map { "\(b)-\($0)" } }.sorted(by: RebalanceStrategy.precedes)
        for c in 1...6 {
            let members = consumers(c)
            let shares = members.map { RebalanceStrategy.consistentHash.assign(partitions: parts, consumers: members, me: $0) }
            #expect(shares.flatMap { $0 }.sorted() == parts.sorted(), "C=\(c)")
            let again = members.map { RebalanceStrategy.consistentHash.assign(partitions: parts, consumers: members, me: $0) }
            #expect(again == shares)
        }
    }

    /// The point of a ring: a new consumer only takes partitions; nobody else's share changes hands.
    @Test func consistentHashMovesPartitionsOnlyToANewConsumer() {
        let parts = (0..<4).flatMap { b in (0..<8).map { "\(b)-\($0)" } }.sorted(by: RebalanceStrategy.precedes)
        for c in 1...6 {
            let before = consumers(c)
            let newcomer = "g_new\(c)"
            let after = (before + [newcomer]).sorted(by: RebalanceStrategy.precedes)
            let oldRing = HashRing(consumers: before), newRing = HashRing(consumers: after)
            for p in parts {
                let oldOwner = before[oldRing.owner(of: p)]
                let newOwner = after[newRing.owner(of: p)]
                #expect(newOwner == oldOwner || newOwner == newcomer, "C=\(c) \(p): \(oldOwner) → \(newOwner)")
            }
        }
    }

    /// Equal ring points: the one put last (later consumer in the sorted list) owns it, like the
    /// original's TreeMap. A consumer listed twice puts the same 160 points twice.
    @Test func consistentHashTiesGoToTheLaterConsumer() {
        let ring = HashRing(consumers: ["g_a", "g_a"])
        #expect(ring.points.count == 160)
        #expect(ring.points.allSatisfy { $0.consumer == 1 })
    }
}
