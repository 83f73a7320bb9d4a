import ProtocolCore

/// Opening a partition directory and recovering it (reference §2.6, DESIGN.md §4).
extension PartitionLog {
    /// Opens (creating when missing) the log in `directory` and recovers it:
    /// 1. every `*.meta` file is a segment, sorted by start offset;
    /// 2. contiguity: `cur.start + cur.size == next.start`. A segment shorter than that lost its
    ///    unsynced tail in a power loss; since a sync always covers older segments before newer
    ///    ones, nothing after it was ever synced, so the later segments are removed. A segment
    ///    longer than that is not explainable and stops the open, as in the original;
    /// 3. the last segment is scanned: a torn tail is truncated, damage followed by good records
    ///    is kept in place and reported (the good records stay readable) — unless a clean close
    ///    left a `CleanStopMark` that matches it exactly (issue 18); the mark is removed either way;
    /// 4. every segment and the directory are synced, so what recovery kept is durable before
    ///    anyone reads it.
    ///
    /// Segments are opened one at a time, so recovering a directory of thousands of segments does
    /// not need as many descriptors; only the last stays open.
    public static func open(storage: any Storage, directory: String, config: LogConfig,
                            now: Instant, offsetIfCreate: Int64 = 0) throws(LogError) -> PartitionLog {
        var report = RecoveryReport()
        do {
            try storage.makeDirectory(directory)
            var segments = try loadSegments(storage: storage, directory: directory)
            if segments.isEmpty {
                let path = StoragePath.join(directory, SegmentName.name(forStart: offsetIfCreate))
                segments = [Segment(start: offsetIfCreate, path: path, file: try storage.open(path, create: true), size: 0)]
                report.createdFirstSegment = true
            }
            try cutAfterTornSegment(&segments, storage: storage, directory: directory, report: &report)
            let last = segments[segments.count - 1]
            if last.file == nil { last.file = try storage.open(last.path, create: false) }
            let mark = SyncedMark.load(storage: storage, directory: directory)
            let known = try DamageRegistry.load(storage: storage, directory: directory)
            let endsEmpty: Bool
            var recordCount: Int?
            let stale = config.canaryTrustsStaleCleanStopMark
            if let cleanStop = CleanStopMark.load(storage: storage, directory: directory),
               stale || (cleanStop.start == last.start && cleanStop.sizeBytes == last.size) {
                // A clean close synced these very bytes and nothing has written the file since.
                endsEmpty = cleanStop.endsWithEmptyRecord
                recordCount = cleanStop.recordCount
                report.lastSegmentScanSkipped = true
            } else {
                endsEmpty = try scanLast(last, trustedEnd: mark.map { $0 - last.start } ?? 0,
                                         knownDamage: known, config: config, report: &report)
            }
            // Trusted or not, a mark is used once: its removal is durable (the directory sync
            // below) before the log accepts a write, so a crash later can never be met by it.
            if !stale { try CleanStopMark.remove(storage: storage, directory: directory) }
            for segment in segments { try syncSegment(segment, storage: storage) }
            try storage.syncDirectory(directory)
            try recordDamage(&report, known: known, segments: segments, storage: storage, directory: directory)
            var markFile: (any StorageFile)?
            if endsEmpty && mark != last.end {
                // What recovery kept is synced now; vouch for its trailing empty records.
                let file = try storage.open(StoragePath.join(directory, SyncedMark.fileName), create: true)
                try SyncedMark.write(last.end, to: file)
                try storage.syncDirectory(directory)
                markFile = file
            }
            report.segmentCount = segments.count
            return PartitionLog(directory: directory, config: config, storage: storage, segments: segments,
                                report: report, recordCount: recordCount ?? report.scannedRecordCount,
                                endsWithEmptyRecord: endsEmpty, markFile: markFile, now: now)
        } catch let error as LogError {
            throw error
        } catch {
            throw .storage(storageError(error, path: directory))
        }
    }

