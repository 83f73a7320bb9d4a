import ProtocolCore
import Sim
import Testing
@testable import StoreCore

let txDir = "/data/transactions"

func openJournal(_ disk: SimDisk, _ config: TxJournalConfig = TxJournalConfig()) throws -> (TxJournal, TxJournalOpenReport) {
    try TxJournal.open(storage: disk, directory: txDir, config: config)
}

func replayAll(_ journal: TxJournal) throws -> [TxJournalRecord] {
    var records: [TxJournalRecord] = []
    try journal.replay { records.append($0) }
    return records
}

func txPut(_ i: Int) -> TxJournalEntry {
    .appendMessage(messageId: Int64(i), putCommand: Array("put test 0 5 0 907060870 TX:s:\(i) \(i)\r\nhello".utf8))
}

func txCommit(_ id: String, _ locations: [TxPartitionLocation] = [TxPartitionLocation(offset: 50, length: 50, checksum: 9, topic: "test", partition: 0)]) -> TxJournalEntry {
    .operation(type: .localCommit, wasPrepared: false, transactionId: id, locations: locations)
}

func txRollback(_ id: String) -> TxJournalEntry {
    .operation(type: .localRollback, wasPrepared: false, transactionId: id, locations: [])
}

func txPrepare(_ id: String) -> TxJournalEntry {
    .operation(type: .xaPrepare, wasPrepared: false, transactionId: id, locations: [])
}

/// The redo files, sync protocol and recovery of the transaction journal (reference §4.3–§4.5,
/// DESIGN.md §4).
@Suite("Transaction journal")
struct TxJournalTests {
    @Test func firstOpenCreatesRedo1() throws {
        let disk = SimDisk()
        let (journal, report) = try openJournal(disk)
        #expect(report.createdFirstFile)
        #expect(journal.fileNumbers == [1])
        #expect(try disk.list(txDir) == ["redo.1"])
        #expect(try replayAll(journal).isEmpty)
        #expect(journal.writtenEnd == TxJournalPosition(file: 1, offset: 0))
    }

    @Test func appendSyncReopenReplaysTheSameEntries() throws {
        let disk = SimDisk()
        let (journal, _) = try openJournal(disk)
        let entries: [(TxJournalEntry, Bool)] = [(txPut(1), false), (txPut(2), false), (txCommit("TX:s:1"), false),
                                                 (txPut(3), false), (txPrepare("XID:1:aa:bb:q"), true), (txRollback("TX:s:3"), false)]
        var positions: [TxJournalPosition] = []
        for (entry, force) in entries { positions.append(try journal.append(entry, force: force)) }
        #expect(journal.hasUnsyncedData)
        try journal.syncNow()
        #expect(!journal.hasUnsyncedData)
        #expect(journal.syncedEnd == journal.writtenEnd)
        journal.close()

        let (reopened, report) = try openJournal(disk)
        #expect(report.entryCount == entries.count)
        #expect(report.truncatedBytes == 0)
        let records = try replayAll(reopened)
        #expect(records.map(\.entry) == entries.map(\.0))
        #expect(records.map(\.force) == entries.map(\.1))
        #expect(records.map(\.position) == positions)
        // Appends continue after the last entry.
        let next = try reopened.append(txPut(4), force: false)
        #expect(next == TxJournalPosition(file: 1, offset: positions[5].offset + Int64(records[5].size)))
    }

    /// Staged entries (a tick's transactional puts) are written together by one `flushWrites`, at
    /// the positions `stage` promised; a sync writes what is staged first.
    @Test func stagedEntriesAreWrittenTogetherWhereStagePromised() throws {
        let disk = SimDisk()
        let (journal, _) = try openJournal(disk)
        let positions = try (1...3).map { try journal.stage(txPut($0), force: false) }
        #expect(journal.hasStagedEntries)
        #expect(disk.currentBytes(txDir + "/redo.1") == [], "nothing written before the flush")
        #expect(journal.writtenEnd == TxJournalPosition(file: 1, offset: 0))
        try journal.flushWrites()
        #expect(!journal.hasStagedEntries)
        let sizes = (1...3).map { TxJournalCodec.encode(txPut($0), force: false).count }
        #expect(positions.map(\.offset) == [0, Int64(sizes[0]), Int64(sizes[0] + sizes[1])])
        #expect(disk.currentBytes(txDir + "/redo.1")?.count == sizes.reduce(0, +))
        let fourth = try journal.stage(txCommit("TX:s:1"), force: true)
        try journal.syncNow()
        #expect(journal.syncedEnd.offset > fourth.offset, "a sync writes the staged entry first")
        journal.close()
        let (reopened, _) = try openJournal(disk)
        #expect(try replayAll(reopened).map(\.position) == positions + [fourth])
    }

