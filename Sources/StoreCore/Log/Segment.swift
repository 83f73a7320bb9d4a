import ProtocolCore

/// One segment file `<20-digit start offset>.meta` (reference §2.2): records only, no header.
///
/// Only the active (last) segment of a log keeps its file open: a log of thousands of sealed
/// segments would otherwise hold as many descriptors. A sealed segment is opened for the one call
/// that needs it (`PartitionLog.withFile`).
final class Segment {
    let start: Int64
    let path: String
    /// The open file while the segment is active, or sealed but still in a running sync's batch;
    /// nil once sealed and closed.
    var file: (any StorageFile)?
    /// Bytes written, synced or not.
    @exclusivity(unchecked) var size: Int64

    init(start: Int64, path: String, file: (any StorageFile)?, size: Int64) {
        self.start = start
        self.path = path
        self.file = file
        self.size = size
    }

    var end: Int64 { start + size }
}

/// MetaQ's segment naming: the start offset as 20 zero-padded decimal digits plus `.meta`.
public enum SegmentName {
    public static let suffix = ".meta"

    public static func name(forStart start: Int64) -> String {
        let digits = String(start)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    /// The start offset a segment file name stands for, or nil for other files
    /// (archived `.meta.arc`/`.meta.zip`, temporaries).
    public static func start(of name: String) -> Int64? {
        guard name.hasSuffix(suffix) else { return nil }
        let digits = name.dropLast(suffix.count)
        guard !digits.isEmpty, digits.count <= 20, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int64(digits)
    }
}
