import ProtocolCore
import Sim
import StoreCore

/// One seeded run of a partition log on SimDisk: random appends, syncs (some left in flight),
/// crashes and power losses, each followed by recovery and a full check of what survived.
/// Everything comes from one seed, so a failure replays exactly.
struct StoreWorkload {
    struct Failure: Error, CustomStringConvertible {
        var seed: UInt64
        var step: Int
        var message: String
        var trace: [String]?
        var description: String {
            let head = "seed \(seed) step \(step): \(message)\n  replay: METAQ_SEED=\(seed) swift test --filter PowerLossSweepTests"
            return trace.map { head + "\n  trace:\n    " + $0.joined(separator: "\n    ") } ?? head
        }
    }

    /// What fired during a run (summed over a sweep to show what the seeds reached).
    struct Counters {
        var appends = 0, syncs = 0, syncsLeftInFlight = 0, crashes = 0, powerLosses = 0
        var rolls = 0, truncations = 0, damagedRanges = 0, removedSegments = 0, lostUnsyncedRecords = 0
        var tornEmptyRecords = 0, stagedAppends = 0

        mutating func add(_ o: Counters) {
            appends += o.appends; syncs += o.syncs; syncsLeftInFlight += o.syncsLeftInFlight
            stagedAppends += o.stagedAppends
            crashes += o.crashes; powerLosses += o.powerLosses; rolls += o.rolls; truncations += o.truncations
            damagedRanges += o.damagedRanges; removedSegments += o.removedSegments
            lostUnsyncedRecords += o.lostUnsyncedRecords; tornEmptyRecords += o.tornEmptyRecords
        }
    }

    let seed: UInt64
    var rng: SimRandom
    let disk = SimDisk()
    let config: LogConfig
    var log: PartitionLog
    var now = Instant.milliseconds(1)
    /// Every record appended and not known lost: offset → (id, payload).
    var produced: [Int64: (id: Int64, payload: [UInt8])] = [:]
    /// Everything below this offset was synced; no fault may take it back.
    var durableEnd: Int64 = 0
    /// Group-commit tickets acknowledged, with the end offset of their record.
    var acknowledged: [UInt64: Int64] = [:]
    var ticketEnds: [UInt64: Int64] = [:]
    var nextId: Int64 = 1
    var step = 0
    var counters = Counters()
    var pendingBatch: SyncBatch?
    /// Offsets of unsynced empty records whose header a torn write changed (see `isTornEmptyRecord`).
    var tornEmptyRecords = Set<Int64>()
    /// A compact event trace, kept when asked for (`METAQ_TRACE=1`) and printed with a failure.
    let tracer = Tracer()

    final class Tracer {
        var lines: [String]?
    }

    init(seed: UInt64) throws {
        self.seed = seed
        rng = SimRandom(seed: seed)
        let policy = rng.chance(0.5) ? FlushPolicy.groupCommit
            : FlushPolicy(unflushThreshold: rng.int(in: 1..<20), unflushIntervalMs: Int64(rng.int(in: 1..<50)))
        config = LogConfig(maxSegmentSize: Int64(rng.int(in: 64..<4096)), flushPolicy: policy, maxRecordPayloadBytes: 4096)
        log = try PartitionLog.open(storage: disk, directory: "/data/t-0", config: config, now: now)
    }

    func note(_ event: @autoclosure () -> String) {
        if tracer.lines != nil { tracer.lines!.append("[\(step)] " + event()) }
    }

    mutating func run(steps: Int) throws {
        for s in 0..<steps {
            step = s
            now = now.adding(milliseconds: Int64(rng.int(in: 0..<5)))
            disk.nowMs = now.nanoseconds / 1_000_000
            switch rng.int(in: 0..<100) {
            case 0..<60: try append()
            case 60..<66: try flushStaged()
            case 66..<75: try finishOrStartSync(leaveInFlight: rng.chance(0.3))
            case 75..<77: try crash(powerLoss: false)
            case 77..<81: try crash(powerLoss: true)
            default: try policySync()
            }
        }
        try crash(powerLoss: rng.chance(0.5))
    }