    /// A power loss after appends that were not synced costs only those: the replay is a prefix of
    /// what was appended that holds every synced entry, and a second open finds a clean tail.
    @Test func powerLossLosesOnlyUnsyncedEntries() throws {
        for seed in UInt64(0)..<150 {
            let disk = SimDisk()
            let (journal, _) = try openJournal(disk)
            let all = (0..<8).map { txPut($0) }
            for entry in all.prefix(4) { try journal.append(entry, force: false) }
            try journal.syncNow()
            for entry in all.dropFirst(4) { try journal.append(entry, force: false) }
            var rng = SimRandom(seed: seed)
            disk.powerLoss(using: &rng)

            let (reopened, _) = try openJournal(disk)
            let replayed = try replayAll(reopened).map(\.entry)
            #expect(replayed.count >= 4 && Array(all.prefix(replayed.count)) == replayed, "seed \(seed)")
            reopened.close()
            let (again, report) = try openJournal(disk)
            #expect(report.truncatedBytes == 0, "seed \(seed)")
            #expect(try replayAll(again).map(\.entry) == replayed, "seed \(seed)")
        }
    }

    @Test func tornTailOfTheNewestFileIsTruncated() throws {
        let disk = SimDisk()
        let (journal, _) = try openJournal(disk)
        try journal.append(txPut(1), force: false)
        let end = journal.writtenEnd.offset
        try journal.syncNow()
        journal.close()
        let half = Array(TxJournalCodec.encode(txPut(2), force: false).prefix(9))
        try overwrite(disk, "\(txDir)/redo.1", at: end, with: half)

        let (reopened, report) = try openJournal(disk)
        #expect(report.truncatedFile == "redo.1")
        #expect(report.truncatedBytes == 9)
        #expect(try replayAll(reopened).map(\.entry) == [txPut(1)])
        #expect(disk.durableBytes("\(txDir)/redo.1")?.count == Int(end))
    }

    /// Files roll only once the current one is over its size and synced, so every file but the
    /// newest is whole; a new append then goes to `redo.<n+1>`.
    @Test func filesRollAtTheSizeOnceSynced() throws {
        let disk = SimDisk()
        let (journal, _) = try openJournal(disk, TxJournalConfig(fileSizeBytes: 100))
        var positions: [TxJournalPosition] = []
        for i in 0..<3 { positions.append(try journal.append(txPut(i), force: false)) }
        // Over 100 bytes but unsynced: still redo.1.
        #expect(positions.map(\.file) == [1, 1, 1])
        try journal.syncNow()
        positions.append(try journal.append(txPut(3), force: false))
        #expect(positions[3] == TxJournalPosition(file: 2, offset: 0))
        #expect(journal.fileNumbers == [1, 2])
        try journal.syncNow()
        journal.close()

        let (reopened, report) = try openJournal(disk, TxJournalConfig(fileSizeBytes: 100))
        #expect(report.files == [1, 2])
        #expect(try replayAll(reopened).map(\.position) == positions)
    }

