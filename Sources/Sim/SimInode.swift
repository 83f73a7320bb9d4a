// The bytes of one simulated file, split into what reads see and what a power loss would leave.

/// A simulated file's contents.
///
/// `current` is what reads see (the page cache). The durable image (what survives power loss) is
/// not kept as a second copy: it is `current` except for the sectors changed since the last sync,
/// whose durable bytes are saved in `savedSectors` just before the first change. This keeps
/// appends and syncs O(bytes written) instead of copying the whole file on every sync.
///
/// Invariant: every durable byte at index `i < durableLength` is `savedSectors[i / 512]` when that
/// sector is saved, and otherwise `current[i]` (so `current` still holds it).
final class SimInode {
    static let sectorSize = 512

    /// Creation order; gives a deterministic order for every decision made over many inodes.
    let id: Int
    var current: [UInt8] = []
    private(set) var durableLength = 0
    /// Durable bytes of each sector changed since the last sync, clipped to `durableLength`.
    private(set) var savedSectors: [Int: [UInt8]] = [:]
    var modificationTimeMs: Int64

    init(id: Int, modificationTimeMs: Int64) {
        self.id = id
        self.modificationTimeMs = modificationTimeMs
    }

    /// Whether a power loss could change this file.
    var hasUnsyncedChanges: Bool { durableLength != current.count || !savedSectors.isEmpty }

    /// The durable image, materialized (for inspection and tests).
    var durable: [UInt8] {
        var image = Array(current.prefix(durableLength))
        if image.count < durableLength {
            image.append(contentsOf: repeatElement(0, count: durableLength - image.count))
        }
        for (sector, bytes) in savedSectors {
            let start = sector * Self.sectorSize
            image.replaceSubrange(start..<start + bytes.count, with: bytes)
        }
        return image
    }

    /// pwrite semantics: a gap between the end of file and `offset` reads as zeros.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        guard bytes.count > 0 else { return }
        let end = offset + bytes.count
        preserveDurable(min(offset, current.count)..<end)
        if end > current.count {
            current.append(contentsOf: repeatElement(0, count: end - current.count))
        }
        current.withUnsafeMutableBytes { destination in
            UnsafeMutableRawBufferPointer(rebasing: destination[offset..<end]).copyMemory(from: bytes)
        }
    }

    func truncate(to size: Int) {
        if size < current.count {
            preserveDurable(size..<current.count)
            current.removeLast(current.count - size)
        } else if size > current.count {
            preserveDurable(current.count..<size)
            current.append(contentsOf: repeatElement(0, count: size - current.count))
        }
    }

    /// fdatasync: everything read sees becomes durable.
    func sync() {
        durableLength = current.count
        savedSectors = [:]
    }

    /// Replaces the file's whole state after a power loss: what is there now is all there is.
    func settle(to bytes: [UInt8]) {
        current = bytes
        sync()
    }

    /// The durable bytes in `range`, zeros beyond the durable length.
    func durableBytes(in range: Range<Int>) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: range.count)
        let end = min(range.upperBound, durableLength)
        var index = range.lowerBound
        while index < end {
            let sector = index / Self.sectorSize
            let sectorEnd = min((sector + 1) * Self.sectorSize, end)
            if let saved = savedSectors[sector] {
                let base = sector * Self.sectorSize
                out.replaceSubrange(index - range.lowerBound..<sectorEnd - range.lowerBound,
                                    with: saved[index - base..<sectorEnd - base])
            } else {
                out.replaceSubrange(index - range.lowerBound..<sectorEnd - range.lowerBound,
                                    with: current[index..<sectorEnd])
            }
            index = sectorEnd
        }
        return out
    }

    /// The current bytes in `range`, zeros beyond the current length.
    func currentBytes(in range: Range<Int>) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: range.count)
        let end = min(range.upperBound, current.count)
        if range.lowerBound < end {
            out.replaceSubrange(0..<end - range.lowerBound, with: current[range.lowerBound..<end])
        }
        return out
    }

    /// Overwrites durable and current bytes of `range` (one sector, inside the durable length)
    /// alike: bit rot on the medium, which the page cache also reads back.
    func rot(_ range: Range<Int>, with bytes: [UInt8]) {
        let sector = range.lowerBound / Self.sectorSize
        if savedSectors[sector] != nil { savedSectors[sector] = bytes }
        let end = min(range.upperBound, current.count)
        if range.lowerBound < end {
            current.replaceSubrange(range.lowerBound..<end, with: bytes[0..<end - range.lowerBound])
        }
    }

    /// Saves the durable bytes of every sector overlapping `range` before `current` changes there.
    private func preserveDurable(_ range: Range<Int>) {
        let end = min(range.upperBound, durableLength)
        guard range.lowerBound < end else { return }
        for sector in range.lowerBound / Self.sectorSize...(end - 1) / Self.sectorSize
        where savedSectors[sector] == nil {
            let start = sector * Self.sectorSize
            let sectorEnd = min(start + Self.sectorSize, durableLength)
            precondition(sectorEnd <= current.count, "SimInode lost durable bytes it had not saved")
            savedSectors[sector] = Array(current[start..<sectorEnd])
        }
    }
}
