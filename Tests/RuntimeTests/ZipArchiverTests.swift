import CZlib
import Foundation
import ProcessHarness
import Runtime
import StoreCore
import Testing

@Suite struct ZipArchiverTests {
    static let unzip = "/usr/bin/unzip"
    static let entryName = "00000000000000000000.meta"

    @Test func archiveOfMixedContentParsesAndInflatesToTheOriginal() throws {
        try withTemporaryDirectory { dir in
            let (source, original) = try writeMixedSource(in: dir)
            let destination = source + ".zip"
            try ZipArchiver.archive(source: source, destination: destination, entryName: Self.entryName)

            let zip = try ParsedZip(bytes: readAll(destination))
            #expect(zip.name == Self.entryName)
            #expect(zip.uncompressedSize == original.count)
            #expect(zip.compressedSize < original.count)
            #expect(zip.crc == crc(of: original))
            #expect(try inflateRaw(zip.data, expectedCount: original.count) == original)
            // The source stays; no temporary file is left behind.
            #expect(FileManager.default.fileExists(atPath: source))
            #expect(Set(try FileStorage().list(dir)) == [Self.entryName, Self.entryName + ".zip"])
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: unzip), "needs /usr/bin/unzip"))
    func unzipAcceptsTheArchive() throws {
        try withTemporaryDirectory { dir in
            let (source, original) = try writeMixedSource(in: dir)
            let destination = StoragePath.join(dir, "archive.zip")
            try ZipArchiver.archive(source: source, destination: destination, entryName: Self.entryName)

            let test = try ChildProcess.run(Self.unzip, ["-t", destination], error: .standardOutput)
            #expect(test.status == 0, "unzip -t said: \(String(decoding: test.output, as: UTF8.self))")
            let report = String(decoding: test.output, as: UTF8.self)
            #expect(report.contains("testing: \(Self.entryName)"))
            #expect(report.contains("No errors detected"))
            let extracted = try ChildProcess.run(Self.unzip, ["-p", destination, Self.entryName])
            #expect(extracted.status == 0)
            #expect(extracted.output == original)
        }
    }

    @Test func emptySourceGivesAValidArchive() throws {
        try withTemporaryDirectory { dir in
            let source = StoragePath.join(dir, "empty.meta")
            try FileStorage().open(source, create: true).close()
            let destination = source + ".zip"
            try ZipArchiver.archive(source: source, destination: destination, entryName: "empty.meta")
            let zip = try ParsedZip(bytes: readAll(destination))
            #expect(zip.uncompressedSize == 0)
            #expect(zip.crc == 0)
            #expect(try inflateRaw(zip.data, expectedCount: 0) == [])
        }
    }

    @Test func dosTimestampIsTheSourceModificationTime() throws {
        try withTemporaryDirectory { dir in
            let source = StoragePath.join(dir, "dated.meta")
            try FileStorage().open(source, create: true).close()
            var components = DateComponents(year: 2024, month: 7, day: 15, hour: 13, minute: 45, second: 36)
            components.timeZone = TimeZone.current
            let date = try #require(Calendar(identifier: .gregorian).date(from: components))
            try FileManager.default.setAttributes([.modificationDate: date], ofItemAtPath: source)

            try ZipArchiver.archive(source: source, destination: source + ".zip", entryName: "dated.meta")
            let zip = try ParsedZip(bytes: readAll(source + ".zip"))
            #expect(zip.dosDate == UInt16((2024 - 1980) << 9 | 7 << 5 | 15))
            #expect(zip.dosTime == UInt16(13 << 11 | 45 << 5 | 36 / 2))
        }
    }

    @Test func replacesAnExistingDestinationAndAStaleTemporary() throws {
        try withTemporaryDirectory { dir in
            let storage = FileStorage()
            let source = StoragePath.join(dir, "s.meta")
            let destination = source + ".zip"
            let file = try storage.open(source, create: true)
            try file.write(Array("small segment".utf8), at: 0)
            try file.close()
            for junk in [destination, destination + ".tmp"] {
                let stale = try storage.open(junk, create: true)
                try stale.write(Array(repeating: 0xEE, count: 100_000), at: 0)
                try stale.close()
            }
            try ZipArchiver.archive(source: source, destination: destination, entryName: "s.meta")
            let zip = try ParsedZip(bytes: readAll(destination))
            #expect(try inflateRaw(zip.data, expectedCount: 13) == Array("small segment".utf8))
            #expect(!storage.fileExists(destination + ".tmp"))
        }
    }

    @Test func missingSourceOrBadNameThrowsAndLeavesNothing() throws {
        try withTemporaryDirectory { dir in
            let missing = StoragePath.join(dir, "missing.meta")
            #expect(throws: StorageError.notFound(path: missing)) {
                try ZipArchiver.archive(source: missing, destination: missing + ".zip", entryName: "m")
            }
            let source = StoragePath.join(dir, "s")
            try FileStorage().open(source, create: true).close()
            for name in ["", "a\u{0}b", String(repeating: "x", count: 70_000)] {
                #expect(throws: ZipArchiveError.invalidEntryName(name)) {
                    try ZipArchiver.archive(source: source, destination: source + ".zip", entryName: name)
                }
            }
            #expect(try FileStorage().list(dir) == ["s"])
        }
    }
}