    mutating func append() throws {
        let size = rng.chance(0.1) ? rng.int(in: 0..<2000) : rng.int(in: 0..<120)
        let data = rng.bytes(size)
        let id = nextId
        nextId += 1
        let segmentsBefore = log.segmentCount
        let ticket = UInt64(id)
        // Half the appends are staged, as the broker does, and written by a later flush, sync or roll.
        let staged = rng.chance(0.5)
        let outcome = staged ? try log.stage(msgId: id, flag: 0, payload: data, ticket: ticket)
            : try log.append(msgId: id, flag: 0, payload: data, ticket: ticket, now: now)
        if staged { counters.stagedAppends += 1 }
        if log.segmentCount > segmentsBefore { counters.rolls += 1 }
        produced[outcome.offset] = (id, data)
        note("append id \(id) at \(outcome.offset) size \(Record.size(payloadCount: size)) segments \(log.segmentStarts.suffix(2)) synced \(log.maxOffset)")
        ticketEnds[ticket] = outcome.offset + Int64(Record.size(payloadCount: size))
        counters.appends += 1
    }

    mutating func flushStaged() throws {
        guard log.stagedByteCount > 0 else { return }
        note("flush \(log.stagedByteCount) staged bytes")
        try log.flushWrites()
    }

    mutating func policySync() throws {
        if log.syncDue(now: now) { try finishOrStartSync(leaveInFlight: false) }
    }

    /// Runs a sync to completion, or starts one and leaves it running (completed at a later step,
    /// or cut short by a fault — its bytes may be durable without anyone having been told).
    mutating func finishOrStartSync(leaveInFlight: Bool) throws {
        if let batch = pendingBatch {
            pendingBatch = nil
            try complete(batch)
            return
        }
        guard let batch = log.beginSync().batch else { return }
        note("sync begin upTo \(batch.upTo)\(leaveInFlight ? " (left in flight)" : "")")
        if leaveInFlight {
            try batch.perform()
            pendingBatch = batch
            counters.syncsLeftInFlight += 1
            return
        }
        try batch.perform()
        try complete(batch)
    }

    mutating func complete(_ batch: SyncBatch) throws {
        for ticket in log.completeSync(batch, now: now) {
            acknowledged[ticket] = ticketEnds[ticket]
            try check(ticketEnds[ticket].map { $0 <= log.maxOffset } ?? false, "ticket \(ticket) acknowledged beyond the synced end")
        }
        durableEnd = max(durableEnd, log.maxOffset)
        counters.syncs += 1
        note("sync complete upTo \(batch.upTo) synced \(log.maxOffset)")
    }

    mutating func crash(powerLoss: Bool) throws {
        pendingBatch = nil
        // Staged bytes live in process memory only; a crash takes them with it.
        let writtenBefore = log.writtenOffset - Int64(log.stagedByteCount)
        note("\(powerLoss ? "POWER LOSS" : "crash") written \(writtenBefore) synced \(log.maxOffset) durableEnd \(durableEnd)")
        if powerLoss {
            disk.powerLoss(using: &rng)
            counters.powerLosses += 1
        } else {
            disk.crash()
            counters.crashes += 1
        }
        log = try PartitionLog.open(storage: disk, directory: "/data/t-0", config: config, now: now)
        let report = log.recoveryReport
        note("recovered: \(report) segments \(log.segmentStarts) max \(log.maxOffset)")
        if report.truncatedBytes > 0 { counters.truncations += 1 }
        counters.damagedRanges += report.newDamagedRanges.count
        counters.removedSegments += report.removedSegments.count
        if !powerLoss {
            try check(log.maxOffset == writtenBefore, "a process crash lost data: \(writtenBefore) → \(log.maxOffset)")
        }
        try verifyAfterRecovery()
    }

