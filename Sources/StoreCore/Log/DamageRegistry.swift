import ProtocolCore

/// The damaged ranges of a partition, kept durable in `<partition>/damaged-ranges` so that damage
/// found once stays isolated after the segment holding it stops being the last one (recovery
/// scans only the last segment, as MetaQ does). MetaQ's loader ignores files that are not
/// `*.meta`, so the file does not disturb the original broker.
///
/// Format: one range per line, `<start> <end>` in decimal absolute offsets, end exclusive.
enum DamageRegistry {
    static let fileName = "damaged-ranges"

    static func load(storage: any Storage, directory: String) throws -> [Range<Int64>] {
        let path = StoragePath.join(directory, fileName)
        guard storage.fileExists(path) else { return [] }
        let file = try storage.open(path, create: false)
        defer { try? file.close() }
        let bytes = try file.read(at: 0, count: Int(try file.size()))
        var ranges: [Range<Int64>] = []
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ")
            // A line that does not parse is ignored: this file can only add caution, never data.
            guard parts.count == 2, let start = Int64(parts[0]), let end = Int64(parts[1]), start < end else { continue }
            ranges.append(start..<end)
        }
        return merge(ranges)
    }

    /// Writes the ranges atomically (temporary file, sync, rename, directory sync); removes the
    /// file when there is nothing to record.
    static func save(_ ranges: [Range<Int64>], storage: any Storage, directory: String) throws {
        let path = StoragePath.join(directory, fileName)
        if ranges.isEmpty {
            if storage.fileExists(path) {
                try storage.remove(path)
                try storage.syncDirectory(directory)
            }
            return
        }
        let text = ranges.map { "\($0.lowerBound) \($0.upperBound)\n" }.joined()
        try storage.replaceAtomically(path, with: Array(text.utf8))
    }

    /// Sorted, with overlapping or touching ranges joined.
    static func merge(_ ranges: [Range<Int64>]) -> [Range<Int64>] {
        var out: [Range<Int64>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, range.lowerBound <= last.upperBound {
                out[out.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                out.append(range)
            }
        }
        return out
    }
}
