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

    /// Reads the facts now; the process's own from a `ProcessSample` (what `/metrics` reads).
    public static func read() -> SystemFacts {
        var facts = SystemFacts()
        let meminfo = ProcFiles.keyed(ProcFiles.read("/proc/meminfo"))
        if let total = meminfo["MemTotal"] {
            facts.memoryTotalBytes = total
            facts.memoryUsedBytes = meminfo["MemAvailable"].map { total - $0 }
        }
        if let swap = meminfo["SwapTotal"] {
            facts.swapTotalBytes = swap
            facts.swapUsedBytes = meminfo["SwapFree"].map { swap - $0 }
        }
        let process = ProcessSample.read()
        facts.residentBytes = process.residentBytes
        facts.threads = process.threads
        facts.descriptorsUsed = process.openDescriptors
        facts.descriptorsMax = Int64(clamping: DescriptorLimit.read().current)
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
}
