import ProtocolCore
import Sim
@testable import StoreCore

let dir = "/data/test-0"
let t0 = Instant.milliseconds(1_000)

func openLog(_ disk: SimDisk, _ config: LogConfig = LogConfig(flushPolicy: .groupCommit), now: Instant = t0) throws -> PartitionLog {
    try PartitionLog.open(storage: disk, directory: dir, config: config, now: now)
}

func payload(_ i: Int, size: Int = 5) -> [UInt8] {
    (0..<size).map { UInt8(truncatingIfNeeded: i &+ $0) }
}

/// All messages readable from `log`, walking slices and skipping damaged ranges.
func readAll(_ log: PartitionLog, chunk: Int = 1 << 20) throws -> [Message] {
    var offset = log.minOffset
    var out: [Message] = []
    while true {
        switch log.read(offset: offset, maxBytes: chunk) {
        case .slice(let slice):
            var iterator = RecordIterator(try log.bytes(of: slice), baseOffset: offset)
            while case .message(let m)? = iterator.next() { out.append(m) }
            guard iterator.consumedBytes > 0 else { return out }
            offset += Int64(iterator.consumedBytes)
        case .damaged(let resumeAt): offset = resumeAt
        case .atOrBeyondEnd, .belowMinimum: return out
        }
    }
}

/// Writes `bytes` at `offset` of an existing file and syncs them (damage behind the log's back).
func overwrite(_ disk: SimDisk, _ path: String, at offset: Int64, with bytes: [UInt8]) throws {
    let file = try disk.open(path, create: false)
    try file.write(bytes, at: offset)
    try file.sync()
    try file.close()
}

/// A file rewrite interrupted after the temporary file was written, synced and renamed over
/// `path`, before the directory sync: what a power loss in the middle of a compaction can leave.
func renameWithoutDirectorySync(_ disk: SimDisk, _ path: String, bytes: [UInt8]) throws {
    let temporary = try disk.open(path + ".tmp", create: true)
    try temporary.write(bytes, at: 0)
    try temporary.sync()
    try disk.rename(path + ".tmp", to: path)
}
