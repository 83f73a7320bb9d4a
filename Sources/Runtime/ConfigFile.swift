// Reading server.ini from disk for the broker and its tools. Parsing is StoreCore's (pure); this
// only gets the bytes, and says plainly what is wrong with the path when it cannot.
import Glibc
import StoreCore

/// The broker's `server.ini` on disk.
public enum ConfigFile {
    /// A config file larger than this is refused rather than read: MetaQ's are a few KiB, and a
    /// path such as `/dev/zero` must not make the broker read for ever.
    public static let maxBytes = 16 << 20

    /// Reads and parses `path`.
    ///
    /// - Throws: ``ConfigFileError`` when the file cannot be read, `ConfigError` when it does not
    ///   parse.
    public static func load(_ path: String) throws -> ServerConfig {
        try ServerConfig(parsing: try read(path), path: path)
    }

    /// Reads and parses a slave's properties file (`metaq-server start --slave <file>`: the
    /// original's `async_slave.properties`).
    ///
    /// - Throws: ``ConfigFileError`` when the file cannot be read, `ConfigError` when it does not
    ///   parse.
    public static func loadSlave(_ path: String) throws -> ReplicationConfig.Slave {
        try ReplicationConfig.Slave(parsingProperties: try read(path), path: path)
    }

    /// The bytes of `path`, opened read-only (a config file owned by another user, mode 0644, is
    /// fine).
    public static func read(_ path: String) throws(ConfigFileError) -> [UInt8] {
        let fd = SystemErrors.retryingOnInterrupt { open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw ConfigFileError(path: path, errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ConfigFileError(path: path, errno: errno) }
        guard info.st_mode & S_IFMT != S_IFDIR else { throw ConfigFileError(path: path, problem: .isDirectory) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { buffer in
                SystemErrors.retryingOnInterrupt { Int32(Glibc.read(fd, buffer.baseAddress, buffer.count)) }
            }
            guard count >= 0 else { throw ConfigFileError(path: path, errno: errno) }
            if count == 0 { return bytes }
            bytes += chunk[..<Int(count)]
            guard bytes.count <= maxBytes else { throw ConfigFileError(path: path, problem: .tooLarge) }
        }
    }
}

/// Why the config file could not be read.
public struct ConfigFileError: Error, Equatable, CustomStringConvertible {
    public enum Problem: Equatable, Sendable {
        case missing
        case isDirectory
        case tooLarge
        /// Another system error: its text and errno name.
        case unreadable(String)
    }

    public var path: String
    public var problem: Problem

    public init(path: String, problem: Problem) {
        self.path = path
        self.problem = problem
    }

    init(path: String, errno code: Int32) {
        self.path = path
        switch code {
        case ENOENT: problem = .missing
        case EISDIR: problem = .isDirectory
        default: problem = .unreadable(SystemErrors.describe(code))
        }
    }

    public var description: String {
        switch problem {
        case .missing: return "the config file \(path) does not exist"
        case .isDirectory:
            return "the config file \(path) is a directory; expected a server.ini file such as "
                + StoragePath.join(path, "server.ini")
        case .tooLarge: return "the config file \(path) is larger than \(ConfigFile.maxBytes >> 20) MiB; is it a server.ini?"
        case .unreadable(let why): return "cannot read the config file \(path): \(why)"
        }
    }
}
