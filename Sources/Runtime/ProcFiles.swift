import Glibc

/// Reading Linux's /proc for the process facts of `stats` (threads), the dashboard's overview and
/// the `process_*` metrics: one reader for all three.
enum ProcFiles {
    /// A /proc file's text (their size is 0 to stat, so read until end), at most 64 KiB; nil
    /// when it cannot be opened.
    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 65_536 {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `Key:   123 kB` lines (/proc/meminfo, /proc/self/status) as numbers: kB × 1024 in bytes,
    /// plain numbers as they are.
    static func keyed(_ text: String?) -> [String: Int64] {
        var values: [String: Int64] = [:]
        for line in (text ?? "").split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let fields = line[line.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let first = fields.first.flatMap({ Int64($0) }) else { continue }
            values[String(line[..<colon])] = fields.count > 1 && fields[1] == "kB" ? first * 1024 : first
        }
        return values
    }

    /// Entries of a directory (/proc/self/fd), without `.`, `..` and the descriptor the listing
    /// itself holds.
    static func countEntries(_ path: String) -> Int64? {
        guard let directory = opendir(path) else { return nil }
        let own = dirfd(directory)
        var count: Int64 = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name == "." || name == ".." || name == "\(own)" { continue }
            count += 1
        }
        closedir(directory)
        return count
    }

    /// The process's thread count (`Threads:` of /proc/self/status), 0 if unreadable.
    static func threadCount() -> Int {
        Int(keyed(read("/proc/self/status"))["Threads"] ?? 0)
    }
}
