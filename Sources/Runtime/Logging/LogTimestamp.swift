import Glibc

/// Log timestamps: ISO 8601 in UTC with milliseconds (`2026-12-05T23:24:18.123Z`), the form log
/// shippers parse without a pattern.
enum LogTimestamp {
    static func iso8601(wallMs: Int64) -> String {
        var seconds = time_t(wallMs >= 0 ? wallMs / 1000 : (wallMs - 999) / 1000)
        let ms = Int((wallMs % 1000 + 1000) % 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(ms), 3))Z"
    }
}