    /// A file goes when no open transaction started in it or before it, it is not the current
    /// file, and the entries that ended its transactions are durable — oldest first (§4.3's
    /// reference count, with files deleted in order because entries go to the current file).
    @Test func filesAreDeletedOnlyWhenNoOpenTransactionNeedsThem() throws {
        let disk = SimDisk()
        let (journal, _) = try openJournal(disk, TxJournalConfig(fileSizeBytes: 40))
        journal.recoveryFinished()
        let a = try journal.append(txPut(1), force: false)
        journal.transactionStarted(id: "TX:s:1", at: a)
        try journal.syncNow()
        let b = try journal.append(txPut(2), force: false)
        journal.transactionStarted(id: "TX:s:2", at: b)
        #expect(b.file == 2)
        try journal.append(txCommit("TX:s:2"), force: false)
        journal.transactionEnded(id: "TX:s:2")
        try journal.syncNow()
        try journal.append(txPut(3), force: false)
        #expect(journal.fileNumbers == [1, 2, 3])
        #expect(journal.referenceCount(file: 1) == 1)
        #expect(journal.referenceCount(file: 2) == 0)
        // redo.2 has no open transaction, but redo.1 before it does: nothing goes.
        #expect(try journal.syncNow() == [])

        try journal.append(txRollback("TX:s:1"), force: false)
        #expect(journal.fileNumbers == [1, 2, 3, 4])
        journal.transactionEnded(id: "TX:s:1")
        // The rollback is not durable yet: redo.1 stays.
        #expect(journal.fileNumbers == [1, 2, 3, 4])
        // One file per directory sync, oldest first, so a power loss cannot leave a gap.
        #expect(try journal.syncNow() == ["redo.1"])
        #expect(try journal.syncNow() == ["redo.2"])
        #expect(try journal.syncNow() == ["redo.3"])
        #expect(journal.fileNumbers == [4])
        #expect(try journal.syncNow() == [])
        #expect(try disk.list(txDir) == ["redo.4"])
        journal.close()
        let (reopened, report) = try openJournal(disk, TxJournalConfig(fileSizeBytes: 40))
        #expect(report.files == [4])
        #expect(try replayAll(reopened).first?.position == TxJournalPosition(file: 4, offset: 0))
    }

    @Test func noFileIsDeletedBeforeRecoveryFinished() throws {
        let disk = SimDisk()
        let (journal, _) = try openJournal(disk, TxJournalConfig(fileSizeBytes: 10))
        try journal.append(txPut(1), force: false)
        try journal.syncNow()
        try journal.append(txPut(2), force: false)
        #expect(try journal.syncNow() == [])
        #expect(journal.fileNumbers == [1, 2])
        journal.recoveryFinished()
        #expect(journal.fileNumbers == [2])
    }

