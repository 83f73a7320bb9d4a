import ProtocolCore
import Sim
import StoreCore

/// The bytes as a partition found on disk at start: a sealed segment holding one good record
/// (its payload taken from the input), then the last segment with the rest of the input as it
/// is. Only the last segment is scanned at start (as in MetaQ); recovery must open the partition
/// or refuse it with an error, never trap. What it opens serves only whole, checksummed records
/// (or moves readers past damage), and takes appends after them.
public enum RecoveryFuzz {
    public static func run(_ input: [UInt8]) {
        guard input.count >= 2 else { return }
        let disk = SimDisk()
        let directory = "/data/fuzz-0"
        let config = LogConfig(maxSegmentSize: 64 + Int64(input[0]) * 4, flushPolicy: .groupCommit,
                               maxRecordPayloadBytes: 4096)
        let contents = Array(input.dropFirst(2))
        let cut = Int(input[1]) % (min(contents.count, 4000) + 1)
        let sealed = Record.encode(msgId: 2, flag: 0, payload: Array(contents[..<cut]))
        do {
            try disk.makeDirectory(directory)
            try write(sealed, to: directory + "/" + SegmentName.name(forStart: 0), on: disk)
            try write(Array(contents[cut...]), to: directory + "/" + SegmentName.name(forStart: Int64(sealed.count)), on: disk)
        } catch {
            preconditionFailure("cannot lay out the segments: \(error)")
        }
        let log: PartitionLog
        do { log = try PartitionLog.open(storage: disk, directory: directory, config: config, now: .zero) } catch {
            return  // refused with an error: fine
        }
        readEverything(log)
        do {
            let before = log.writtenOffset
            _ = try log.append(msgId: 1, flag: 0, payload: Array("after recovery".utf8), now: .zero)
            _ = try log.syncNow(now: .zero)
            precondition(log.maxOffset == before + Int64(Record.size(payloadCount: 14)), "the append after recovery is not readable")
        } catch {
            preconditionFailure("a recovered log refuses an append: \(error)")
        }
        log.close()
    }

    static func write(_ bytes: [UInt8], to path: String, on disk: SimDisk) throws {
        let file = try disk.open(path, create: true)
        try file.write(bytes, at: 0)
        try file.sync()
        try file.close()
        try disk.syncDirectory(StoragePath.parent(of: path))
    }

    /// Walks the log as a consumer would: every record served verifies, damage moves it on.
    static func readEverything(_ log: PartitionLog) {
        var offset = log.minOffset
        var steps = 0
        while offset < log.maxOffset {
            steps += 1
            precondition(steps < 100_000, "reading the recovered log does not advance")
            switch log.read(offset: offset, maxBytes: 1 << 16) {
            case .damaged(let resumeAt):
                precondition(resumeAt > offset, "damage does not move the reader forward")
                offset = resumeAt
            case .belowMinimum(let minimum):
                precondition(minimum > offset, "below the minimum, but not moved forward")
                offset = minimum
            case .atOrBeyondEnd:
                preconditionFailure("a read below the readable end found nothing at \(offset)")
            case .slice(let slice):
                let bytes: [UInt8]
                do { bytes = try log.bytes(of: slice) } catch { preconditionFailure("a slice cannot be read: \(error)") }
                var records = RecordIterator(bytes, baseOffset: offset)
                var consumed = 0
                reading: while let element = records.next() {
                    switch element {
                    // A whole checksummed record whose attribute header does not fit its payload
                    // is what a client put: stored as it came, handed over as it is.
                    case .message, .damaged(_, .badAttributeHeader): consumed = records.consumedBytes
                    // Cut by maxBytes: fetch again from there. A slice cut shorter ends at a
                    // segment's end, the readable end or damage, where a whole record must end.
                    case .incomplete where slice.count == 1 << 16: break reading
                    case .incomplete, .damaged:
                        preconditionFailure("recovery served a cut or damaged record at \(offset + Int64(consumed)): \(element)")
                    }
                }
                precondition(consumed > 0, "a slice without a whole record at \(offset)")
                offset += Int64(consumed)
            }
        }
    }
}
