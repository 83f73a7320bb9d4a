import Glibc

/// What the kernel says of this process, read from /proc at scrape time for the standard
/// `process_*` metrics (the names every Prometheus client library uses). Linux only; nil fields
/// when a file cannot be read or parsed (a metric is left out rather than made up).
struct ProcessSample: Equatable {
    var cpuSeconds: Double?
    var residentBytes: Int64?
    var virtualBytes: Int64?
    var startTimeSeconds: Double?
    var threads: Int64?
    var openDescriptors: Int64?
    var maxDescriptors: Int64?

    /// Reads /proc/self/stat, /proc/stat (boot time), /proc/self/fd and RLIMIT_NOFILE
    /// (its soft limit; left out when unlimited).
    static func read() -> ProcessSample {
        var sample = ProcessSample()
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = Int64(sysconf(Int32(_SC_PAGESIZE)))
        if let stat = ProcFiles.read("/proc/self/stat"), let fields = statFields(stat), ticks > 0 {
            // proc(5): after "pid (comm)", field 3 is index 0: utime 14, stime 15, num_threads 20,
            // starttime 22 (ticks after boot), vsize 23 (bytes), rss 24 (pages).
            if let utime = Double(fields[11]), let stime = Double(fields[12]) { sample.cpuSeconds = (utime + stime) / ticks }
            sample.threads = Int64(fields[17])
            if let start = Double(fields[19]), let boot = bootTime() { sample.startTimeSeconds = boot + start / ticks }
            sample.virtualBytes = Int64(fields[20])
            sample.residentBytes = Int64(fields[21]).map { $0 * page }
        }
        sample.openDescriptors = ProcFiles.countEntries("/proc/self/fd")
        let limit = DescriptorLimit.read().current
        if limit != UInt64(rlim_t.max) { sample.maxDescriptors = Int64(clamping: limit) }
        return sample
    }

    /// The fields after the command name (which may hold spaces and parentheses, so split after
    /// its last `)`); nil when fewer than 22 are there.
    static func statFields(_ text: String) -> [Substring]? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        return fields.count >= 22 ? fields : nil
    }

    /// The `btime` line of /proc/stat: boot time in seconds since the epoch.
    static func bootTime() -> Double? {
        guard let text = ProcFiles.read("/proc/stat") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingPrefixSpaces())
        }
        return nil
    }
}

private extension Substring {
    func trimmingPrefixSpaces() -> Substring { drop { $0 == " " } }
}