// MARK: - Helpers

/// Writes ~3 MiB mixing incompressible, repetitive and zero blocks (crossing the 1 MiB chunks).
private func writeMixedSource(in dir: String) throws -> (path: String, bytes: [UInt8]) {
    var random = TestBytes(seed: 7)
    var content: [UInt8] = []
    let text = Array("topic=meta-test partition=3 msgId=1234567890 payload=hello world\n".utf8)
    while content.count < 3 << 20 {
        content += random.bytes(48 * 1024)
        for _ in 0..<1500 { content += text }
        content += [UInt8](repeating: 0, count: 32 * 1024)
    }
    content += random.bytes(777)  // an odd tail, not a multiple of any buffer size
    let path = StoragePath.join(dir, ZipArchiverTests.entryName)
    let file = try FileStorage().open(path, create: true)
    try file.write(content, at: 0)
    try file.close()
    return (path, content)
}

private func readAll(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

private func crc(of bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
}

/// Inflates raw deflate data (windowBits -15) that must expand to exactly `expectedCount` bytes.
private func inflateRaw(_ data: [UInt8], expectedCount: Int) throws -> [UInt8] {
    // Heap-allocated: zlib rejects a z_stream that moved since init.
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    defer { stream.deinitialize(count: 1); stream.deallocate() }
    try #require(inflateInit2_(stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK)
    defer { inflateEnd(stream) }
    var input = data
    // One spare byte: inflate must end the stream without using it.
    var output = [UInt8](repeating: 0, count: expectedCount + 1)
    let result = input.withUnsafeMutableBufferPointer { inBuffer in
        output.withUnsafeMutableBufferPointer { outBuffer in
            stream.pointee.next_in = inBuffer.baseAddress
            stream.pointee.avail_in = uInt(inBuffer.count)
            stream.pointee.next_out = outBuffer.baseAddress
            stream.pointee.avail_out = uInt(outBuffer.count)
            return inflate(stream, Z_FINISH)
        }
    }
    #expect(result == Z_STREAM_END)
    #expect(stream.pointee.avail_in == 0, "bytes after the end of the deflate stream")
    #expect(Int(stream.pointee.total_out) == expectedCount)
    return Array(output.prefix(Int(stream.pointee.total_out)))
}

/// The single entry of a zip file, read from its local header and checked against the central
/// directory and end-of-central-directory record.
private struct ParsedZip {
    var name = ""
    var crc: UInt32 = 0
    var compressedSize = 0
    var uncompressedSize = 0
    var dosTime: UInt16 = 0
    var dosDate: UInt16 = 0
    var data: [UInt8] = []

    init(bytes: [UInt8]) throws {
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }

        try #require(bytes.count >= 30 + 46 + 22)
        #expect(u32(0) == 0x0403_4B50, "local file header signature")
        #expect(u16(4) == 20, "version needed")
        #expect(u16(6) == 0, "flags: ASCII name, no data descriptor")
        #expect(u16(8) == 8, "deflate")
        (dosTime, dosDate) = (UInt16(u16(10)), UInt16(u16(12)))
        crc = UInt32(u32(14))
        compressedSize = u32(18)
        uncompressedSize = u32(22)
        let nameLength = u16(26)
        let dataStart = 30 + nameLength + u16(28)
        name = String(decoding: bytes[30..<30 + nameLength], as: UTF8.self)
        try #require(dataStart + compressedSize <= bytes.count)
        data = Array(bytes[dataStart..<dataStart + compressedSize])

        let end = bytes.count - 22
        #expect(u32(end) == 0x0605_4B50, "end of central directory signature")
        #expect(u16(end + 8) == 1 && u16(end + 10) == 1, "one entry")
        let directory = u32(end + 16)
        #expect(directory == dataStart + compressedSize, "central directory follows the data")
        #expect(u32(end + 12) == end - directory, "central directory size")
        #expect(u32(directory) == 0x0201_4B50, "central directory signature")
        #expect(u32(directory + 16) == Int(crc))
        #expect(u32(directory + 20) == compressedSize && u32(directory + 24) == uncompressedSize)
        #expect(u16(directory + 28) == nameLength)
        #expect(u32(directory + 42) == 0, "local header offset")
        #expect(Array(bytes[directory + 46..<directory + 46 + nameLength]) == Array(name.utf8))
    }
}
