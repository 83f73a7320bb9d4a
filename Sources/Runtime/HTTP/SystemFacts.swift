import Glibc

/// The machine and process facts of the overview page (the original's "system" block, §7.2:
/// memory, file descriptors), read from /proc on the dashboard's thread, never the node's.
/// A value that cannot be read is nil and shows as "n/a".
public struct SystemFacts: Sendable {
    public var memoryTotalBytes: Int64?
    public var memoryUsedBytes: Int64?
    public var swapTotalBytes: Int64?
    public var swapUsedBytes: Int64?
    public var residentBytes: Int64?
    public var descriptorsMax: Int64?
    public var descriptorsUsed: Int64?
    public var threads: Int64?
    public var cwd: String?
    public var hostName: String?

    /// Reads the facts now.
    public static func read() -> SystemFacts {
        var facts = SystemFacts()
        let meminfo = keyed(file("/proc/meminfo"))
        if let total = meminfo["MemTotal"] {
            facts.memoryTotalBytes = total
            facts.memoryUsedBytes = meminfo["MemAvailable"].map { total - $0 }
        }
        if let swap = meminfo["SwapTotal"] {
            facts.swapTotalBytes = swap
            facts.swapUsedBytes = meminfo["SwapFree"].map { swap - $0 }
        }
        let status = keyed(file("/proc/self/status"))
        facts.residentBytes = status["VmRSS"]
        facts.threads = status["Threads"]
        facts.descriptorsMax = Int64(clamping: DescriptorLimit.read().current)
        facts.descriptorsUsed = countEntries("/proc/self/fd")
        var buffer = [CChar](repeating: 0, count: 4096)
        if getcwd(&buffer, buffer.count) != nil { facts.cwd = text(of: buffer) }
        var host = [CChar](repeating: 0, count: 256)
        if gethostname(&host, host.count - 1) == 0 { facts.hostName = text(of: host) }
        return facts
    }

    /// A NUL-terminated C string buffer as text.
    static func text(of buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `Key:   123 kB` lines as bytes (kB × 1024); plain numbers as they are.
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

    /// A small /proc file's text (at most 64 KiB).
    static func file(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while bytes.count < 65536 {
            let n = Glibc.read(fd, &chunk, chunk.count)
            guard n > 0 else { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Entries of a directory, `.` and `..` excluded (one of them is the directory's own descriptor).
    static func countEntries(_ path: String) -> Int64? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var count: Int64 = 0
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name != "." && name != ".." { count += 1 }
        }
        return max(0, count - 1)
    }
}
