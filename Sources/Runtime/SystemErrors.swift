// Mapping of POSIX errors onto `StorageError`, shared by FileStorage, RealFile and ZipArchiver.
import Glibc
import StoreCore
import SystemPackage

enum SystemErrors {
    /// The `StorageError` for a failed `syscall` on `path` that set errno to `code`.
    ///
    /// Only the cases StoreCore branches on get their own `StorageError`; everything else becomes
    /// `.io` with the syscall and ``describe(_:)``, so a log line — and a client's error text —
    /// says what happened.
    static func storageError(_ code: Int32, syscall: String, path: String) -> StorageError {
        // An open that failed for want of descriptors or memory did nothing: it can be retried.
        if syscall == "open" && [EMFILE, ENFILE, ENOMEM].contains(code) {
            return .exhausted(path: path, detail: "\(syscall): \(describe(code))")
        }
        switch code {
        case ENOENT: return .notFound(path: path)
        case EEXIST: return .alreadyExists(path: path)
        case ENOTDIR: return .notADirectory(path: path)
        default: return .io(path: path, detail: "\(syscall): \(describe(code))")
        }
    }

    /// glibc's text and the errno's name, `No space left on device (ENOSPC)`: the name is what an
    /// operator searches for, the text what they read. The number stands in for an unknown name.
    static func describe(_ code: Int32) -> String {
        "\(message(for: code)) (\(name(of: code) ?? "errno \(code)"))"
    }

    /// `ENOSPC` for 28: glibc's `strerrorname_np` (2.32+), which Swift's Glibc module leaves out
    /// (declared only under `_GNU_SOURCE`), looked up once by name.
    static func name(of code: Int32) -> String? {
        guard let lookup = errnoNameLookup, let name = lookup(code) else { return nil }
        return String(cString: name)
    }

    private typealias ErrnoNameLookup = @convention(c) (Int32) -> UnsafePointer<CChar>?
    private static let errnoNameLookup: ErrnoNameLookup? = dlsym(nil, "strerrorname_np").map {
        unsafeBitCast($0, to: ErrnoNameLookup.self)
    }

    /// The error for the errno the last failed Glibc call left behind.
    static func lastError(syscall: String, path: String) -> StorageError {
        storageError(errno, syscall: syscall, path: path)
    }

    /// An `.io` error for input rejected before any syscall (negative offsets and the like).
    static func invalidArgument(_ syscall: String, path: String, _ why: String) -> StorageError {
        .io(path: path, detail: "\(syscall): \(why)")
    }

    /// Runs a swift-system call and converts the `Errno` it throws.
    static func mapping<R>(_ syscall: String, path: String, _ body: () throws -> R) throws -> R {
        do {
            return try body()
        } catch let error as Errno {
            throw storageError(error.rawValue, syscall: syscall, path: path)
        }
    }

    /// Calls a Glibc function that returns -1 and sets errno on failure, again while it fails
    /// with EINTR (swift-system does this itself for its calls; these go around it).
    static func retryingOnInterrupt(_ call: () -> Int32) -> Int32 {
        while true {
            let result = call()
            if result != -1 || errno != EINTR { return result }
        }
    }

    private static func message(for code: Int32) -> String {
        // glibc's strerror returns static text for known codes and a thread-local buffer
        // otherwise (glibc ≥ 2.32; Debian 12 has 2.36), so it is safe from several threads.
        guard let text = strerror(code) else { return "unknown error" }
        return String(cString: text)
    }
}
