import Glibc
import Logging
import Synchronization

/// A swift-log handler writing one JSON object per line (`--log-format json`, for log shippers):
/// `{"time":"2026-12-05T23:24:18.123Z","level":"info","label":"metaq-server","message":"…",
/// "source":"Runtime",<metadata keys>…}`. Metadata is flattened into the object: nested
/// dictionaries as `outer.inner` keys, arrays as arrays of strings; a key that would hide one of
/// the fixed fields gets a `metadata.` prefix. With `includeLocation`, `"file":"Start.swift:123"`.
/// Each line is written whole with one lock held, so lines of different threads never interleave.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let includeLocation: Bool
    let output: JSONLogOutput

    /// A handler writing to standard error.
    public static func standardError(label: String, includeLocation: Bool = false) -> JSONLogHandler {
        JSONLogHandler(label: label, includeLocation: includeLocation, output: .standardError)
    }

    init(label: String, includeLocation: Bool, output: JSONLogOutput) {
        self.label = label
        self.includeLocation = includeLocation
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = Self.merged(metadata, metadataProvider, event)
        let line = Self.line(time: LogTimestamp.iso8601(wallMs: Clocks.wallMs()), level: event.level, label: label, message: "\(event.message)",
                             metadata: merged, source: event.source,
                             location: includeLocation ? "\(Self.fileName(event.file)):\(event.line)" : nil)
        output.write(line)
    }

    /// One whole line, newline included.
    static func line(time: String, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata,
                     source: String, location: String?) -> String {
        var fields: [(String, String)] = [
            ("time", quoted(time)), ("level", quoted(level.rawValue)), ("label", quoted(label)),
            ("message", quoted(message)), ("source", quoted(source)),
        ]
        if let location { fields.append(("file", quoted(location))) }
        let fixed = Set(fields.map(\.0))
        for (key, value) in flatten(metadata).sorted(by: { $0.0 < $1.0 }) {
            fields.append((fixed.contains(key) ? "metadata.\(key)" : key, value))
        }
        var text = "{"
        for (index, field) in fields.enumerated() {
            if index > 0 { text += "," }
            text += quoted(field.0) + ":" + field.1
        }
        return text + "}\n"
    }

    /// Metadata as (key, JSON value) pairs, nested dictionaries flattened to dotted keys.
    static func flatten(_ metadata: Logger.Metadata, prefix: String = "") -> [(String, String)] {
        var pairs: [(String, String)] = []
        for (key, value) in metadata {
            let name = prefix + key
            switch value {
            case .string(let text): pairs.append((name, quoted(text)))
            case .stringConvertible(let convertible): pairs.append((name, quoted(convertible.description)))
            case .array(let values): pairs.append((name, "[" + values.map { quoted($0.description) }.joined(separator: ",") + "]"))
            case .dictionary(let nested): pairs += flatten(nested, prefix: name + ".")
            }
        }
        return pairs
    }

    /// `text` as a JSON string (`JSONString`).
    static func quoted(_ text: String) -> String { JSONString.quoted(text) }

    /// A line's metadata as both handlers of the broker print it: the handler's, the provider's,
    /// the event's (later ones win), and the event's error under `error`.
    static func merged(_ metadata: Logger.Metadata, _ provider: Logger.MetadataProvider?, _ event: LogEvent) -> Logger.Metadata {
        var merged = metadata
        if let provided = provider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        if let error = event.error { merged["error"] = "\(error)" }
        return merged
    }

    static func fileName(_ path: String) -> Substring {
        path.split(separator: "/").last ?? Substring(path)
    }
}

/// Where JSON lines go: standard error (one `write` per line under a process-wide lock), or a
/// closure (tests).
struct JSONLogOutput: Sendable {
    let write: @Sendable (String) -> Void

    static let standardError = JSONLogOutput { line in StandardErrorWriter.write(line) }
}

/// Writes whole lines to file descriptor 2, one writer at a time.
enum StandardErrorWriter {
    static let lock = Mutex(())

    static func write(_ line: String) {
        var bytes = Array(line.utf8)
        lock.withLock { _ in
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress! + offset, $0.count - offset) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                offset += n
            }
        }
    }
}
