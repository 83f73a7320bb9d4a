// Per-test scratch directories under /tmp, so tests can run in parallel without sharing files.
import Foundation
import Glibc

/// Runs `body` with a fresh directory made by `mkdtemp`, and deletes it (recursively) afterwards.
func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let path = try makeTemporaryDirectory()
    defer { removeRecursively(path) }
    return try body(path)
}

/// `withTemporaryDirectory` for async bodies.
func withTemporaryDirectory<R>(_ body: (String) async throws -> R) async throws -> R {
    let path = try makeTemporaryDirectory()
    defer { removeRecursively(path) }
    return try await body(path)
}

private func makeTemporaryDirectory() throws -> String {
    var template = Array("/tmp/metaq-runtime-tests-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    guard made != nil else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

/// Deletes `path` and everything below it; failures are ignored (it is test cleanup).
func removeRecursively(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

/// Deterministic pseudo-random bytes (SplitMix64), so failures reproduce.
struct TestBytes {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
    }
}
