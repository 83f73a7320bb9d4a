import ProtocolCore
import Sim
import Testing
@testable import StoreCore

@Suite("Retention (reference §2.7)")
struct RetentionTests {
    @Test func policiesParse() throws {
        #expect(try DeletePolicy(parsing: "delete,168") == DeletePolicy.metaqDefault)
        #expect(try DeletePolicy(parsing: "delete,168").maxAgeMs == 168 * 3_600_000)
        #expect(try DeletePolicy(parsing: "delete,72s").maxAgeMs == 72_000)
        #expect(try DeletePolicy(parsing: "delete,10m").maxAgeMs == 600_000)
        #expect(try DeletePolicy(parsing: "delete,5h").maxAgeMs == 5 * 3_600_000)
        #expect(try DeletePolicy(parsing: "archive,24").action == .archive(compress: false))
        #expect(try DeletePolicy(parsing: "archive,24,true").action == .archive(compress: true))
        #expect(try DeletePolicy(parsing: "archive, 24 , false").action == .archive(compress: false))
        for bad in ["", "drop,1", "delete", "delete,", "delete,x", "delete,5d", "archive,1,maybe", "delete,1,2", "delete,-1"] {
            #expect(throws: DeletePolicyError.self, "\(bad)") { try DeletePolicy(parsing: bad) }
        }
        let error = try? #require(throws: DeletePolicyError.self) { try DeletePolicy(parsing: "drop,1") }
        #expect(error?.description == "invalid deletePolicy 'drop,1': unknown policy 'drop' (expected delete, archive or size)")
    }

    func agedLog(_ disk: SimDisk) throws -> PartitionLog {
        let log = try openLog(disk, LogConfig(maxSegmentSize: 50, flushPolicy: .groupCommit))
        for i in 0..<7 {
            disk.nowMs = Int64(i) * 1000
            _ = try log.append(msgId: Int64(i + 1), flag: 0, payload: payload(i), now: t0)
        }
        try log.syncNow(now: t0)
        return log
    }

    /// Eligible: not the active segment and `now − mtime > age`. Oldest first; a prefix only.
    @Test func deleteByAgeNeverTouchesTheActiveSegment() throws {
        let disk = SimDisk()
        let log = try agedLog(disk)
        #expect(log.segmentStarts == [0, 50, 100, 150])
        let policy = try DeletePolicy(parsing: "delete,2s")
        #expect(try log.applyRetention(policy, nowMs: 3500).map(\.segmentStart) == [0])
        #expect(log.minOffset == 50)
        #expect(log.read(offset: 0, maxBytes: 10) == .belowMinimum(minOffset: 50))
        #expect(try log.applyRetention(policy, nowMs: 1_000_000).map(\.segmentStart) == [50, 100])
        #expect(log.segmentStarts == [150])
        #expect(try disk.list(dir) == ["00000000000000000150.meta"])
        #expect(try log.applyRetention(policy, nowMs: 9_000_000).isEmpty)
        #expect(try readAll(log).map(\.id) == [7])
    }

    /// `size,<bytes>` (issue 19; docs/CONFIGURATION.md): the bytes are a config expression; the
    /// errors speak the original's style.
    @Test func sizePoliciesParse() throws {
        #expect(try DeletePolicy(parsing: "size,10*1024*1024*1024").maxBytes == 10 << 30)
        #expect(try DeletePolicy(parsing: "size, 120 ").maxBytes == 120)
        #expect(try DeletePolicy(parsing: "size,120").action == .delete)
        #expect(try DeletePolicy(parsing: "delete,1").maxBytes == nil)
        let ini = "[system]\nbrokerId=1\nnumPartitions=1\ndeletePolicy=delete,24\n[topic=big]\ndeletePolicy=size,10*1024*1024*1024\n"
        let config = try ServerConfig(parsing: ini, path: "server.ini")
        #expect(config.topicConfig(for: "big")?.deletePolicy.maxBytes == 10 << 30)
        #expect(throws: (any Error).self) { try ServerConfig(parsing: ini + "[topic=bad]\ndeletePolicy=size,lots\n", path: "server.ini") }
        for bad in ["size", "size,", "size,0", "size,-5", "size,1,2", "size,ten", "size,9223372036854775807*2"] {
            #expect(throws: DeletePolicyError.self, "\(bad)") { try DeletePolicy(parsing: bad) }
        }
        let error = try? #require(throws: DeletePolicyError.self) { try DeletePolicy(parsing: "size,0") }
        #expect(error?.description == "invalid deletePolicy 'size,0': bytes must be at least 1, got 0")
    }

    /// Oldest first, a prefix only, while the rest still holds at least the bound; never the
    /// active segment, whatever the bound; ages play no part.
    @Test func deleteBySizeKeepsAtLeastTheBound() throws {
        let disk = SimDisk()
        let log = try agedLog(disk)
        #expect(log.segmentStarts == [0, 50, 100, 150] && log.maxOffset == 175)
        // 175 bytes: without segment 0 there are 125 ≥ 120, without 50 too only 75 < 120.
        #expect(try log.applyRetention(try DeletePolicy(parsing: "size,120"), nowMs: 0).map(\.segmentStart) == [0])
        #expect(log.minOffset == 50)
        #expect(try log.applyRetention(try DeletePolicy(parsing: "size,120"), nowMs: 0).isEmpty, "stable once within the bound")
        #expect(try log.applyRetention(try DeletePolicy(parsing: "size,1"), nowMs: 0).map(\.segmentStart) == [50, 100])
        #expect(log.segmentStarts == [150], "the active segment stays")
        #expect(try readAll(log).map(\.id) == [7])
    }

    @Test func archiveRenames() throws {
        let disk = SimDisk()
        let log = try agedLog(disk)
        let outcomes = try log.applyRetention(try DeletePolicy(parsing: "archive,1s"), nowMs: 1_000_000)
        #expect(outcomes.count == 3)
        #expect(try disk.list(dir).sorted() == ["00000000000000000000.meta.arc", "00000000000000000050.meta.arc",
                                                "00000000000000000100.meta.arc", "00000000000000000150.meta"])
        // Reopening ignores archived files.
        log.close()
        #expect(try openLog(disk).segmentStarts == [150])
    }

    @Test func compressionNeedsTheRuntimeArchiver() throws {
        let disk = SimDisk()
        let log = try agedLog(disk)
        #expect(throws: LogError.self) {
            try log.applyRetention(try DeletePolicy(parsing: "archive,1s,true"), nowMs: 1_000_000)
        }
        #expect(log.segmentStarts == [0, 50, 100, 150])
        #expect(try readAll(log).count == 7, "the segment whose archiving failed is still readable")
    }
}