    /// Joins the damage found now with the damage recorded by earlier runs (dropping what lies
    /// outside the log), and makes the result durable before anything is served.
    private static func recordDamage(_ report: inout RecoveryReport, known: [Range<Int64>], segments: [Segment],
                                     storage: any Storage, directory: String) throws {
        let bounds = segments[0].start..<segments[segments.count - 1].end
        let all = DamageRegistry.merge(known + report.damagedRanges).compactMap { range -> Range<Int64>? in
            let clamped = range.clamped(to: bounds)
            return clamped.isEmpty ? nil : clamped
        }
        if all != known { try DamageRegistry.save(all, storage: storage, directory: directory) }
        report.newDamagedRanges = report.damagedRanges.filter { found in !known.contains { $0.contains(found.lowerBound) } }
        report.damagedRanges = all
    }

    /// Every segment of `directory` in offset order, each closed.
    private static func loadSegments(storage: any Storage, directory: String) throws -> [Segment] {
        let starts = try storage.list(directory).compactMap { name in SegmentName.start(of: name).map { ($0, name) } }
        var segments: [Segment] = []
        for (start, name) in starts.sorted(by: { $0.0 < $1.0 }) {
            let path = StoragePath.join(directory, name)
            let file = try storage.open(path, create: false)
            defer { try? file.close() }
            segments.append(Segment(start: start, path: path, file: nil, size: try file.size()))
        }
        return segments
    }

    /// Syncs a segment through its open file, or a closed one through a file opened for it:
    /// a sync covers every write to the file, whichever descriptor made it.
    private static func syncSegment(_ segment: Segment, storage: any Storage) throws {
        if let file = segment.file { return try file.sync() }
        let file = try storage.open(segment.path, create: false)
        defer { try? file.close() }
        try file.sync()
    }

    private static func cutAfterTornSegment(_ segments: inout [Segment], storage: any Storage,
                                            directory: String, report: inout RecoveryReport) throws {
        for i in 0..<(segments.count - 1) where segments[i].end != segments[i + 1].start {
            let cur = segments[i]
            let next = segments[i + 1]
            guard cur.end < next.start else {
                throw LogError.segmentsNotContiguous(
                    directory: directory,
                    detail: "\(cur.path) ends at \(cur.end) but \(next.path) starts at \(next.start)")
            }
            for later in segments[(i + 1)...] {
                try storage.remove(later.path)
                report.removedSegments.append(StoragePath.lastComponent(of: later.path))
            }
            segments.removeSubrange((i + 1)...)
            return
        }
    }

    /// Scans and truncates the last segment; returns whether it ends with an empty record.
    private static func scanLast(_ segment: Segment, trustedEnd: Int64, knownDamage: [Range<Int64>],
                                 config: LogConfig, report: inout RecoveryReport) throws -> Bool {
        guard segment.size > 0 else { return false }
        let trusted = Int(min(max(0, trustedEnd), segment.size))
        let known = knownDamage.compactMap { range -> Range<Int>? in
            let clamped = range.clamped(to: segment.start..<segment.end)
            return clamped.isEmpty ? nil : Int(clamped.lowerBound - segment.start)..<Int(clamped.upperBound - segment.start)
        }
        guard let file = segment.file else { preconditionFailure("the last segment \(segment.path) is not open") }
        let scan = try file.withBytes(at: 0, count: Int(segment.size)) {
            SegmentScanner.scan($0, maxPayloadBytes: config.maxRecordPayloadBytes, trustedEnd: trusted,
                                knownDamage: known)
        }
        report.scannedRecordCount += scan.recordCount
        report.damagedRanges = scan.damaged.map {
            (segment.start + Int64($0.lowerBound))..<(segment.start + Int64($0.upperBound))
        }
        if Int64(scan.validEnd) < segment.size {
            report.truncatedBytes += segment.size - Int64(scan.validEnd)
            try file.truncate(to: Int64(scan.validEnd))
            segment.size = Int64(scan.validEnd)
        }
        return scan.endsWithEmptyRecord
    }
}
