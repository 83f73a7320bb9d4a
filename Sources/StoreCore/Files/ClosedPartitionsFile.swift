import ProtocolCore

/// The partitions an operator closed (`metaq-server close-partitions`), kept in
/// `<dataPath>/closed-partitions` so a close survives a restart — unlike the original, whose
/// close lived in memory only (reference §8.5, §11.10; docs/COMPATIBILITY.md).
///
/// Text, one `<topic> <partition>` per line in sorted order, then `end <count> <CRC32>` where the
/// CRC covers every byte before that line. Replaced atomically (`Storage.replaceAtomically`), so
/// a crash leaves the old set or the new one. A file that does not decode (edited by hand, or
/// from elsewhere) makes the start fail with `ClosedPartitionsFileError`: guessing could serve
/// partitions an operator closed on purpose.
public enum ClosedPartitionsFile {
    public static let fileName = "closed-partitions"
    /// The most partitions the file may hold (bounds what a hostile file makes the broker load).
    public static let maxEntries = 65_536

    public static func path(dataPath: String) -> String { StoragePath.join(dataPath, fileName) }

    public static func encode(_ partitions: Set<TopicPartition>) -> [UInt8] {
        var bytes: [UInt8] = []
        for partition in partitions.sorted() { bytes += Array("\(partition.topic) \(partition.partition)\n".utf8) }
        return bytes + Array("end \(partitions.count) \(CRC32.checksum(bytes))\n".utf8)
    }

    /// The set in `bytes`, or nil when they are not a whole, intact file.
    public static func decode(_ bytes: [UInt8]) -> Set<TopicPartition>? {
        guard bytes.last == 0x0A else { return nil }
        let lines = bytes.dropLast().split(separator: 0x0A, omittingEmptySubsequences: false)
        guard let trailer = lines.last else { return nil }
        let trailerFields = trailer.split(separator: 0x20).map { String(decoding: $0, as: UTF8.self) }
        let bodyCount = bytes.count - trailer.count - 1
        guard trailerFields.count == 3, trailerFields[0] == "end", let count = Int(trailerFields[1]),
              count == lines.count - 1, count <= maxEntries,
              let crc = UInt32(trailerFields[2]), crc == CRC32.checksum(Array(bytes[..<bodyCount])) else { return nil }
        var partitions = Set<TopicPartition>()
        for line in lines.dropLast() {
            let fields = line.split(separator: 0x20, omittingEmptySubsequences: false)
            guard fields.count == 2, let partition = Int32(String(decoding: fields[1], as: UTF8.self)), partition >= 0 else { return nil }
            let topic = String(decoding: fields[0], as: UTF8.self)
            guard MetaName.isValid(topic) else { return nil }
            partitions.insert(TopicPartition(topic, partition))
        }
        return partitions
    }

    /// The closed partitions under `dataPath`: none when the file is missing.
    public static func load(storage: any Storage, dataPath: String) throws(ClosedPartitionsFileError) -> Set<TopicPartition> {
        let path = path(dataPath: dataPath)
        guard storage.fileExists(path) else { return [] }
        let bytes: [UInt8]
        do {
            let file = try storage.open(path, create: false)
            defer { try? file.close() }
            let size = try file.size()
            guard size <= Int64(maxEntries) * 140 + 64 else {
                throw ClosedPartitionsFileError(path: path, detail: "\(size) bytes is more than any valid file")
            }
            bytes = try file.read(at: 0, count: Int(size))
        } catch let error as ClosedPartitionsFileError {
            throw error
        } catch {
            throw ClosedPartitionsFileError(path: path, detail: "\(error)")
        }
        guard let partitions = decode(bytes) else {
            throw ClosedPartitionsFileError(path: path, detail: "it is not an intact closed-partitions file")
        }
        return partitions
    }

    /// Replaces the file with `partitions` atomically and durably (removes it when empty, also durably).
    public static func save(_ partitions: Set<TopicPartition>, storage: any Storage, dataPath: String) throws(StorageError) {
        let path = path(dataPath: dataPath)
        do {
            if partitions.isEmpty {
                guard storage.fileExists(path) else { return }
                try storage.remove(path)
                try storage.syncDirectory(dataPath)
            } else {
                try storage.makeDirectory(dataPath)
                try storage.replaceAtomically(path, with: encode(partitions))
            }
        } catch let error as StorageError {
            throw error
        } catch {
            throw .io(path: path, detail: "\(error)")
        }
    }
}

/// The closed-partitions file exists but cannot be used; the broker refuses to start.
public struct ClosedPartitionsFileError: Error, Equatable, Sendable, CustomStringConvertible {
    public let path: String
    public let detail: String

    public var description: String {
        "cannot read the closed partitions in \(path): \(detail); fix the file, or remove it to open every partition"
    }
}
