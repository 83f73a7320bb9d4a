import ProtocolCore

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
