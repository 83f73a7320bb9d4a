import Logging

/// How metaq-server logs (docs/OPERATIONS.md, "Logging"): the least level written and the
/// line format. `metaq-server start --log-level/--log-format` win over the `METAQ_LOG_LEVEL` /
/// `METAQ_LOG_FORMAT` environment variables, which win over the defaults (info, text).
public struct LogSettings: Equatable, Sendable {
    public enum Format: String, CaseIterable, Sendable {
        /// swift-log's `StreamLogHandler` lines, as before issue 19.
        case text
        /// One JSON object per line (`JSONLogHandler`).
        case json
    }

    public static let levelVariable = "METAQ_LOG_LEVEL"
    public static let formatVariable = "METAQ_LOG_FORMAT"

    public var level: Logger.Level = .info
    public var format: Format = .text

    public init(level: Logger.Level = .info, format: Format = .text) {
        self.level = level
        self.format = format
    }

    /// The settings from the command line's values (nil when not given) and the environment.
    /// Throws `LogSettingsError` naming the bad value and where it came from.
    public init(level: String?, format: String?, environment: [String: String]) throws(LogSettingsError) {
        if let text = level ?? environment[Self.levelVariable].flatMap({ $0.isEmpty ? nil : $0 }) {
            guard let parsed = Logger.Level(rawValue: text.lowercased()) else {
                throw LogSettingsError(description: "log level '\(text)' (\(level == nil ? Self.levelVariable : "--log-level")) "
                    + "is not one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            self.level = parsed
        }
        if let text = format ?? environment[Self.formatVariable].flatMap({ $0.isEmpty ? nil : $0 }) {
            guard let parsed = Format(rawValue: text.lowercased()) else {
                throw LogSettingsError(description: "log format '\(text)' (\(format == nil ? Self.formatVariable : "--log-format")) "
                    + "is not one of \(Format.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            self.format = parsed
        }
    }

    /// The handler one logger gets: the output in the chosen format, and the `recent` ring for
    /// the dashboard, both at the chosen level.
    public func makeHandler(label: String, recent: RecentLogLines?) -> any LogHandler {
        var output: any LogHandler
        switch format {
        case .text: output = StreamLogHandler.standardError(label: label)
        case .json: output = JSONLogHandler.standardError(label: label)
        }
        output.logLevel = level
        guard let recent else { return output }
        var ring = RecentLogLinesHandler(label: label, sink: recent)
        ring.logLevel = level
        return MultiplexLogHandler([output, ring])
    }

    /// Bootstraps swift-log for the process (once per process): every logger writes in this
    /// format and also feeds `recent`, the ring the dashboard's logging page reads.
    public func bootstrap(recent: RecentLogLines) {
        let settings = self
        LoggingSystem.bootstrap { label in settings.makeHandler(label: label, recent: recent) }
    }
}

/// A log level or format that does not exist.
public struct LogSettingsError: Error, CustomStringConvertible, Equatable {
    public var description: String
}