    /// Every synced record intact and readable; nothing unsynced returned as garbage; offsets
    /// contiguous; damage only in the unsynced region; acknowledged appends never lost.
    mutating func verifyAfterRecovery() throws {
        try check(log.maxOffset >= durableEnd, "synced data lost: durable end \(durableEnd), recovered \(log.maxOffset)")
        for range in log.recoveryReport.newDamagedRanges {
            try check(range.lowerBound >= durableEnd, "new damage \(range) inside the synced region (< \(durableEnd))")
        }
        var found: [Int64: Int64] = [:]
        var offset = log.minOffset
        walk: while true {
            // A random read size first (cut records are normal), then one that fits any record.
            var advanced = false
            for maxBytes in [rng.int(in: 1..<8192), 8192] where !advanced {
                switch log.read(offset: offset, maxBytes: maxBytes) {
                case .slice(let slice):
                    let consumed = try verifySlice(try log.bytes(of: slice), at: offset, found: &found)
                    offset += Int64(consumed)
                    advanced = consumed > 0
                case .damaged(let resumeAt):
                    offset = resumeAt
                    advanced = true
                case .atOrBeyondEnd(let end):
                    try check(offset == end, "walk ended at \(offset), not at the end \(end): offsets not contiguous")
                    break walk
                case .belowMinimum:
                    try check(false, "walk went below the minimum")
                }
            }
            try check(advanced, "a record at \(offset) is cut by the end of its segment or the readable end")
        }
        for (offset, record) in produced where offset + Int64(Record.size(payloadCount: record.payload.count)) <= durableEnd {
            try check(found[offset] == record.id, "synced record id \(record.id) at \(offset) missing after recovery")
        }
        for (ticket, end) in acknowledged {
            try check(end <= log.maxOffset, "acknowledged append \(ticket) (end \(end)) lost")
        }
        counters.tornEmptyRecords = tornEmptyRecords.count
        let lost = produced.keys.filter { found[$0] == nil }
        counters.lostUnsyncedRecords += lost.count
        for offset in lost { produced[offset] = nil }
        durableEnd = log.maxOffset
    }

    /// Checks every whole record of a slice against what was produced; returns the bytes consumed.
    mutating func verifySlice(_ bytes: [UInt8], at offset: Int64, found: inout [Int64: Int64]) throws -> Int {
        var iterator = RecordIterator(bytes, baseOffset: offset)
        while let element = iterator.next() {
            switch element {
            case .message(let m):
                let expected = produced[m.offset]
                if expected?.id != m.id || expected?.payload != m.data, m.data.isEmpty,
                   isTornEmptyRecord(at: m.offset, expected: expected) {
                    tornEmptyRecords.insert(m.offset)
                    found[m.offset] = expected?.id
                    continue
                }
                try check(expected?.id == m.id && expected?.payload == m.data,
                          "record at \(m.offset) (id \(m.id)) was never produced there")
                found[m.offset] = m.id
            case .incomplete: break
            case .damaged(let at, .badAttributeHeader)
                where isTornEmptyRecord(at: at, expected: produced[at]):
                tornEmptyRecords.insert(at)
                found[at] = produced[at]?.id
            case .damaged(let at, let why): try check(false, "garbage served at \(at): \(why)")
            }
        }
        return iterator.consumedBytes
    }

    /// The one thing the format cannot protect (docs/STORAGE.md, "Recovery"): an empty
    /// message's header is covered by no checksum, so a torn write of an *unsynced* empty record
    /// can change its msgId or flag undetectably. Anything else that differs is a failure.
    func isTornEmptyRecord(at offset: Int64, expected: (id: Int64, payload: [UInt8])?) -> Bool {
        guard let expected else { return false }
        return expected.payload.isEmpty && offset >= durableEnd
    }

    func check(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw Failure(seed: seed, step: step, message: message(), trace: tracer.lines) }
    }
}
