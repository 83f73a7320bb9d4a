import ProtocolCore
import Testing
@testable import StoreCore

extension ConfigTests {
    /// Issue 14: topic section names follow the one name rule (`MetaName`, with `*` for patterns),
    /// and `maxAutoCreatedPartitions` bounds what wildcard sections may create.
    @Suite struct Hardening {
        /// Refused section names keep the file, line and section in the error, and state the rule.
        @Test(arguments: ["[topic=..]", "[topic=.]", "[topic=a@b]", "[topic=w-/*]", "[topic=caf\u{E9}]",
                          "[topic=a:b]", "[topic=\(String(repeating: "t", count: 121))]"])
        func topicSectionNamesFollowTheNameRule(_ header: String) throws {
            let e = try #require(ConfigTests.error("[system]\nbrokerId=1\n\(header)\n"))
            #expect(e.kind == .invalidTopicName && e.line == 3 && e.path == ConfigTests.path, "\(header)")
            #expect(e.section == String(header.dropFirst().dropLast()))
            #expect(e.message.contains("is not valid") && e.message.contains(MetaName.ruleDescription), "\(e.message)")
            #expect(e.message.hasSuffix("('*' is a wildcard)"))
        }

        @Test func theErrorSaysWhatIsWrong() throws {
            let e = try #require(ConfigTests.error("[system]\nbrokerId=1\n[topic=w-/*]\n"))
            #expect(e.description == "conf/test.ini:3: [topic=w-/*]: topic name \"w-/*\" is not valid: '/' at byte 2; "
                    + "expected [topic=<name>] with \(MetaName.ruleDescription) ('*' is a wildcard)")
        }

        @Test func patternsAndPlainNamesAreAccepted() throws {
            let config = try ConfigTests.parse("[system]\nbrokerId=1\n[topic=w-*]\n[topic=*]\n[topic=meta_test.v2-x]\n")
            #expect(config.topics.map(\.name) == ["w-*", "*", "meta_test.v2-x"])
        }

        @Test func maxAutoCreatedPartitions() throws {
            #expect(try ConfigTests.parse("[system]\nbrokerId=1\n[topic=t]\n").maxAutoCreatedPartitions == 1024)
            #expect(try ConfigTests.parse(ConfigTests.withSystem("maxAutoCreatedPartitions=16*16")).maxAutoCreatedPartitions == 256)
            #expect(try ConfigTests.parse(ConfigTests.withSystem("maxAutoCreatedPartitions=0")).maxAutoCreatedPartitions == 0)
            #expect(try ConfigTests.parse(ConfigTests.withSystem("maxAutoCreatedPartitions=")).maxAutoCreatedPartitions == 1024,
                    "blank is the default")
            let negative = try #require(ConfigTests.error(ConfigTests.withSystem("maxAutoCreatedPartitions=-1")))
            #expect(negative.kind == .outOfRange && negative.key == "maxAutoCreatedPartitions")
            #expect(negative.message == "expected an integer in 0...2147483647, got -1")
            let misspelt = try #require(ConfigTests.error(ConfigTests.withSystem("maxAutoCreatedPartition=5")))
            #expect(misspelt.suggestion == "maxAutoCreatedPartitions")
            let inTopic = try #require(ConfigTests.error("[system]\nbrokerId=1\n[topic=t]\nmaxAutoCreatedPartitions=5\n"))
            #expect(inTopic.kind == .unknownKey && inTopic.message.hasSuffix("(maxAutoCreatedPartitions belongs in [system])"))
        }
    }
}
