import ProtocolCore

// What the client-side stores (the recover store, the ordered producer's spool) share: the frame
// of their records and the synced append.

/// The frame around each record of the client-side stores (the recover store, the ordered
/// producer's spool): `UInt32 length | UInt32 CRC32(body) | body`, big-endian, `length`
/// counting the body. A torn or damaged record fails its length bound or its checksum.
enum ChecksummedFrame {
    /// `length` and `CRC32` before each body.
    static let size = 8

    static func wrap(_ body: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size + body.count)
        bytes.appendUInt32(UInt32(body.count))
        bytes.appendUInt32(CRC32.checksum(body))
        bytes.append(contentsOf: body)
        return bytes
    }
}

extension StorageFile {
    /// Appends `record` at `end` and syncs it, for the client-side stores' append-only files:
    /// `end` moves past it on success. A failed write or sync leaves the file's state unknown, so
    /// it sets `failed`, and a store with `failed` set accepts nothing more (DESIGN.md §4).
    func appendSynced(_ record: [UInt8], end: inout Int64, failed: inout Bool) throws {
        guard !failed else { throw StorageError.io(path: path, detail: "an earlier write failed") }
        do {
            try write(record, at: end)
            try sync()
        } catch {
            failed = true
            throw error
        }
        end += Int64(record.count)
    }
}
