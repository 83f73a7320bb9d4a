// Zip archiving of expired segments for MetaQ's `archive,<age>,true` retention policy: one `.zip`
// holding one deflated entry named like the segment. Written from the facts of PKWARE's APPNOTE.TXT
// (local file header §4.3.7, central directory header §4.3.12, end of central directory §4.3.16).
import CZlib
import Glibc
import StoreCore

/// Why `ZipArchiver.archive` refused or failed (I/O failures are `StorageError`s instead).
public enum ZipArchiveError: Error, Equatable, CustomStringConvertible {
    /// The source or its compressed form needs the zip64 extensions, which this writer omits.
    case tooLarge(path: String, size: Int64)
    /// The entry name is empty, longer than 65535 UTF-8 bytes, or contains a NUL.
    case invalidEntryName(String)
    /// zlib reported an error.
    case compression(path: String, detail: String)

    public var description: String {
        switch self {
        case .tooLarge(let path, let size):
            return "cannot zip \(path): \(size) bytes needs zip64 (limit \(ZipArchiver.maximumSize) bytes)"
        case .invalidEntryName(let name): return "invalid zip entry name: \(name.debugDescription)"
        case .compression(let path, let detail): return "zlib failed on \(path): \(detail)"
        }
    }
}

/// Writes single-entry zip archives.
public enum ZipArchiver {
    /// The largest size a plain (non-zip64) zip can record; 0xFFFFFFFF itself means "see zip64".
    public static let maximumSize: Int64 = 0xFFFF_FFFE
    /// Bytes read from the source and handed to deflate at a time.
    static let chunkSize = 1 << 20

    /// Compresses the file at `source` into a new zip archive at `destination` holding one
    /// deflated entry called `entryName` (e.g. `00000000000000000000.meta`).
    ///
    /// The archive is written to `destination + ".tmp"`, synced, renamed over `destination`, and
    /// the directory is synced, so `destination` is either absent, the old file, or complete.
    /// The source is left in place (the caller removes it once the archive is durable).
    ///
    /// The entry's DOS date and time are the source's modification time in the local time zone,
    /// as Info-ZIP's `zip` records them (clamped to 1980-01-01 … 2107-12-31).
    ///
    /// - Throws: `StorageError` for I/O failures; `ZipArchiveError` when the source is larger
    ///   than `maximumSize` (zip64 is not written), the name is unusable, or zlib fails.
    public static func archive(source: String, destination: String, entryName: String) throws {
        let name = Array(entryName.utf8)
        guard !name.isEmpty, name.count <= Int(UInt16.max), !name.contains(0) else {
            throw ZipArchiveError.invalidEntryName(entryName)
        }
        let storage = FileStorage()
        let input = try storage.openFile(source, create: false)
        defer { try? input.close() }
        let sourceSize = try input.size()
        guard sourceSize <= maximumSize else {
            throw ZipArchiveError.tooLarge(path: source, size: sourceSize)
        }
        var entry = ZipEntry(name: name, modificationTimeMs: try storage.modificationTimeMs(source))

        let temporary = destination + ".tmp"
        let output = try storage.openFile(temporary, create: true)
        do {
            // A stale .tmp from a crash may be longer than what we write now.
            try output.truncate(to: 0)
            // The header is written first with zero sizes and patched once they are known, so
            // no data descriptor (flag bit 3) is needed and every reader can stream the entry.
            try output.write(entry.localHeader(), at: 0)
            let dataStart = Int64(entry.localHeaderSize)
            let totals = try deflate(from: input, to: output, at: dataStart, path: source)
            entry.crc = totals.crc
            entry.uncompressedSize = totals.consumed
            entry.compressedSize = totals.produced
            let directoryOffset = dataStart + totals.produced
            guard totals.consumed <= maximumSize, directoryOffset <= maximumSize else {
                throw ZipArchiveError.tooLarge(path: source, size: max(totals.consumed, directoryOffset))
            }
            try output.write(entry.localHeader(), at: 0)
            try output.write(entry.centralDirectory(directoryOffset: directoryOffset), at: directoryOffset)
            try output.sync()
            try output.close()
            try storage.rename(temporary, to: destination)
        } catch {
            try? output.close()
            try? storage.remove(temporary)
            throw error
        }
        try storage.syncDirectory(StoragePath.parent(of: destination))
    }

