import ProtocolCore

/// One segment file `<20-digit start offset>.meta` (reference §2.2): records only, no header.
final class Segment {
    let start: Int64
    let path: String
    var file: any StorageFile
    /// Bytes written, synced or not.
    @exclusivity(unchecked) var size: Int64

    init(start: Int64, path: String, file: any StorageFile, size: Int64) {
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
