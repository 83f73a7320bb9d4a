import Glibc

/// The process's limit on open file descriptors (`RLIMIT_NOFILE`).
public enum DescriptorLimit {
    public struct Limits: Equatable, Sendable {
        /// The limit in force (the soft limit).
        public var current: UInt64
        /// The most an unprivileged process may raise it to (the hard limit).
        public var maximum: UInt64
    }

    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

    public static func read() -> Limits {
        var limit = rlimit()
        getrlimit(resource, &limit)
        return Limits(current: UInt64(limit.rlim_cur), maximum: UInt64(limit.rlim_max))
    }

    /// Raises the soft limit to the hard one, as the JVM does at start for the original broker:
    /// the usual soft default (1024) is far below what a broker serving thousands of connections
    /// needs, and the hard limit is what the administrator allowed. Returns the limits after the
    /// attempt, and the errno if it failed.
    public static func raiseToMaximum() -> (limits: Limits, errno: Int32?) {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return (read(), errno) }
        guard limit.rlim_cur < limit.rlim_max else { return (read(), nil) }
        limit.rlim_cur = limit.rlim_max
        let failure: Int32? = setrlimit(resource, &limit) == 0 ? nil : errno
        return (read(), failure)
    }
}
