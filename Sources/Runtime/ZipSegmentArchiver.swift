import StoreCore

/// The runtime's archiver for `archive,<age>[,<compress>]` retention (reference §2.7): renames to
/// `<segment>.arc`, or writes `<segment>.zip` (one deflated entry named like the segment, as
/// MetaQ does) and then removes the original.
public struct ZipSegmentArchiver: SegmentArchiver {
    public init() {}

    public func archive(segmentPath path: String, compress: Bool, storage: any Storage) throws {
        guard compress else {
            try storage.rename(path, to: path + ".arc")
            return
        }
        // ZipArchiver writes a temporary file, syncs it and renames it into place, so a crash
        // leaves either the complete zip or none; the original goes only after that.
        try ZipArchiver.archive(source: path, destination: path + ".zip",
                                entryName: StoragePath.lastComponent(of: path))
        try storage.remove(path)
    }
}
