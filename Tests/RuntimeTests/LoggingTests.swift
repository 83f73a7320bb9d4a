import Foundation
import Logging
import Synchronization
import Testing
@testable import Runtime

/// Issue 19's logging: JSON lines that any JSON parser reads back exactly (quotes, backslashes,
/// control characters), levels chosen by flag over environment over default, and the bounded
/// ring of recent lines the dashboard reads.
@Suite("Logging (JSON lines, levels, recent lines)")
struct LoggingTests {
    /// Collects what a `JSONLogHandler` writes.
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        var output: JSONLogOutput { JSONLogOutput { line in self.lines.withLock { $0.append(line) } } }
        var all: [String] { lines.withLock { $0 } }
    }

    static func object(_ line: String) throws -> [String: Any] {
        #expect(line.hasSuffix("\n") && line.dropLast().firstIndex(of: "\n") == nil, "one line: \(line)")
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test("quotes, backslashes and control characters are escaped and read back exactly")
    func escaping() throws {
        let nasty = "say \"hi\"\\ back\nnew line\r\ttab \u{0}nul \u{1}\u{1F}\u{7F} bell\u{7} é 日本 \u{2028}"
        let lines = Lines()
        var handler = JSONLogHandler(label: "lab\"el", includeLocation: true, output: lines.output)
        handler.logLevel = .trace
        handler[metadataKey: "fixed"] = "x"
        let logger = Logger(label: "ignored") { _ in handler }
        logger.warning("\(nasty)", metadata: ["key\"\n": "\(nasty)", "nested": ["inner": "v", "deeper": ["k": "w"]],
                                              "list": ["a", "b\"c"], "message": "clash"])
        let line = try #require(lines.all.first)
        #expect(!line.contains("\u{0}") && !line.contains("\u{1}") && !line.contains("\u{7F}") && !line.contains("\u{2028}"))
        let object = try Self.object(line)
        #expect(object["message"] as? String == nasty)
        #expect(object["key\"\n"] as? String == nasty)
        #expect(object["label"] as? String == "lab\"el")
        #expect(object["level"] as? String == "warning")
        #expect(object["fixed"] as? String == "x")
        #expect(object["nested.inner"] as? String == "v")
        #expect(object["nested.deeper.k"] as? String == "w")
        #expect(object["list"] as? [String] == ["a", "b\"c"])
        #expect(object["metadata.message"] as? String == "clash", "a key naming a fixed field does not hide it")
        #expect(object["source"] as? String == "RuntimeTests")
        #expect((object["file"] as? String)?.hasPrefix("LoggingTests.swift:") == true)
        let time = try #require(object["time"] as? String)
        #expect(time.count == 24 && time.hasSuffix("Z") && time.contains("."), "ISO 8601 with ms: \(time)")
    }

    @Test("events below the level are not written; each event is one line")
    func levels() throws {
        let lines = Lines()
        var handler = JSONLogHandler(label: "l", includeLocation: false, output: lines.output)
        handler.logLevel = .warning
        let logger = Logger(label: "l") { _ in handler }
        logger.debug("no")
        logger.info("no")
        logger.notice("no")
        logger.warning("yes 1")
        logger.error("yes 2")
        logger.critical("yes 3")
        #expect(try lines.all.map { try Self.object($0)["level"] as? String } == ["warning", "error", "critical"])
        #expect(try lines.all.allSatisfy { try Self.object($0)["file"] == nil }, "no location unless asked")
    }

    @Test("ISO 8601 timestamps in UTC with milliseconds")
    func timestamps() {
        #expect(LogTimestamp.iso8601(wallMs: 0) == "1970-01-01T00:00:00.000Z")
        #expect(LogTimestamp.iso8601(wallMs: 1_796_513_058_123) == "2026-12-05T23:24:18.123Z")
        #expect(LogTimestamp.iso8601(wallMs: -1) == "1969-12-31T23:59:59.999Z")
    }

    @Test("level and format: flag over environment over default; bad values name their source")
    func settings() throws {
        #expect(try LogSettings(level: nil, format: nil, environment: [:]) == LogSettings(level: .info, format: .text))
        let env = ["METAQ_LOG_LEVEL": "DEBUG", "METAQ_LOG_FORMAT": "json"]
        #expect(try LogSettings(level: nil, format: nil, environment: env) == LogSettings(level: .debug, format: .json))
        #expect(try LogSettings(level: "error", format: "text", environment: env) == LogSettings(level: .error, format: .text))
        #expect(try LogSettings(level: nil, format: nil, environment: ["METAQ_LOG_LEVEL": ""]) == LogSettings())
        #expect(throws: LogSettingsError.self) { try LogSettings(level: "loud", format: nil, environment: [:]) }
        do {
            _ = try LogSettings(level: nil, format: nil, environment: ["METAQ_LOG_FORMAT": "xml"])
            Issue.record("xml accepted")
        } catch {
            #expect(error.description.contains("METAQ_LOG_FORMAT") && error.description.contains("text, json"))
        }
        // The handler made for a logger filters at the chosen level in both outputs.
        let recent = RecentLogLines(capacity: 10)
        let handler = LogSettings(level: .notice, format: .json).makeHandler(label: "x", recent: recent)
        #expect(handler.logLevel == .notice)
        let logger = Logger(label: "x") { _ in LogSettings(level: .notice, format: .text).makeHandler(label: "x", recent: recent) }
        logger.info("dropped")
        logger.notice("kept", metadata: ["k": "v"])
        #expect(recent.lines().count == 1)
        #expect(recent.lines().first?.hasSuffix(" notice x: kept k=v") == true)
    }

    @Test("recent lines: bounded, oldest dropped first, long lines cut on a character boundary")
    func recentLines() {
        let ring = RecentLogLines(capacity: 5)
        #expect(ring.lines().isEmpty)
        for index in 0..<3 { ring.append("line \(index)") }
        #expect(ring.lines() == ["line 0", "line 1", "line 2"])
        for index in 3..<13 { ring.append("line \(index)") }
        #expect(ring.lines() == (8..<13).map { "line \($0)" })
        #expect(ring.lines(last: 2) == ["line 11", "line 12"])
        #expect(ring.lines(last: 50).count == 5)
        let long = String(repeating: "é", count: RecentLogLines.maxLineBytes)  // 2 bytes each
        ring.append(long)
        let kept = ring.lines().last ?? ""
        #expect(kept.hasSuffix("…") && kept.utf8.count <= RecentLogLines.maxLineBytes + 3)
        #expect(kept.dropLast().allSatisfy { $0 == "é" })
    }

    @Test("recent lines from many threads at once: never more than the capacity, no line lost below it")
    func recentLinesConcurrently() async {
        let ring = RecentLogLines(capacity: 400)
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask { for index in 0..<50 { ring.append("w\(writer) \(index)") } }
            }
        }
        #expect(ring.lines().count == 400)
        #expect(Set(ring.lines()).count == 400)
        for index in 0..<200 { ring.append("more \(index)") }
        #expect(ring.lines().count == 400)
        #expect(ring.lines().suffix(200) == (0..<200).map { "more \($0)" }[...])
    }
}
