import Sim
import StoreCore
import Testing

/// Crash, power loss and latent errors on SimDisk.
@Suite struct SimDiskPowerLossTests {
    let dir = "/data/test-0"
    var path: String { "\(dir)/00000000000000000000.meta" }

    /// A disk holding `path` with `bytes`, synced (data and entry) when asked.
    func disk(with bytes: [UInt8], syncData: Bool = true, syncEntry: Bool = true) throws -> (SimDisk, any StorageFile) {
        let disk = SimDisk()
        try disk.makeDirectory(dir)
        let file = try disk.open(path, create: true)
        try file.write(bytes, at: 0)
        if syncData { try file.sync() }
        if syncEntry { try disk.syncDirectory(dir) }
        return (disk, file)
    }

    func pattern(_ count: Int, base: UInt8) -> [UInt8] {
        (0..<count).map { base | UInt8(truncatingIfNeeded: $0 % 16) }
    }

    @Test func syncedDataSurvivesUnchanged() throws {
        for seed: UInt64 in 0..<100 {
            var rng = SimRandom(seed: seed)
            let bytes = rng.bytes(rng.int(in: 0...5_000))
            let (disk, _) = try disk(with: bytes)
            disk.powerLoss(using: &rng)
            #expect(disk.currentBytes(path) == bytes)
            #expect(disk.durableBytes(path) == bytes)
            #expect(disk.stats.sectorsKept + disk.stats.sectorsDropped + disk.stats.sectorsGarbage == 0)
            #expect(disk.stats.entriesReverted + disk.stats.entriesKept == 0)
        }
    }

