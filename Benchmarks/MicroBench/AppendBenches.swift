// PartitionLog append throughput on real files (FileStorage under /tmp) and on SimDisk (memory).
import Glibc
import ProtocolCore
import Runtime
import Sim
import StoreCore

enum Backend: String {
    case files = "FileStorage"
    case simDisk = "SimDisk"
}

enum SyncMode {
    /// MetaQ's default policy: a sync once more than 1000 appends are unsynced (or 10 s passed).
    case threshold
    /// Group commit: `batch` appends, then one sync that acknowledges them all.
    case groupCommit(batch: Int)

    var appendsPerIteration: Int {
        switch self {
        case .threshold: return 1
        case .groupCommit(let batch): return batch
        }
    }

    var policy: FlushPolicy {
        switch self {
        case .threshold: return FlushPolicy(unflushThreshold: 1000, unflushIntervalMs: 10_000)
        case .groupCommit: return .groupCommit
        }
    }
}

/// One log never takes more than this many bytes: a run continues in a fresh log (setup and
/// teardown untimed). It is below the 1 GiB segment size, so no run rolls a segment, and it
/// bounds SimDisk's memory and the space used under /tmp.
let maxBytesPerLog = 256 << 20

/// Opens fresh, empty logs and disposes of them; for files, all under one `mkdtemp` directory.
final class LogFactory {
    let backend: Backend
    let root: String
    private let files = FileStorage()
    private var counter = 0

    init(backend: Backend) throws {
        self.backend = backend
        switch backend {
        case .simDisk:
            root = "/bench"
        case .files:
            var template = Array("/tmp/metaq-microbench-XXXXXX".utf8CString)
            let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
            guard made != nil else { throw BenchFailure("mkdtemp failed: errno \(errno)") }
            root = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
    }

    func makeLog(_ policy: FlushPolicy) throws -> PartitionLog {
        counter += 1
        let storage: any Storage = backend == .files ? files : SimDisk()
        return try PartitionLog.open(storage: storage, directory: "\(root)/bench-topic-\(counter)",
                                     config: LogConfig(flushPolicy: policy),
                                     now: Instant(nanoseconds: monotonicNanoseconds()))
    }

    func dispose(_ log: PartitionLog) throws {
        log.close()
        guard backend == .files else { return }
        for name in try files.list(log.directory) { try files.remove("\(log.directory)/\(name)") }
        try files.remove(log.directory)
    }

    /// Removes the temp directory (files only).
    func removeRoot() {
        guard backend == .files else { return }
        try? files.remove(root)
    }
}

/// `iterations` iterations of `mode` (one append, or a batch plus its sync); each append encodes
/// its record (header + CRC32) as the broker does. Times only the appends and syncs.
func appendRun(_ factory: LogFactory, payload: [UInt8], mode: SyncMode, iterations: Int) throws -> RunResult {
    let recordSize = Record.size(payloadCount: payload.count)
    let perIteration = mode.appendsPerIteration
    let iterationsPerLog = max(1, maxBytesPerLog / (recordSize * perIteration))
    var remaining = iterations
    var total = Timing()
    var syncs = 0
    var acknowledged = 0
    var msgId: Int64 = 1
    while remaining > 0 {
        let k = min(remaining, iterationsPerLog)
        remaining -= k
        let log = try factory.makeLog(mode.policy)
        total += try timed {
            switch mode {
            case .threshold:
                for _ in 0..<k {
                    let now = Instant(nanoseconds: monotonicNanoseconds())
                    _ = try log.append(msgId: msgId, flag: 0, payload: payload, now: now)
                    msgId += 1
                    if log.syncDue(now: now) {
                        syncs += 1
                        try log.syncNow(now: now)
                    }
                }
                if log.hasUnsyncedData {
                    syncs += 1
                    try log.syncNow(now: Instant(nanoseconds: monotonicNanoseconds()))
                }
            case .groupCommit(let batch):
                for _ in 0..<k {
                    for _ in 0..<batch {
                        let now = Instant(nanoseconds: monotonicNanoseconds())
                        _ = try log.append(msgId: msgId, flag: 0, payload: payload, ticket: UInt64(msgId), now: now)
                        msgId += 1
                    }
                    syncs += 1
                    acknowledged += try log.syncNow(now: Instant(nanoseconds: monotonicNanoseconds())).count
                }
            }
        }
        guard log.maxOffset == Int64(k * perIteration * recordSize) else {
            throw BenchFailure("log synced to \(log.maxOffset), expected \(k * perIteration * recordSize)")
        }
        try factory.dispose(log)
    }
    if case .groupCommit = mode, acknowledged != iterations * perIteration {
        throw BenchFailure("\(acknowledged) appends acknowledged of \(iterations * perIteration)")
    }
    consume(UInt64(msgId))
    return RunResult(time: total, syncs: syncs)
}

/// The floor under group commit on this disk: pwrite of one 120-byte record, then fdatasync.
func rawSyncRun(_ factory: LogFactory, iterations: Int) throws -> RunResult {
    let record = Record.encode(msgId: 1, flag: 0, payload: pseudoRandomBytes(100, seed: 3))
    let path = "\(factory.root)/raw-sync-\(iterations)"
    let storage = FileStorage()
    let file = try storage.open(path, create: true)
    defer {
        try? file.close()
        try? storage.remove(path)
    }
    var offset: Int64 = 0
    let s = try timed {
        for _ in 0..<iterations {
            try file.write(record, at: offset)
            try file.sync()
            offset += Int64(record.count)
        }
    }
    return RunResult(time: s, syncs: iterations)
}

func benchAppend() throws -> [Row] {
    var rows: [Row] = []
    for backend in [Backend.files, .simDisk] {
        let factory = try LogFactory(backend: backend)
        defer { factory.removeRoot() }
        if backend == .files {
            rows.append(try measure("append", "raw pwrite+fdatasync (no log)", "120 B record", opsPerIteration: 1,
                                    bytesPerIteration: 120, note: .syncs) { try rawSyncRun(factory, iterations: $0) })
        }
        for size in [100, 1024] {
            let payload = pseudoRandomBytes(size, seed: UInt64(size))
            let modes: [(SyncMode, String)] = [(.threshold, "threshold 1000"), (.groupCommit(batch: 1), "group N=1"),
                                               (.groupCommit(batch: 16), "group N=16"),
                                               (.groupCommit(batch: 256), "group N=256")]
            for (mode, label) in modes {
                let n = mode.appendsPerIteration
                rows.append(try measure("append", "\(backend.rawValue) \(size) B payload", label,
                                        opsPerIteration: n, bytesPerIteration: n * Record.size(payloadCount: size),
                                        note: .syncs) { iterations in
                    try appendRun(factory, payload: payload, mode: mode, iterations: iterations)
                })
            }
        }
    }
    return rows
}
