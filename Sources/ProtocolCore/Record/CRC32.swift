/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum MetaQ puts in every record
/// header and on the `put` line (reference §1.4.1, §1.5) — always masked with `0x7FFFFFFF` there.
///
/// Slicing-by-8: eight 256-entry tables let the loop consume 8 bytes per step. Measured against
/// zlib's `crc32` in `Benchmarks/MicroBench` (figures in docs/PERFORMANCE.md).
public enum CRC32 {
    /// The CRC-32 of `bytes`, continuing from `crc` (pass the previous result to checksum in pieces).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var c = ~crc
        guard var p = bytes.baseAddress, bytes.count > 0 else { return crc }
        var n = bytes.count
        tables.withUnsafeBufferPointer { t in
            while n >= 8 {
                let lo = UInt32(littleEndianBytesAt: p) ^ c
                let hi = UInt32(littleEndianBytesAt: p + 4)
                c = t[7 &* 256 &+ Int(lo & 0xFF)] ^ t[6 &* 256 &+ Int((lo >> 8) & 0xFF)]
                  ^ t[5 &* 256 &+ Int((lo >> 16) & 0xFF)] ^ t[4 &* 256 &+ Int(lo >> 24)]
                  ^ t[3 &* 256 &+ Int(hi & 0xFF)] ^ t[2 &* 256 &+ Int((hi >> 8) & 0xFF)]
                  ^ t[1 &* 256 &+ Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                p += 8
                n -= 8
            }
            while n > 0 {
                c = t[Int((c ^ UInt32(p.load(as: UInt8.self))) & 0xFF)] ^ (c >> 8)
                p += 1
                n -= 1
            }
        }
        return ~c
    }

    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        if let result = bytes.withContiguousStorageIfAvailable({ checksum(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(bytes).withUnsafeBytes { checksum($0) }
    }

    /// MetaQ's form: `CRC32(bytes) & 0x7FFFFFFF`, as a non-negative Int32.
    public static func metaqChecksum(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        Int32(bitPattern: checksum(bytes) & 0x7FFF_FFFF)
    }

    public static func metaqChecksum(_ bytes: some Sequence<UInt8>) -> Int32 {
        Int32(bitPattern: checksum(bytes) & 0x7FFF_FFFF)
    }

    /// Table k maps a byte to its CRC contribution when followed by k zero bytes.
    static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (0xEDB8_8320 ^ (c >> 1)) : (c >> 1) }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let prev = t[(k - 1) * 256 + i]
                t[k * 256 + i] = t[Int(prev & 0xFF)] ^ (prev >> 8)
            }
        }
        return t
    }()
}

extension UInt32 {
    @inline(__always)
    init(littleEndianBytesAt p: UnsafeRawPointer) {
        self = UInt32(littleEndian: p.loadUnaligned(as: UInt32.self))
    }
}
