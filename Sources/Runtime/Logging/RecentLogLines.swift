import Logging
import Synchronization

/// The broker's last log lines, kept in memory for the dashboard's logging page (issue 19):
/// a bounded ring (oldest dropped first; each line cut at `maxLineBytes`), safe to append to from
/// any thread and to read while the broker logs. Fed by `RecentLogLinesHandler`, which
/// `LogSettings.bootstrap` multiplexes next to the output handler.
public final class RecentLogLines: Sendable {
    public static let defaultCapacity = 1000
    /// Longer lines are cut (with `…`): a huge metadata value cannot make the ring large.
    public static let maxLineBytes = 4096
    public let capacity: Int
    private let ring: Mutex<Ring>

    struct Ring {
        var lines: [String] = []
        var next = 0
    }

    public init(capacity: Int = RecentLogLines.defaultCapacity) {
        self.capacity = max(1, capacity)
        ring = Mutex(Ring())
    }

    public func append(_ line: String) {
        let stored = line.utf8.count > Self.maxLineBytes ? Self.truncated(line) : line
        ring.withLock { ring in
            if ring.lines.count < capacity {
                ring.lines.append(stored)
            } else {
                ring.lines[ring.next] = stored
            }
            ring.next = (ring.next + 1) % capacity
        }
    }

    /// Every kept line, oldest first.
    public func lines() -> [String] {
        ring.withLock { ring in
            ring.lines.count < capacity ? ring.lines : Array(ring.lines[ring.next...] + ring.lines[..<ring.next])
        }
    }

    /// The last `count` lines, oldest first.
    public func lines(last count: Int) -> [String] { Array(lines().suffix(max(0, count))) }

    static func truncated(_ line: String) -> String {
        var utf8 = Array(line.utf8.prefix(maxLineBytes))
        while let last = utf8.last, last & 0xC0 == 0x80 { utf8.removeLast() }   // whole characters only
        if let last = utf8.last, last >= 0xC0 { utf8.removeLast() }
        return String(decoding: utf8, as: UTF8.self) + "…"
    }
}

/// Feeds a `RecentLogLines` with every event at or above its level, as one text line:
/// `2026-12-05T23:24:18.123Z info metaq-server: message key=value …`.
public struct RecentLogLinesHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let sink: RecentLogLines

    public init(label: String, sink: RecentLogLines) {
        self.label = label
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = JSONLogHandler.merged(metadata, metadataProvider, event)
        var line = "\(LogTimestamp.iso8601(wallMs: Clocks.wallMs())) \(event.level) \(label): \(event.message)"
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        sink.append(line)
    }
}
