import Testing
@testable import StoreCore

/// The server.ini parser (reference §8). Nested suites live in the other files of this folder, so
/// `swift test --filter ConfigTests` runs them all.
@Suite enum ConfigTests {
    static let path = "conf/test.ini"

    static func parse(_ text: String) throws(ConfigError) -> ServerConfig {
        try ServerConfig(parsing: text, path: path)
    }

    /// The error `text` is rejected with; nil when it parses.
    static func error(_ text: String) -> ConfigError? {
        do throws(ConfigError) {
            _ = try parse(text)
            return nil
        } catch {
            return error
        }
    }

    /// A file that is valid apart from what the test puts into `[system]` (and adds after it).
    static func withSystem(_ system: String, then rest: String = "") -> String {
        "[system]\nbrokerId=1\n\(system)\n\(rest)\n[topic=test]\n"
    }
}
