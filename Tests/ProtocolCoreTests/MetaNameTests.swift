import Testing
@testable import ProtocolCore

/// The one rule for names that become paths (DESIGN.md §8, issue 14): a partition directory
/// `<topic>-<n>` (reference §2.2), a recover store `<topic>@<group>` (§5.2), a spool lane (§5.6).
@Suite("MetaName: topic and group names")
struct MetaNameTests {
    /// Names MetaQ deployments use (`meta-test`, `order_v2.events`), at the byte bound.
    @Test(arguments: ["test", "meta-test", "order_v2.events", "T0", "-", "_", "...", ".hidden", "a..b",
                      String(repeating: "x", count: 120)])
    func accepted(_ name: String) {
        #expect(MetaName.problem(with: name) == nil)
        #expect(MetaName.isValid(name))
    }

    @Test(arguments: [
        ("", MetaName.Problem.empty),
        (".", .dotsOnly),
        ("..", .dotsOnly),
        ("a/b", .forbiddenByte(UInt8(ascii: "/"), at: 1)),
        ("w-/../../x", .forbiddenByte(UInt8(ascii: "/"), at: 2)),
        ("/abs", .forbiddenByte(UInt8(ascii: "/"), at: 0)),
        ("a\u{0}b", .forbiddenByte(0, at: 1)),
        ("a b", .forbiddenByte(UInt8(ascii: " "), at: 1)),
        ("tab\t", .forbiddenByte(9, at: 3)),
        ("line\r\n", .forbiddenByte(13, at: 4)),
        ("del\u{7F}", .forbiddenByte(0x7F, at: 3)),
        ("t@g", .forbiddenByte(UInt8(ascii: "@"), at: 1)),
        ("w-*", .forbiddenByte(UInt8(ascii: "*"), at: 2)),
        ("a\\b", .forbiddenByte(UInt8(ascii: "\\"), at: 1)),
        ("a:b", .forbiddenByte(UInt8(ascii: ":"), at: 1)),
        ("主题", .forbiddenByte(0xE4, at: 0)),
        ("café", .forbiddenByte(0xC3, at: 3)),
        (String(repeating: "x", count: 121), .tooLong(bytes: 121)),
    ])
    func refused(_ name: String, _ problem: MetaName.Problem) {
        #expect(MetaName.problem(with: name) == problem, "\(name.debugDescription)")
        #expect(!MetaName.isValid(name))
    }

    /// `[topic=…]` patterns may hold `*`; everything else follows the same rule.
    @Test func patternsMayHoldWildcards() {
        #expect(MetaName.problem(with: "w-*", allowingWildcard: true) == nil)
        #expect(MetaName.problem(with: "*", allowingWildcard: true) == nil)
        #expect(MetaName.problem(with: "w-/*", allowingWildcard: true) == .forbiddenByte(UInt8(ascii: "/"), at: 2))
        #expect(MetaName.problem(with: "..", allowingWildcard: true) == .dotsOnly)
    }

    /// The error names what was refused and why, shows control characters escaped, and states the rule.
    @Test func refusalTexts() throws {
        #expect(MetaName.refusal("topic", "a\u{0}b", .forbiddenByte(0, at: 1))
                == #"topic name "a\0b" is not valid: a NUL byte at byte 1; expected 1 to 120 ASCII letters, digits, '.', '_' or '-', and not '.' or '..'"#)
        let error = try #require(throws: MetaNameError.self) { try MetaName.check("group", "..") }
        #expect(error.description.hasPrefix(#"group name ".." is not valid: '.' and '..' name directories; expected"#))
        #expect(MetaName.Problem.tooLong(bytes: 121).description == "it is 121 bytes long, more than 120")
        #expect(MetaName.Problem.forbiddenByte(0xC3, at: 3).description == "a non-ASCII character at byte 3")
        #expect(MetaName.Problem.forbiddenByte(9, at: 0).description == "a control character (0x9) at byte 0")
    }

    /// The bound keeps every directory name built from two names within Linux's 255-byte limit.
    @Test func longestDerivedFileNamesFit() {
        let longest = String(repeating: "x", count: MetaName.maxBytes)
        #expect("\(longest)@\(longest)".utf8.count <= 255)
        #expect(TopicPartition(longest, Int32.max).description.utf8.count <= 255)
        #expect("\(longest)@\(BrokerPartition(brokerId: Int.max, partition: Int.max))".utf8.count <= 255)
    }
}
