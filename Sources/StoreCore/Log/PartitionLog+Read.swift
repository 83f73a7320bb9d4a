import ProtocolCore

/// Reads: slices of one segment, never past the synced end, never inside damage (§1.4.2, §2.3).
extension PartitionLog {
    /// Where a read of up to `maxBytes` at `offset` comes from. Slices are raw bytes: MetaQ does
    /// not align them to records, so the last record may be cut (§1.4.2).
    public func read(offset: Int64, maxBytes: Int) -> LogRead {
        if offset < minOffset { return .belowMinimum(minOffset: minOffset) }
        if offset >= syncedEnd { return .atOrBeyondEnd(maxOffset: syncedEnd) }
        var end = syncedEnd
        if let damage = firstDamage(endingAfter: offset) {
            if damage.contains(offset) { return .damaged(resumeAt: damage.upperBound) }
            end = min(end, damage.lowerBound)
        }
        let segment = segments[segmentIndex(containing: offset)]
        end = min(end, segment.end, offset + Int64(max(0, maxBytes)))
        // Consumers see only synced bytes (§2.4): a slice never reaches past the synced end.
        precondition(end <= syncedEnd && syncedEnd <= writtenOffset, "read beyond the synced range of \(directory)")
        return .slice(LogSlice(offset: offset, segmentPath: segment.path,
                               filePosition: offset - segment.start, count: Int(end - offset)))
    }

    /// The bytes of a slice (the runtime sends them with sendfile instead). A sealed segment is
    /// opened for this read only.
    public func bytes(of slice: LogSlice) throws(LogError) -> [UInt8] {
        let segment = segments[segmentIndex(containing: slice.offset)]
        guard segment.path == slice.segmentPath else { throw .storage(.notFound(path: slice.segmentPath)) }
        do {
            return try withFile(segment) { try $0.read(at: slice.filePosition, count: slice.count) }
        } catch {
            throw .storage(Self.storageError(error, path: segment.path))
        }
    }

    /// Reads up to `maxBytes` at `offset` in one call: the slice's bytes, or nil when there is no slice.
    public func readBytes(offset: Int64, maxBytes: Int) throws(LogError) -> [UInt8]? {
        guard case .slice(let slice) = read(offset: offset, maxBytes: maxBytes) else { return nil }
        return try bytes(of: slice)
    }

    /// MetaQ's "nearest valid offset" (§1.4.3): the start of the segment holding `offset`; the
    /// readable end when `offset` is at or past it; the first segment start when below it.
    public func nearestOffset(_ offset: Int64) -> Int64 {
        if offset >= syncedEnd { return syncedEnd }
        if offset <= minOffset { return minOffset }
        return segments[segmentIndex(containing: offset)].start
    }

    /// Index of the last segment starting at or before `offset` (binary search, §2.3).
    func segmentIndex(containing offset: Int64) -> Int {
        var low = 0
        var high = segments.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if segments[mid].start <= offset { low = mid } else { high = mid - 1 }
        }
        return low
    }

    private func firstDamage(endingAfter offset: Int64) -> Range<Int64>? {
        damagedRanges.first { $0.upperBound > offset }
    }
}