    @Test func unsyncedAppendIsKeptDroppedOrGarbagePerSector() throws {
        let durable = pattern(1_000, base: 0xA0)
        let appended = pattern(4_000, base: 0xB0)
        var outcomes = (kept: 0, dropped: 0, garbage: 0)
        var lengths = Set<Int>()
        for seed: UInt64 in 0..<100 {
            let (disk, file) = try disk(with: durable)
            try file.write(appended, at: 1_000)
            let written = durable + appended
            var rng = SimRandom(seed: seed)
            disk.powerLoss(using: &rng)
            let after = try #require(disk.currentBytes(path))
            #expect(after.count == durable.count || after.count == written.count)
            lengths.insert(after.count)
            // Synced bytes survive even when they share a sector with the unsynced append.
            #expect(Array(after[0..<1_000]) == durable, "synced bytes changed")
            var seen = (kept: 0, dropped: 0, garbage: 0)
            for start in stride(from: 512, to: after.count, by: 512) {
                let end = min(start + 512, after.count)
                let sector = Array(after[start..<end])
                let durablePadded = (start..<end).map { $0 < durable.count ? durable[$0] : 0 }
                // A sector cut back to the durable length may hold nothing unsynced: no decision.
                if Array(written[start..<end]) == durablePadded { continue }
                if sector == Array(written[start..<end]) {
                    seen.kept += 1
                } else if sector == durablePadded {
                    seen.dropped += 1
                } else {
                    seen.garbage += 1
                }
            }
            #expect(seen.kept == disk.stats.sectorsKept && seen.dropped == disk.stats.sectorsDropped
                    && seen.garbage == disk.stats.sectorsGarbage)
            #expect(disk.durableBytes(path) == after)
            outcomes = (outcomes.kept + seen.kept, outcomes.dropped + seen.dropped, outcomes.garbage + seen.garbage)
        }
        #expect(lengths == [1_000, 5_000])
        #expect(outcomes.kept > 0 && outcomes.dropped > 0 && outcomes.garbage > 0)
    }

    @Test func unsyncedTruncateRevertsOrSticks() throws {
        let durable = [UInt8](repeating: 0x11, count: 2_048)
        var lengths = Set<Int>()
        for seed: UInt64 in 0..<60 {
            let (disk, file) = try disk(with: durable)
            try file.truncate(to: 600)
            var rng = SimRandom(seed: seed)
            disk.powerLoss(using: &rng)
            let after = try #require(disk.currentBytes(path))
            lengths.insert(after.count)
            #expect(after.count == 600 || after.count == 2_048)
            #expect(after.prefix(512).allSatisfy { $0 == 0x11 })
            if after.count == 2_048 {
                // Sectors wholly past the cut read back as either the durable bytes, zeros or garbage.
                #expect(disk.stats.sectorsKept + disk.stats.sectorsDropped + disk.stats.sectorsGarbage == 3)
            }
        }
        #expect(lengths == [600, 2_048])
    }

    @Test func unsyncedOverwriteLeavesOldNewOrGarbage() throws {
        let old = [UInt8](repeating: 0x22, count: 1_536)
        var kinds = Set<String>()
        for seed: UInt64 in 0..<60 {
            let (disk, file) = try disk(with: old)
            try file.write([UInt8](repeating: 0x33, count: 512), at: 512)
            var rng = SimRandom(seed: seed)
            disk.powerLoss(using: &rng)
            let after = try #require(disk.currentBytes(path))
            #expect(after.count == 1_536)
            #expect(after[0..<512].allSatisfy { $0 == 0x22 } && after[1_024...].allSatisfy { $0 == 0x22 })
            let middle = after[512..<1_024]
            kinds.insert(middle.allSatisfy { $0 == 0x22 } ? "old" : middle.allSatisfy { $0 == 0x33 } ? "new" : "garbage")
        }
        #expect(kinds == ["old", "new", "garbage"])
    }

    /// Random writes, truncates and syncs against a shadow of current and durable bytes: after a
    /// power loss the length is one of the two, each sector is kept, dropped or torn, and a byte
    /// that the unsynced changes left equal to its synced value never changes.
    @Test func powerLossMatchesShadowModel() throws {
        for seed: UInt64 in 0..<200 {
            var rng = SimRandom(seed: seed)
            let (disk, file) = try disk(with: rng.bytes(rng.int(in: 0..<3_000)))
            for _ in 0..<rng.int(in: 1..<12) {
                switch rng.int(in: 0..<4) {
                case 0, 1: try file.write(rng.bytes(rng.int(in: 1..<900)), at: Int64(rng.int(in: 0..<4_000)))
                case 2: try file.truncate(to: Int64(rng.int(in: 0..<4_000)))
                default: if rng.chance(0.3) { try file.sync() }
                }
            }
            let current = try #require(disk.currentBytes(path))
            let durable = try #require(disk.durableBytes(path))
            disk.powerLoss(using: &rng)
            let after = try #require(disk.currentBytes(path))
            #expect(after.count == current.count || after.count == durable.count, "seed \(seed)")
            func padded(_ bytes: [UInt8], _ range: Range<Int>) -> [UInt8] {
                range.map { $0 < bytes.count ? bytes[$0] : 0 }
            }
            for start in stride(from: 0, to: after.count, by: 512) {
                let range = start..<min(start + 512, after.count)
                let (now, was, got) = (padded(current, range), padded(durable, range), Array(after[range]))
                for (i, index) in range.enumerated() where index < durable.count && now[i] == was[i] {
                    #expect(got[i] == was[i], "seed \(seed): synced byte \(index) changed")
                }
                if got != now && got != was {
                    #expect(range.indices.contains { now[$0 - start] != was[$0 - start] }, "seed \(seed): torn clean sector")
                }
            }
        }
    }

    @Test func createdFileWithoutDirectorySyncMayVanish() throws {
        let bytes = pattern(700, base: 0x40)
        var survived = 0
        var vanished = 0
        for seed: UInt64 in 0..<200 {
            let (disk, _) = try disk(with: bytes, syncEntry: false)
            var rng = SimRandom(seed: seed)
            disk.powerLoss(using: &rng)
            if disk.fileExists(path) {
                survived += 1
                #expect(disk.currentBytes(path) == bytes)
                #expect(disk.stats.entriesKept == 1)
            } else {
                vanished += 1
                #expect(disk.stats.filesVanished == 1 && disk.stats.entriesReverted == 1)
            }
            #expect(disk.isDirectory(dir))
        }
        #expect(survived > 0 && vanished > 0)
    }

    @Test func removedFileWithoutDirectorySyncCanComeBack() throws {
        let bytes = pattern(900, base: 0x50)
        var back = 0
        var gone = 0
        for seed: UInt64 in 0..<200 {
            let (disk, file) = try disk(with: bytes)
            try file.write([0xFF, 0xFF], at: 0)
            try disk.remove(path)
            var rng = SimRandom(seed: seed)
            disk.powerLoss(using: &rng)
            if disk.fileExists(path) {
                back += 1
                #expect(disk.stats.filesRevived == 1)
                // Sector 0 had an unsynced overwrite; the rest comes back as it was synced.
                let after = try #require(disk.currentBytes(path))
                #expect(after.count == bytes.count && after[512...] == bytes[512...])
            } else {
                gone += 1
            }
        }
        #expect(back > 0 && gone > 0)
    }

    @Test func unsyncedRenameIsAtomic() throws {
        let bytes = pattern(300, base: 0x60)
        let target = "\(dir)/renamed"
        var outcomes = Set<String>()
        for seed: UInt64 in 0..<100 {
            let (disk, _) = try disk(with: bytes)
            try disk.rename(path, to: target)
            var rng = SimRandom(seed: seed)
            disk.powerLoss(using: &rng)
            let names = try disk.list(dir)
            #expect(names.count == 1, "seed \(seed): \(names)")
            outcomes.insert(names[0])
            #expect(disk.currentBytes(StoragePath.join(dir, names[0])) == bytes)
        }
        #expect(outcomes == ["00000000000000000000.meta", "renamed"])
    }

    @Test func fileMovedBetweenDirectoriesNeverGetsTwoNames() throws {
        for seed: UInt64 in 0..<50 {
            let (disk, _) = try disk(with: [1, 2, 3])
            try disk.makeDirectory("/other")
            try disk.rename(path, to: "/other/moved")
            try disk.syncDirectory("/other")
            var rng = SimRandom(seed: seed)
            disk.powerLoss(using: &rng)
            #expect(disk.filePaths() == ["/other/moved"])
        }
    }

    @Test func crashKeepsUnsyncedDataAndEntries() throws {
        let (disk, file) = try disk(with: [1, 2, 3], syncData: false, syncEntry: false)
        _ = try disk.open("\(dir)/second", create: true)
        disk.crash()
        #expect(disk.currentBytes(path) == [1, 2, 3])
        #expect(disk.durableBytes(path) == [])
        #expect(try disk.list(dir).count == 2)
        #expect(throws: StorageError.closed(path: path)) { try file.size() }
        #expect(try disk.open(path, create: false).read(at: 0, count: 3) == [1, 2, 3])
        #expect(disk.stats.crashes == 1)
    }

    @Test func handlesAreDeadAfterPowerLoss() throws {
        let (disk, file) = try disk(with: [1])
        var rng = SimRandom(seed: 1)
        disk.powerLoss(using: &rng)
        let closed = StorageError.closed(path: path)
        #expect(throws: closed) { try file.size() }
        #expect(throws: closed) { try file.write([2], at: 0) }
        #expect(throws: closed) { try file.read(at: 0, count: 1) }
        #expect(throws: closed) { try file.withBytes(at: 0, count: 1) { _ in } }
        #expect(throws: closed) { try file.sync() }
        #expect(throws: closed) { try file.truncate(to: 0) }
        #expect(throws: closed) { try file.close() }
        #expect(try disk.open(path, create: false).read(at: 0, count: 1) == [1])
    }

    @Test func everythingIsDurableAfterPowerLoss() throws {
        let (disk, file) = try disk(with: pattern(2_000, base: 0x70), syncData: false, syncEntry: false)
        try file.write([9, 9, 9], at: 3_000)
        var rng = SimRandom(seed: 4)
        disk.powerLoss(using: &rng)
        for path in disk.filePaths() {
            #expect(disk.currentBytes(path) == disk.durableBytes(path))
            #expect(disk.isEntryDurable(path))
        }
        var again = SimRandom(seed: 5)
        let before = disk.fingerprint()
        disk.powerLoss(using: &again)
        #expect(disk.fingerprint() == before)
    }

    @Test func corruptSyncedSectorChangesDurableContent() throws {
        let bytes = pattern(1_300, base: 0x80)
        let (disk, _) = try disk(with: bytes)
        var rng = SimRandom(seed: 6)
        disk.corruptSyncedSector(path: path, sector: 1, using: &rng)
        let durable = try #require(disk.durableBytes(path))
        #expect(durable.count == bytes.count)
        #expect(durable[0..<512] == bytes[0..<512] && durable[1_024...] == bytes[1_024...])
        #expect(durable[512..<1_024] != bytes[512..<1_024])
        #expect(disk.currentBytes(path) == durable)
        #expect(disk.stats.sectorsCorrupted == 1)
        // The last, partial sector can rot too, and the length stays.
        disk.corruptSyncedSector(path: path, sector: 2, using: &rng)
        #expect(disk.durableBytes(path)?.count == bytes.count)
        #expect(disk.durableBytes(path)?[1_024...] != bytes[1_024...])
    }

    @Test func corruptionReachesDurableBytesUnderAnUnsyncedOverwrite() throws {
        let bytes = pattern(1_024, base: 0x90)
        let (disk, file) = try disk(with: bytes)
        try file.write([UInt8](repeating: 0, count: 10), at: 0)
        var rng = SimRandom(seed: 7)
        disk.corruptSyncedSector(path: path, sector: 0, using: &rng)
        let durable = try #require(disk.durableBytes(path))
        #expect(durable[0..<512] != bytes[0..<512])
        #expect(durable[512...] == bytes[512...])
        #expect(disk.currentBytes(path)?[0..<512] == durable[0..<512])
    }

    /// A scripted workload driven by `seed`, with two power losses; returns the final disk.
    func scriptedRun(seed: UInt64) throws -> SimDisk {
        var rng = SimRandom(seed: seed)
        let disk = SimDisk()
        for round in 0..<2 {
            try disk.makeDirectory(dir)
            for step in 0..<40 {
                disk.nowMs = Int64(round * 1_000 + step)
                let name = "\(dir)/f\(rng.int(in: 0..<5))"
                switch rng.int(in: 0..<6) {
                case 0, 1:
                    let file = try disk.open(name, create: true)
                    try file.write(rng.bytes(rng.int(in: 1..<1_500)), at: Int64(rng.int(in: 0..<3_000)))
                    if rng.chance(0.5) { try file.sync() }
                case 2: if disk.fileExists(name) { try disk.remove(name) }
                case 3: if disk.fileExists(name) { try disk.rename(name, to: "\(dir)/f\(rng.int(in: 0..<5))") }
                case 4: try disk.syncDirectory(dir)
                default: if disk.fileExists(name) { try disk.open(name, create: false).truncate(to: Int64(rng.int(in: 0..<2_000))) }
                }
            }
            disk.powerLoss(using: &rng)
        }
        return disk
    }

    @Test func sameSeedGivesByteIdenticalDisks() throws {
        var fingerprints = Set<UInt64>()
        for seed: UInt64 in 0..<10 {
            let first = try scriptedRun(seed: seed)
            let second = try scriptedRun(seed: seed)
            #expect(first.fingerprint() == second.fingerprint())
            #expect(first.filePaths() == second.filePaths())
            for path in first.filePaths() {
                #expect(first.currentBytes(path) == second.currentBytes(path))
            }
            #expect(first.stats == second.stats)
            fingerprints.insert(first.fingerprint())
        }
        #expect(fingerprints.count == 10)
    }

    /// Pinned so that a decision depending on per-process hash order (or an unintended model
    /// change) shows up across runs, which one process comparing two runs cannot see.
    /// Update the value only when the power-loss model changes on purpose.
    @Test func fingerprintIsStableAcrossProcesses() throws {
        #expect(try scriptedRun(seed: 2).fingerprint() == 17_637_205_718_163_695_937)
    }
}
