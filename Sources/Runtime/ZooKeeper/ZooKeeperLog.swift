import CZooKeeper
import Logging
import Synchronization

/// Routes the ZooKeeper C library's log lines into swift-log (toolchain.md §1 "Log noise").
///
/// The C library keeps one process-wide level (`zoo_set_debug_level`) and calls the log
/// callback with the formatted line only, no context pointer. So one logger serves the whole
/// process: the one of the session opened last. The level is chosen so that the C library
/// formats only lines the logger would keep: a logger at `.info` (the default) gets the C
/// library's warnings and errors, so a good run is silent.
enum ZooKeeperLog {
    /// Guards the logger the C callback writes to; held only to copy the logger in or out.
    private static let current = Mutex<Logger?>(nil)

    /// Makes `logger` the destination of the C library's lines and sets the C level to match.
    /// Call before `zookeeper_init`, or the C library prints its INFO environment lines first.
    static func install(_ logger: Logger) {
        current.withLock { $0 = logger }
        zoo_set_debug_level(cLevel(for: logger.logLevel))
    }

    /// The C level whose lines, mapped by `parse`, the swift-log level would keep.
    static func cLevel(for level: Logger.Level) -> ZooLogLevel {
        switch level {
        case .trace: return ZOO_LOG_LEVEL_DEBUG
        case .debug: return ZOO_LOG_LEVEL_INFO
        case .info, .notice, .warning: return ZOO_LOG_LEVEL_WARN
        case .error, .critical: return ZOO_LOG_LEVEL_ERROR
        }
    }

    /// Splits a C library line (`<time>:<pid>(0x<thread>):ZOO_WARN@<function>@<line>: <text>`)
    /// into a swift-log level, the text and the C source location. The C library's INFO is
    /// chatty (environment lines, every connection attempt), so it becomes `.debug`.
    static func parse(_ line: String) -> (level: Logger.Level, message: String, source: String) {
        let trimmed = String(line.reversed().drop { $0 == "\n" || $0 == "\r" }.reversed())
        let levels: [(String, Logger.Level)] = [
            ("ZOO_ERROR@", .error), ("ZOO_WARN@", .warning), ("ZOO_INFO@", .debug), ("ZOO_DEBUG@", .trace),
        ]
        for (marker, level) in levels {
            guard let found = trimmed.firstRange(of: marker) else { continue }
            let rest = trimmed[found.upperBound...]
            guard let separator = rest.firstRange(of: ": ") else { return (level, String(rest), "") }
            return (level, String(rest[separator.upperBound...]), String(rest[..<separator.lowerBound]))
        }
        return (.warning, trimmed, "")
    }

    /// Logs one line of the C library.
    static func log(_ line: String) {
        guard let logger = current.withLock({ $0 }) else { return }
        let (level, message, source) = parse(line)
        logger.log(level: level, "\(message)", metadata: source.isEmpty ? nil : ["zk.source": "\(source)"])
    }
}

/// The `log_callback_fn` handed to `zookeeper_init2`. A global function, because the C library
/// calls it from its own threads (toolchain.md §1: a main-actor closure crashed there).
func zooKeeperLogCallback(_ message: UnsafePointer<CChar>?) {
    guard let message else { return }
    ZooKeeperLog.log(String(cString: message))
}
