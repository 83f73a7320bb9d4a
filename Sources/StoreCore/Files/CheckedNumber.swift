import ProtocolCore

/// A small file holding one number with its checksum, for the store's bookkeeping files
/// (`synced-through`, `msgid-reservation`): 32 bytes, `<20-digit value> <10-digit CRC32 of the
/// digits>\n`. A torn or foreign file decodes to nil instead of a wrong number.
enum CheckedNumber {
    static let size = 32

    static func encode(_ value: Int64) -> [UInt8] {
        precondition(value >= 0, "checked numbers are non-negative")
        let digits = Array(SegmentName.name(forStart: value).utf8.prefix(20))
        let crc = String(CRC32.checksum(digits))
        return digits + [0x20] + Array((String(repeating: "0", count: 10 - crc.count) + crc).utf8) + [0x0A]
    }

    static func decode(_ bytes: [UInt8]) -> Int64? {
        guard bytes.count >= size, bytes[20] == 0x20, bytes[31] == 0x0A else { return nil }
        let digits = Array(bytes[0..<20])
        guard let value = Int64(String(decoding: digits, as: UTF8.self)),
              let crc = UInt32(String(decoding: bytes[21..<31], as: UTF8.self)),
              crc == CRC32.checksum(digits) else { return nil }
        return value
    }

    /// The number in `path`, or nil when the file is missing, torn or not ours.
    static func load(storage: any Storage, path: String) -> Int64? {
        guard storage.fileExists(path), let file = try? storage.open(path, create: false) else { return nil }
        defer { try? file.close() }
        return (try? file.read(at: 0, count: size)).flatMap(decode)
    }

    /// Replaces `<directory>/<name>` with `value`, atomically and durably (temporary file, sync,
    /// rename, directory sync): a torn write never loses the old number.
    static func save(_ value: Int64, storage: any Storage, directory: String, name: String) throws(StorageError) {
        let path = StoragePath.join(directory, name)
        do {
            try storage.makeDirectory(directory)
            try storage.replaceAtomically(path, with: encode(value))
        } catch let error as StorageError {
            throw error
        } catch {
            throw .io(path: path, detail: "\(error)")
        }
    }
}