    @Test func damageInAnOlderFileRefusesToStart() throws {
        let disk = SimDisk()
        let (journal, _) = try openJournal(disk, TxJournalConfig(fileSizeBytes: 10))
        try journal.append(txPut(1), force: false)
        try journal.append(txPut(2), force: false)
        try journal.syncNow()
        try journal.append(txPut(3), force: false)
        try journal.syncNow()
        journal.close()
        try overwrite(disk, "\(txDir)/redo.1", at: 0, with: [0xFF])
        #expect {
            _ = try openJournal(disk, TxJournalConfig(fileSizeBytes: 10))
        } throws: { error in
            guard case TxJournalError.damaged(let path, let offset, _) = error else { return false }
            return path == "\(txDir)/redo.1" && offset == 0
        }
    }

    @Test func aMissingFileInTheRunRefusesToStart() throws {
        let disk = SimDisk()
        try disk.makeDirectory(txDir)
        for name in ["redo.1", "redo.3"] { _ = try disk.open("\(txDir)/\(name)", create: true) }
        #expect(throws: TxJournalError.missingFiles(directory: txDir, detail: "redo.2 is missing between redo.1 and redo.3")) {
            _ = try openJournal(disk)
        }
        _ = try disk.open("\(txDir)/redo.x", create: true)
        #expect(throws: TxJournalError.badFileName(path: "\(txDir)/redo.x")) { _ = try openJournal(disk) }
    }

    /// §4.4: recovery replays from the checkpoint; nothing is written without an open
    /// transaction, when not newer, or while written bytes are unsynced.
    @Test func replayStartsAtTheCheckpoint() throws {
        let disk = SimDisk()
        let (journal, _) = try openJournal(disk)
        try journal.append(txPut(1), force: false)
        try journal.append(txCommit("TX:s:1"), force: false)
        let open = try journal.append(txPut(2), force: false)
        #expect(try journal.checkpoint(oldestOpen: open) == .needsSync)
        try journal.syncNow()
        #expect(try journal.checkpoint(oldestOpen: nil) == .unchanged)
        #expect(try journal.checkpoint(oldestOpen: open) == .written(number: 1, position: open))
        #expect(try journal.checkpoint(oldestOpen: open) == .unchanged)
        try journal.append(txPut(3), force: false)
        try journal.syncNow()
        journal.close()
        #expect(disk.durableBytes("\(txDir)/checkpoint.1") == Array("{\"number\":1,\"offset\":\(open.offset)}".utf8))

        let (reopened, report) = try openJournal(disk)
        #expect(report.checkpoint == open)
        #expect(report.replayStart == open)
        #expect(try replayAll(reopened).map(\.entry) == [txPut(2), txPut(3)])
    }

    @Test func onlyMaxCheckpointsAreKept() throws {
        let disk = SimDisk()
        let (journal, _) = try openJournal(disk, TxJournalConfig(maxCheckpoints: 2))
        for i in 0..<4 {
            let position = try journal.append(txPut(i), force: false)
            try journal.syncNow()
            #expect(try journal.checkpoint(oldestOpen: position) == .written(number: i + 1, position: position))
        }
        #expect(try disk.list(txDir).filter { $0.hasPrefix("checkpoint.") } == ["checkpoint.3", "checkpoint.4"])
        journal.close()
        let (reopened, report) = try openJournal(disk, TxJournalConfig(maxCheckpoints: 2))
        #expect(try replayAll(reopened).map(\.entry) == [txPut(3)])
        #expect(report.skippedCheckpoints.isEmpty)
    }

    /// An unreadable newest checkpoint (or the empty `checkpoint.1` the original leaves) is skipped
    /// for an older one: replaying more is always safe.
    @Test func anUnreadableCheckpointFallsBackToAnOlderOne() throws {
        let disk = SimDisk()
        let (journal, _) = try openJournal(disk)
        let first = try journal.append(txPut(1), force: false)
        let second = try journal.append(txPut(2), force: false)
        try journal.syncNow()
        _ = try journal.checkpoint(oldestOpen: second)
        journal.close()
        try overwrite(disk, "\(txDir)/checkpoint.1", at: 0, with: Array("{\"number\":1,\"offset\":\(first.offset)}  \n".utf8))
        let bad = try disk.open("\(txDir)/checkpoint.2", create: true)
        try bad.write(Array("{\"number\":1,".utf8), at: 0)
        _ = try disk.open("\(txDir)/checkpoint.3", create: true)

        let (reopened, report) = try openJournal(disk)
        #expect(report.checkpoint == first)
        #expect(report.skippedCheckpoints.count == 2)
        #expect(try replayAll(reopened).map(\.entry) == [txPut(1), txPut(2)])
    }

    @Test func checkpointJSONIsParsedStrictly() throws {
        let ok = try TxCheckpointFile.parse(Array(" {\n \"offset\" : 120 ,\t\"number\":3 }\r\n".utf8))
        #expect(ok == TxJournalPosition(file: 3, offset: 120))
        #expect(TxCheckpointFile.encode(ok) == Array("{\"number\":3,\"offset\":120}".utf8))
        for text in ["", "{}", "{\"number\":1}", "{\"number\":1,\"offset\":-1}", "{\"number\":1,\"offset\":1.5}",
                     "{\"number\":0,\"offset\":1}", "{\"number\":1,\"number\":2}", "{\"number\":1,\"offset\":2,\"x\":3}",
                     "{\"number\":1,\"offset\":01}", "{\"number\":1,\"offset\":99999999999999999999}",
                     "{\"number\":1,\"offset\":2} x", "[1,2]"] {
            #expect(throws: TxFileFormatError.self, "\(text)") { _ = try TxCheckpointFile.parse(Array(text.utf8)) }
        }
    }

    @Test func aCheckpointPastTheFilesRefusesToStart() throws {
        let disk = SimDisk()
        let (journal, _) = try openJournal(disk)
        journal.close()
        try disk.replaceAtomically("\(txDir)/checkpoint.1", with: Array("{\"number\":4,\"offset\":0}".utf8))
        #expect(throws: TxJournalError.self) { _ = try openJournal(disk) }
    }

    /// DESIGN.md §4: a failed write or sync is final; the journal refuses every later append.
    @Test func aFailedWriteFailsTheJournalForGood() throws {
        let disk = SimDisk()
        let (journal, _) = try openJournal(disk)
        try journal.append(txPut(1), force: false)
        disk.failNextWrite = (detail: "pwrite: No space left on device (ENOSPC)", writtenPrefix: 7)
        #expect(throws: TxJournalError.self) { try journal.append(txPut(2), force: false) }
        #expect(journal.failure?.operation == .write)
        do {
            try journal.append(txPut(3), force: false)
            Issue.record("an append after a failed write succeeded")
        } catch {
            guard case .failed = error else { Issue.record("\(error)"); return }
            #expect(error.description.contains("refuses writes"))
        }
        guard case .failed = journal.beginSync() else { Issue.record("a failed journal began a sync"); return }
        #expect(throws: TxJournalError.self) { _ = try journal.checkpoint(oldestOpen: TxJournalPosition(file: 1, offset: 0)) }
        journal.close()
        // The partial entry is a torn tail for the next start.
        let (reopened, report) = try openJournal(disk)
        #expect(report.truncatedBytes == 7)
        #expect(try replayAll(reopened).map(\.entry) == [txPut(1)])
    }

    @Test func aFailedSyncFailsTheJournalForGood() throws {
        let disk = SimDisk()
        let (journal, _) = try openJournal(disk)
        try journal.append(txPut(1), force: false)
        disk.failNextSync = true
        #expect(throws: TxJournalError.self) { try journal.syncNow() }
        #expect(journal.failure?.operation == .sync)
        #expect(throws: TxJournalError.self) { try journal.append(txPut(2), force: false) }
        #expect(journal.syncedEnd == TxJournalPosition(file: 1, offset: 0))
    }

    @Test func aSyncPerformedElsewhereCompletesOnTheOwner() throws {
        let disk = SimDisk()
        let (journal, _) = try openJournal(disk)
        try journal.append(txPut(1), force: false)
        guard let batch = journal.beginSync().batch else { Issue.record("no sync begun"); return }
        // Appends while the sync runs are not covered by it.
        try journal.append(txPut(2), force: false)
        guard case .idle = journal.beginSync() else { Issue.record("two syncs at once"); return }
        if case .failure(let error) = batch.performed() { Issue.record("\(error)") }
        journal.completeSync(batch)
        #expect(journal.syncedEnd < journal.writtenEnd)
        #expect(journal.hasUnsyncedData)
        try journal.syncNow()
        #expect(journal.syncedEnd == journal.writtenEnd)
    }

    /// §4.5: recovery rewrites a commit's locations in place when a batch was appended again.
    @Test func rewriteAttachmentInPlace() throws {
        let disk = SimDisk()
        let (journal, _) = try openJournal(disk)
        let old = [TxPartitionLocation(offset: 50, length: 50, checksum: 9, topic: "test", partition: 0),
                   TxPartitionLocation(offset: 70, length: 20, checksum: 3, topic: "test", partition: 1)]
        let p = try journal.append(txPut(1), force: false)
        let c = try journal.append(txCommit("TX:s:1", old), force: false)
        try journal.append(txPut(2), force: false)
        try journal.syncNow()
        let new = [TxPartitionLocation(offset: 500, length: 50, checksum: 9, topic: "test", partition: 0),
                   TxPartitionLocation(offset: 700, length: 20, checksum: 3, topic: "test", partition: 1)]
        try journal.rewriteAttachment(at: c, locations: new)
        #expect(journal.hasUnsyncedData)
        try journal.syncNow()
        #expect(throws: TxJournalError.self) { try journal.rewriteAttachment(at: p, locations: new) }
        let longer = [TxPartitionLocation(offset: 500, length: 50, checksum: 9, topic: "test-topic", partition: 0)]
        #expect(throws: TxJournalError.self) { try journal.rewriteAttachment(at: c, locations: longer) }
        journal.close()
        let (reopened, _) = try openJournal(disk)
        #expect(try replayAll(reopened).map(\.entry) == [txPut(1), txCommit("TX:s:1", new), txPut(2)])
    }

    /// The replay streams: entries larger than the read window are still read whole.
    @Test func entriesLargerThanTheReadWindowReplay() throws {
        let disk = SimDisk()
        let config = TxJournalConfig(readWindowBytes: 16)
        let (journal, _) = try openJournal(disk, config)
        let body = [UInt8](repeating: 0x61, count: 5000)
        let bigPut = Frame.put(PutCommand(topic: "test", partition: 0, flag: 0, checksum: CRC32.metaqChecksum(body),
                                          transactionKey: "TX:s:9", body: body, opaque: 9)).encoded()
        let big = TxJournalEntry.appendMessage(messageId: 9, putCommand: bigPut)
        try journal.append(txPut(1), force: false)
        try journal.append(big, force: false)
        try journal.append(txPut(2), force: false)
        try journal.syncNow()
        journal.close()
        let (reopened, _) = try openJournal(disk, config)
        #expect(try replayAll(reopened).map(\.entry) == [txPut(1), big, txPut(2)])
        #expect(throws: TxJournalError.entryTooLarge(bytes: TxJournalCodec.encode(big, force: false).count, limit: 1000)) {
            let (small, _) = try openJournal(SimDisk(), TxJournalConfig(maxEntryBytes: 1000))
            try small.append(big, force: false)
        }
    }

    /// A redo file written by the original (commit without `data_length`) replays with its locations.
    @Test func aRedoFileOfTheOriginalReplays() throws {
        let disk = SimDisk()
        try disk.makeDirectory(txDir)
        let location = TxPartitionLocation(offset: 60, length: 25, checksum: 7, topic: "test", partition: 1)
        // XA_COMMIT, was_prepared=true, id "XID:x", no data_length; attachment after the protobuf.
        let original: [UInt8] = [0, 0, 0, 15, 0x08, 0x02, 0x12, 0x0B, 0x08, 0x02, 0x10, 0x01, 0x1A, 0x05] + Array("XID:x".utf8)
            + TxJournalCodec.encodeAttachment([location])
        let bytes = TxJournalCodec.encode(txPut(1), force: false) + original + TxJournalCodec.encode(txPut(2), force: false)
        let file = try disk.open("\(txDir)/redo.1", create: true)
        try file.write(bytes, at: 0)
        let (journal, report) = try openJournal(disk)
        #expect(report.truncatedBytes == 0)
        #expect(try replayAll(journal).map(\.entry) == [
            txPut(1), .operation(type: .xaCommit, wasPrepared: true, transactionId: "XID:x", locations: [location]), txPut(2),
        ])
    }
}

