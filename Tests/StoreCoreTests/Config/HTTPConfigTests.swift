import Testing
@testable import StoreCore

extension ConfigTests {
    /// Issue 19: the `[http]` section (the original's `enableHttp` of env.sh and `serverPort` of
    /// jettyBroker.properties, reference §7.1).
    @Suite struct HTTP {
        static func file(_ http: String) -> String { "[system]\nbrokerId=1\n[http]\n\(http)\n[topic=test]\n" }

        @Test func offByDefaultOn8080() throws {
            #expect(try ConfigTests.parse("[system]\nbrokerId=1\n[topic=t]\n").http == HTTPConfig(isEnabled: false, port: 8080))
            #expect(try ConfigTests.parse(Self.file("")).http == HTTPConfig())
        }

        @Test func bothKeysAcceptExpressions() throws {
            let http = try ConfigTests.parse(Self.file("enableHttp=true\nserverPort=8000+81")).http
            #expect(http == HTTPConfig(isEnabled: true, port: 8081))
        }

        @Test func badValuesAndKeysAreRefusedWithTheirLine() throws {
            let port = try #require(ConfigTests.error(Self.file("serverPort=70000")))
            #expect(port.kind == .outOfRange && port.line == 4 && port.key == "serverPort")
            let key = try #require(ConfigTests.error(Self.file("enableHtp=true")))
            #expect(key.kind == .unknownKey && key.message.hasPrefix("Invalid config key:enableHtp,do you mean 'enableHttp'?"))
            let flag = try #require(ConfigTests.error(Self.file("enableHttp=maybe")))
            #expect(flag.key == "enableHttp")
        }
    }
}