    /// What `deflate` saw: the CRC32 of the input and the byte counts on both sides.
    struct Totals {
        var crc: UInt32
        var consumed: Int64
        var produced: Int64
    }

    /// Streams `input` through raw deflate into `output` from offset `start`.
    static func deflate(from input: RealFile, to output: RealFile, at start: Int64, path: String) throws -> Totals {
        // zlib keeps a pointer back to the z_stream in its state and rejects a moved stream, so the
        // stream lives at a fixed heap address rather than in a Swift variable.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deinitialize(count: 1); stream.deallocate() }
        // windowBits -15: raw deflate, no zlib header or trailer (zip stores its own CRC).
        let status = deflateInit2_(
            stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY,
            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw zlibError(status, stream, path: path, call: "deflateInit2_") }
        defer { deflateEnd(stream) }

        let inBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { inBuffer.deallocate() }
        let outBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { outBuffer.deallocate() }

        var totals = Totals(crc: UInt32(crc32(0, nil, 0)), consumed: 0, produced: 0)
        var finished = false
        while !finished {
            let count = try input.read(into: inBuffer, at: totals.consumed)
            let bytes = inBuffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
            totals.crc = UInt32(crc32(uLong(totals.crc), bytes, uInt(count)))
            totals.consumed += Int64(count)
            // A short read means EOF: that chunk is the last one.
            finished = count < chunkSize
            stream.pointee.next_in = bytes
            stream.pointee.avail_in = uInt(count)
            let flush = finished ? Z_FINISH : Z_NO_FLUSH
            // Drain deflate until it leaves output space unused: then it has taken all the input
            // (and, with Z_FINISH, ended the stream). This is zlib's documented usage pattern.
            var result: Int32
            repeat {
                stream.pointee.next_out = outBuffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(outBuffer.count)
                result = CZlib.deflate(stream, flush)
                // Z_BUF_ERROR only means "no progress possible", which is not fatal here.
                guard result == Z_OK || result == Z_STREAM_END || result == Z_BUF_ERROR else {
                    throw zlibError(result, stream, path: path, call: "deflate")
                }
                let produced = outBuffer.count - Int(stream.pointee.avail_out)
                try output.write(UnsafeRawBufferPointer(rebasing: outBuffer[..<produced]),
                                 at: start + totals.produced)
                totals.produced += Int64(produced)
            } while stream.pointee.avail_out == 0
            guard !finished || result == Z_STREAM_END else {
                throw zlibError(result, stream, path: path, call: "deflate(Z_FINISH)")
            }
        }
        return totals
    }

    private static func zlibError(
        _ code: Int32, _ stream: UnsafeMutablePointer<z_stream>, path: String, call: String
    ) -> ZipArchiveError {
        let message = stream.pointee.msg.map { String(cString: $0) } ?? "code \(code)"
        return .compression(path: path, detail: "\(call): \(message)")
    }
}

/// One entry's zip metadata, and the header records that carry it (all fields little-endian).
struct ZipEntry {
    /// Version 2.0: the minimum for deflate.
    static let versionNeeded: UInt16 = 20
    /// Host system 3 (UNIX) in the high byte, so the external attributes hold a UNIX mode;
    /// spec version 2.0 in the low byte.
    static let versionMadeBy: UInt16 = 3 << 8 | 20
    static let deflated: UInt16 = 8
    /// A regular file with mode 0644, in the high 16 bits as UNIX hosts store it.
    static let externalAttributes: UInt32 = 0o100644 << 16

    let name: [UInt8]
    let dosTime: UInt16
    let dosDate: UInt16
    var crc: UInt32 = 0
    var compressedSize: Int64 = 0
    var uncompressedSize: Int64 = 0