/// `heuristic.log` (§4.5 item 4) in our portable format.
@Suite("Heuristic transaction log")
struct TxHeuristicLogTests {
    static let entries = [
        TxHeuristicEntry(transactionId: "XID:1:0a0b:0c:XAMessageProducer-host", outcome: .committed, uniqueQualifier: "XAMessageProducer-host"),
        TxHeuristicEntry(transactionId: "XID:1:ff:ee:q", outcome: .rolledBack, uniqueQualifier: nil),
        TxHeuristicEntry(transactionId: "XID:2:é:00:", outcome: .committed, uniqueQualifier: ""),
    ]

    @Test func roundTripSurvivesPowerLoss() throws {
        let disk = SimDisk()
        #expect(try TxHeuristicLog.load(storage: disk, directory: txDir) == [])
        try disk.makeDirectory(txDir)
        try TxHeuristicLog.save(Self.entries, storage: disk, directory: txDir)
        var rng = SimRandom(seed: 3)
        disk.powerLoss(using: &rng)
        #expect(try TxHeuristicLog.load(storage: disk, directory: txDir) == Self.entries)
        try TxHeuristicLog.save([], storage: disk, directory: txDir)
        #expect(try TxHeuristicLog.load(storage: disk, directory: txDir) == [])
        #expect(try disk.list(txDir) == [TxHeuristicLog.fileName])
    }

