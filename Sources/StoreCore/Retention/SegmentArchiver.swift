/// Moves an expired segment out of the log for `archive` retention (reference §2.7).
public protocol SegmentArchiver {
    /// Archives the (closed, synced) segment file at `path`: as `<path>.arc`, or compressed as
    /// `<path>.zip` with the original removed.
    func archive(segmentPath path: String, compress: Bool, storage: any Storage) throws
}

/// The archiver that only renames (`archive,<age>` and `archive,<age>,false`). Compression needs
/// the runtime's zip archiver; asked to compress, this one refuses rather than silently renaming.
public struct RenamingArchiver: SegmentArchiver {
    public struct CompressionUnavailable: Error, CustomStringConvertible {
        public var description: String { "this archiver cannot compress segments" }
    }

    public init() {}

    public func archive(segmentPath path: String, compress: Bool, storage: any Storage) throws {
        guard !compress else { throw CompressionUnavailable() }
        try storage.rename(path, to: path + ".arc")
    }
}