    init(name: [UInt8], modificationTimeMs: Int64) {
        self.name = name
        (dosTime, dosDate) = Self.dosDateTime(epochMs: modificationTimeMs)
    }

    var localHeaderSize: Int { 30 + name.count }

    /// Bit 11: the name is UTF-8 (only set when it is not plain ASCII, like Info-ZIP does).
    var flags: UInt16 { name.allSatisfy { $0 < 0x80 } ? 0 : 1 << 11 }

    /// Local file header (APPNOTE 4.3.7), no extra field.
    func localHeader() -> [UInt8] {
        var bytes = LittleEndianBytes()
        bytes.append32(0x0403_4B50)
        bytes.append16(Self.versionNeeded)
        appendCommonFields(to: &bytes)
        bytes.append16(0)  // extra field length
        bytes.append(name)
        return bytes.bytes
    }

    /// Central directory header (APPNOTE 4.3.12) followed by the end of central directory record
    /// (4.3.16); the local header sits at offset 0.
    func centralDirectory(directoryOffset: Int64) -> [UInt8] {
        var bytes = LittleEndianBytes()
        bytes.append32(0x0201_4B50)
        bytes.append16(Self.versionMadeBy)
        bytes.append16(Self.versionNeeded)
        appendCommonFields(to: &bytes)
        bytes.append16(0)  // extra field length
        bytes.append16(0)  // file comment length
        bytes.append16(0)  // disk number start
        bytes.append16(0)  // internal attributes (bit 0 would claim text)
        bytes.append32(Self.externalAttributes)
        bytes.append32(0)  // offset of the local header
        bytes.append(name)
        let directorySize = UInt32(bytes.bytes.count)

        bytes.append32(0x0605_4B50)
        bytes.append16(0)  // this disk
        bytes.append16(0)  // disk with the central directory
        bytes.append16(1)  // entries on this disk
        bytes.append16(1)  // entries in total
        bytes.append32(directorySize)
        bytes.append32(UInt32(directoryOffset))
        bytes.append16(0)  // archive comment length
        return bytes.bytes
    }

    /// Flags through file name length: identical in the local and the central header.
    private func appendCommonFields(to bytes: inout LittleEndianBytes) {
        bytes.append16(flags)
        bytes.append16(Self.deflated)
        bytes.append16(dosTime)
        bytes.append16(dosDate)
        bytes.append32(crc)
        bytes.append32(UInt32(compressedSize))
        bytes.append32(UInt32(uncompressedSize))
        bytes.append16(UInt16(name.count))
    }

    /// MS-DOS time (hour<<11 | minute<<5 | second/2) and date ((year-1980)<<9 | month<<5 | day)
    /// of a Unix time, in the local time zone.
    static func dosDateTime(epochMs: Int64) -> (time: UInt16, date: UInt16) {
        let earliest: (time: UInt16, date: UInt16) = (0, 1 << 5 | 1)  // 1980-01-01 00:00:00
        var seconds = time_t(epochMs / 1000)
        var parts = tm()
        guard localtime_r(&seconds, &parts) != nil else { return earliest }
        let year = Int(parts.tm_year) + 1900
        if year < 1980 { return earliest }
        if year > 2107 { return (23 << 11 | 59 << 5 | 29, 127 << 9 | 12 << 5 | 31) }
        let time = Int(parts.tm_hour) << 11 | Int(parts.tm_min) << 5 | min(Int(parts.tm_sec) / 2, 29)
        let date = (year - 1980) << 9 | Int(parts.tm_mon + 1) << 5 | Int(parts.tm_mday)
        return (UInt16(time), UInt16(date))
    }
}

/// A byte buffer for little-endian header fields.
struct LittleEndianBytes {
    var bytes: [UInt8] = []

    mutating func append16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
    }

    mutating func append32(_ value: UInt32) {
        append16(UInt16(truncatingIfNeeded: value))
        append16(UInt16(truncatingIfNeeded: value >> 16))
    }

    mutating func append(_ other: [UInt8]) { bytes.append(contentsOf: other) }
}
