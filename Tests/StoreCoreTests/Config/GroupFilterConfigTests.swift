import ProtocolCore
import Testing
@testable import StoreCore

extension ConfigTests {
    /// `group.<group>=<filter>` in `[topic=…]` (reference §5.7): parsed once at load, every form,
    /// and the original's Java class names refused with the file, line and key.
    @Suite struct GroupFilters {
        @Test func everyFormIsParsedAtLoad() throws {
            let config = try ConfigTests.parse("""
                [system]
                brokerId=1
                [topic=test]
                group.g1=red
                group.g2=prefix:abc
                group.g3=any:red,green
                group.g4=not:red
                group.g5=exact:com.example.MyFilter
                """)
            let test = try #require(config.topicConfig(for: "test"))
            #expect(test.groupFilters.map(\.group) == ["g1", "g2", "g3", "g4", "g5"])
            #expect(test.filter(forGroup: "g1") == .exact("red"))
            #expect(test.filter(forGroup: "g2") == .prefix("abc"))
            #expect(test.filter(forGroup: "g3") == .anyOf(["red", "green"]))
            #expect(test.filter(forGroup: "g4") == .not(.exact("red")))
            #expect(test.filter(forGroup: "g5") == .exact("com.example.MyFilter"))
        }

        @Test func javaClassNameStopsTheLoadWithFileLineAndKey() throws {
            let e = try #require(ConfigTests.error("[system]\nbrokerId=1\n[topic=test]\nstat=true\ngroup.g1=com.x.MyFilter\n"))
            #expect(e.kind == .badFilter && e.line == 5 && e.section == "topic=test" && e.key == "group.g1")
            #expect(e.description.hasPrefix("conf/test.ini:5: [topic=test] group.g1: 'com.x.MyFilter' looks like a Java filter class"))
            #expect(e.message.contains("exact:com.x.MyFilter"))
        }

        @Test func malformedExpressionsStopTheLoad() throws {
            for value in ["prefix:", "any:a,,b", "regex:a.*", "not:"] {
                let e = try #require(ConfigTests.error("[system]\nbrokerId=1\n[topic=t]\ngroup.g=\(value)\n"), "\(value)")
                #expect(e.kind == .badFilter && e.line == 4 && e.key == "group.g", "\(value)")
            }
        }
    }
}
