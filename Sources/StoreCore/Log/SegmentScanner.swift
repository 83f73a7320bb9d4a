import ProtocolCore

/// What a scan of a segment's bytes found (reference §2.6, and beyond it: DESIGN.md §4).
struct SegmentScan: Equatable {
    /// Where valid data ends: the file is truncated here (everything after is a torn tail).
    var validEnd: Int
    /// Byte ranges (file positions) before `validEnd` that hold no valid record, each followed by
    /// a verified chain of records. They are kept in place, because offsets are byte positions and
    /// cutting them out would move every later record, and they are never served to readers.
    var damaged: [Range<Int>]
    var recordCount: Int
    /// Whether the last record before `validEnd` is empty (see `SyncedMark`).
    var endsWithEmptyRecord = false
}

/// Walks a segment record by record. Where the chain breaks it does not simply truncate, as the
/// original does: it looks further for a position where a verified chain of records resumes
/// ("resync"). Only when none does is the rest a torn tail.
enum SegmentScanner {
    /// - Parameter trustedEnd: bytes below this position are known synced (`SyncedMark`), so
    ///   empty records there are believed without further evidence.
    /// - Parameter knownDamage: ranges an earlier recovery isolated (`DamageRegistry`); the scan
    ///   steps over them instead of judging them again, because the evidence that justified
    ///   keeping what follows them (a record ending the file, say) may be gone now.
    static func scan(_ bytes: UnsafeRawBufferPointer, maxPayloadBytes: Int, trustedEnd: Int = 0,
                     knownDamage: [Range<Int>] = []) -> SegmentScan {
        var result = SegmentScan(validEnd: 0, damaged: [], recordCount: 0)
        var pos = 0
        while pos < bytes.count {
            if let known = knownDamage.first(where: { $0.contains(pos) }), known.upperBound <= bytes.count {
                result.damaged.append(pos..<known.upperBound)
                pos = known.upperBound
                result.validEnd = pos
                continue
            }
            if case .record(let header, _) = Record.parse(bytes, at: pos, maxPayloadBytes: maxPayloadBytes) {
                if header.length > 0 {
                    pos += header.recordSize
                    result.recordCount += 1
                    result.validEnd = pos
                    result.endsWithEmptyRecord = false
                    continue
                }
                if let runEnd = believedEmptyRun(bytes, at: pos, maxPayloadBytes: maxPayloadBytes, trustedEnd: trustedEnd) {
                    result.recordCount += (runEnd - pos) / Record.headerSize
                    pos = runEnd
                    result.validEnd = pos
                    result.endsWithEmptyRecord = true
                    continue
                }
            }
            guard let resumed = resync(bytes, after: pos, maxPayloadBytes: maxPayloadBytes) else { break }
            result.damaged.append(pos..<resumed)
            pos = resumed
        }
        return result
    }

    /// The end of the believable part of the run of empty records starting at `index`.
    ///
    /// MetaQ's checksum covers only the payload, and CRC32 of nothing is 0: a header whose length
    /// and checksum were zeroed by a torn write reads as a valid empty record carrying whatever
    /// msgId and flag bytes survived. So a run of empty records is believed when a verified
    /// non-empty record follows it or it ends exactly at the end of the bytes (empty messages are
    /// legal: the Java client rejects only null data); otherwise only the part of it below the
    /// synced-through mark (`trustedEnd`) is.
    private static func believedEmptyRun(_ bytes: UnsafeRawBufferPointer, at index: Int, maxPayloadBytes: Int,
                                         trustedEnd: Int) -> Int? {
        var end = index
        while case .record(let header, _) = Record.parse(bytes, at: end, maxPayloadBytes: maxPayloadBytes),
              header.length == 0 {
            end += Record.headerSize
        }
        if end == bytes.count { return end }
        if case .record(let header, _) = Record.parse(bytes, at: end, maxPayloadBytes: maxPayloadBytes),
           header.length > 0 {
            return end
        }
        let trusted = index + (max(0, min(end, trustedEnd) - index) / Record.headerSize) * Record.headerSize
        return trusted > index ? trusted : nil
    }

    /// The first position after `damagedAt` where a believable chain of records starts: two
    /// verified records in a row, or one that ends exactly at the end of the bytes. Random bytes
    /// pass a 31-bit checksum with odds of about 2^-31 per record, so two in a row do not happen
    /// by chance. Cheap header checks come first, so garbage is skipped without checksumming.
    private static func resync(_ bytes: UnsafeRawBufferPointer, after damagedAt: Int, maxPayloadBytes: Int) -> Int? {
        var y = damagedAt + 1
        while y + Record.headerSize <= bytes.count {
            if let firstEnd = plausibleEnd(bytes, at: y, maxPayloadBytes: maxPayloadBytes) {
                let endsFile = firstEnd == bytes.count
                let followedByPlausible = !endsFile && plausibleEnd(bytes, at: firstEnd, maxPayloadBytes: maxPayloadBytes) != nil
                if endsFile || followedByPlausible, verified(bytes, at: y, maxPayloadBytes: maxPayloadBytes) {
                    if endsFile || verified(bytes, at: firstEnd, maxPayloadBytes: maxPayloadBytes) { return y }
                }
            }
            y += 1
        }
        return nil
    }

    /// The end of a record whose header at `index` is believable and which fits in the bytes.
    @inline(__always)
    private static func plausibleEnd(_ bytes: UnsafeRawBufferPointer, at index: Int, maxPayloadBytes: Int) -> Int? {
        guard index + Record.headerSize <= bytes.count else { return nil }
        let length = Int(bytes.loadUnaligned(fromByteOffset: index, as: Int32.self).bigEndian)
        guard length >= 0, length <= maxPayloadBytes else { return nil }
        let end = index + Record.headerSize + length
        guard end <= bytes.count else { return nil }
        if length == 0 && bytes.loadUnaligned(fromByteOffset: index + 4, as: UInt64.self) == 0
            && bytes.loadUnaligned(fromByteOffset: index + 12, as: UInt64.self) == 0 {
            return nil
        }
        return end
    }

    /// A verified record with a payload: only those carry checksum evidence worth resyncing on.
    private static func verified(_ bytes: UnsafeRawBufferPointer, at index: Int, maxPayloadBytes: Int) -> Bool {
        if case .record(let header, _) = Record.parse(bytes, at: index, maxPayloadBytes: maxPayloadBytes) {
            return header.length > 0
        }
        return false
    }
}
