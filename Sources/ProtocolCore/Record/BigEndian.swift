// Big-endian integer access for record headers (MetaQ writes Java ByteBuffer order, reference §1.5).

extension UnsafeRawBufferPointer {
    @inline(__always)
    func int32BE(at index: Int) -> Int32 {
        Int32(bigEndian: loadUnaligned(fromByteOffset: index, as: Int32.self))
    }

    @inline(__always)
    func int64BE(at index: Int) -> Int64 {
        Int64(bigEndian: loadUnaligned(fromByteOffset: index, as: Int64.self))
    }
}

extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendBigEndian(_ value: Int32) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func appendBigEndian(_ value: Int64) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }
}