    /// Every single-byte change and every truncation is caught (checksum, structure), and the
    /// original's Java-serialized file is named as such.
    @Test func damageIsAClearError() throws {
        let good = TxHeuristicLog.encode(Self.entries)
        for index in good.indices {
            var bad = good
            bad[index] ^= 0x5A
            #expect(throws: TxFileFormatError.self, "byte \(index)") { _ = try TxHeuristicLog.decode(bad) }
        }
        for length in 1..<good.count {
            #expect(throws: TxFileFormatError.self, "length \(length)") { _ = try TxHeuristicLog.decode(Array(good.prefix(length))) }
        }
        #expect(try TxHeuristicLog.decode([]) == [])
        do {
            _ = try TxHeuristicLog.decode([0xAC, 0xED, 0x00, 0x05, 0x73, 0x72])
            Issue.record("a Java-serialized file was accepted")
        } catch {
            #expect(error.reason.contains("Java serialization"))
        }
        let disk = SimDisk()
        try disk.makeDirectory(txDir)
        let file = try disk.open("\(txDir)/\(TxHeuristicLog.fileName)", create: true)
        try file.write(Array(good.dropLast()), at: 0)
        #expect {
            _ = try TxHeuristicLog.load(storage: disk, directory: txDir)
        } throws: { error in
            guard case TxJournalError.badHeuristicLog(let path, _) = error else { return false }
            return path == "\(txDir)/\(TxHeuristicLog.fileName)"
        }
    }
}
