import ProtocolCore

/// The spool of one ordered lane (reference §5.6: a topic and one partition): messages an ordered
/// producer could not send yet, kept durably and in order until the broker acknowledged them.
/// One append-only file, `spool.log`, in the lane's directory:
///
/// - header, 8 bytes: magic `MQSP`, then the format version as a big-endian UInt32 (1);
/// - records, each `UInt32 length | UInt32 CRC32(body) | body` (big-endian, as the recover store's),
///   the body starting with a kind byte and an 8-byte sequence:
///   - kind 1, a message: `1 | UInt64 sequence | Int32 flag | payload` (the payload as in a `put`,
///     §1.4.1). Sequences increase by one per message;
///   - kind 2, a removal: `2 | UInt64 through | Int64 headOffset` — every message up to `through` is
///     gone, and no live message starts before `headOffset`.
///
/// Every `append` and `removeHead` is synced before it returns, so what the producer reported as
/// spooled survives power loss and what it removed never returns. Opening replays the records and
/// cuts the file at the first that is not whole and checksummed (the torn tail of an interrupted
/// write). Payloads are not kept in memory: `head` reads them back from the file. Once the removed
/// prefix is larger than the rest (and at least `compactionThresholdBytes`), the live records are
/// copied to a new file that replaces the old atomically, so a crash leaves either file whole.
///
/// A failed write or sync is reported to its caller and rolled back before the store is used
/// again (`heal`): the bytes past the last whole synced record are cut and the cut is synced (or,
/// after a failed compaction, the file is reopened and replayed). Until that succeeds every call
/// throws — reads included — so a failed store is never mistaken for an empty one, and the
/// messages it held before the failure stay readable once it heals (or at the next open).
public final class SpoolStore {
    public static let fileName = "spool.log"
    /// Bytes read at a time when scanning.
    static let chunkBytes = 1 << 20

    public let path: String
    public let compactionThresholdBytes: Int64
    private let storage: any Storage
    private var file: any StorageFile
    /// Where the next record goes: the end of the last whole record.
    private var end: Int64
    /// No live message starts before this offset.
    private var headOffset: Int64
    private var removedThrough: UInt64 = 0
    private var lastSequence: UInt64 = 0
    public private(set) var count = 0
    /// Where the records returned by the last `head` end, to find the next head at removal.
    private var recordEnds: [UInt64: Int64] = [:]
    private var health = Health.healthy

    /// Whether the file is known to hold exactly what the counts say (DESIGN.md §4).
    private enum Health {
        case healthy
        /// A record's write or sync failed: what lies past `end` is unknown. Every record before
        /// `end` was made durable by an earlier successful sync, so cutting the file at `end` and
        /// syncing the cut restores a known state; no data whose sync failed is trusted.
        case tailUnknown
        /// A compaction failed part way: the handle may be closed and `path` may name the old file
        /// or the new one (both whole, with the same live messages); reopening and replaying it
        /// restores a known state.
        case needsReopen
    }

    /// Opens (creating if needed) `directory/spool.log`, dropping a torn tail.
    ///
    /// - Throws: a storage error, or `.io` when the file is not a spool file.
    public init(storage: any Storage, directory: String, compactionThresholdBytes: Int64 = 1 << 20) throws {
        self.storage = storage
        self.compactionThresholdBytes = compactionThresholdBytes
        path = StoragePath.join(directory, Self.fileName)
        try storage.makeDirectory(directory)
        if storage.fileExists(path + ".tmp") { try storage.remove(path + ".tmp") }
        file = try Self.openFile(storage, path)
        end = Int64(SpoolRecord.headerSize)
        headOffset = end
        try replay()
    }

    /// Opens the file, writing the header when it is new or its header never became durable.
    /// The file and its directory entries are synced on every open: an earlier open may have
    /// written them and failed before its syncs (a failed write is retried by opening again).
    private static func openFile(_ storage: any Storage, _ path: String) throws -> any StorageFile {
        let file = try storage.open(path, create: true)
        let header = try file.read(at: 0, count: SpoolRecord.headerSize)
        if header != SpoolRecord.header() {
            guard try file.size() <= Int64(SpoolRecord.headerSize) else {
                try? file.close()
                throw StorageError.io(path: path, detail: "not a spool file (bad header)")
            }
            try file.truncate(to: 0)
            try file.write(SpoolRecord.header(), at: 0)
        }
        try file.sync()
        let directory = StoragePath.parent(of: path)
        try storage.syncDirectory(directory)
        try storage.syncDirectory(StoragePath.parent(of: directory))
        return file
    }

    /// Rebuilds the counts from the records; cuts a torn tail.
    private func replay() throws {
        let size = try file.size()
        var firstSequence: UInt64?
        end = try scan(from: Int64(SpoolRecord.headerSize), to: size) { decoded, _, _ in
            switch decoded {
            case .message(let message):
                // Sequences go up by one; anything else is not a record this store wrote.
                if firstSequence != nil && message.sequence != lastSequence + 1 { return false }
                if firstSequence == nil { firstSequence = message.sequence }
                lastSequence = message.sequence
            case .removal(let through, let head):
                removedThrough = max(removedThrough, through)
                headOffset = max(headOffset, head)
            }
            return true
        }
        if let first = firstSequence {
            let low = max(first, removedThrough + 1)
            count = lastSequence >= low ? Int(lastSequence - low + 1) : 0
        }
        removedThrough = max(removedThrough, lastSequence - UInt64(count))
        headOffset = min(headOffset, end)
        if end < size {
            try file.truncate(to: end)
            try file.sync()
        }
    }

    /// Visits the whole records from `start` on (reading in chunks) while `visit` returns true;
    /// returns the end of the last record visited.
    private func scan(from start: Int64, to limit: Int64,
                      _ visit: (SpoolRecord.Decoded, _ offset: Int64, _ size: Int) throws -> Bool) throws -> Int64 {
        var at = start
        var buffer: [UInt8] = []
        var bufferStart = start
        while at < limit {
            var local = Int(at - bufferStart)
            if buffer.count - local < SpoolRecord.frameSize {
                buffer = try file.read(at: at, count: Int(min(Int64(Self.chunkBytes), limit - at)))
                (bufferStart, local) = (at, 0)
            }
            guard let length = SpoolRecord.bodyLength(buffer, at: local) else { break }
            let size = SpoolRecord.frameSize + length
            if buffer.count - local < size {
                guard limit - at >= Int64(size) else { break }
                buffer = try file.read(at: at, count: max(size, Int(min(Int64(Self.chunkBytes), limit - at))))
                (bufferStart, local) = (at, 0)
            }
            guard let (decoded, _) = SpoolRecord.decode(buffer, at: local), try visit(decoded, at, size) else { break }
            at += Int64(size)
        }
        return at
    }

    /// Bytes of the file (header and records).
    public var fileSizeBytes: Int64 { end }

    /// Stores a message at the tail, synced before it returns; its sequence.
    @discardableResult
    public func append(flag: Int32, payload: [UInt8]) throws -> UInt64 {
        try heal()
        let message = SpooledMessage(sequence: lastSequence + 1, flag: flag, payload: payload)
        try write(SpoolRecord.encode(message))
        lastSequence = message.sequence
        count += 1
        return message.sequence
    }

    /// Up to `max` of the oldest messages, oldest first, read from the file.
    ///
    /// - Throws: a storage error, also when an earlier failure could not be rolled back yet: an
    ///   unreadable spool is never reported empty.
    public func head(max: Int) throws -> [SpooledMessage] {
        try heal()
        guard count > 0, max > 0 else { return [] }
        var found: [SpooledMessage] = []
        var firstLive: Int64?
        recordEnds = [:]
        _ = try scan(from: headOffset, to: end) { decoded, offset, size in
            guard case .message(let message) = decoded, message.sequence > removedThrough else { return true }
            if firstLive == nil { firstLive = offset }
            found.append(message)
            recordEnds[message.sequence] = offset + Int64(size)
            return found.count < max
        }
        // Skip the dead records in front next time (memory only: the file keeps its removals).
        if let firstLive { headOffset = firstLive }
        return found
    }

    /// Removes the messages up to `sequence` (durably, before it returns); compacts the file when
    /// the removed prefix dominates.
    ///
    /// - Returns: how many messages were removed (0 when they already were). A failed compaction
    ///   after the durable removal does not throw (the removal stands); the next call heals it.
    @discardableResult
    public func removeHead(through sequence: UInt64) throws -> Int {
        try heal()
        let through = min(sequence, lastSequence)
        guard through > removedThrough else { return 0 }
        let newHead = try recordEnds[through] ?? endOfMessage(through)
        try write(SpoolRecord.encodeRemoval(through: through, headOffset: newHead))
        let removed = Int(through - removedThrough)
        removedThrough = through
        headOffset = newHead
        count -= removed
        recordEnds = recordEnds.filter { $0.key > through }
        let dead = headOffset - Int64(SpoolRecord.headerSize)
        if dead >= compactionThresholdBytes && dead > end - headOffset { try? compact() }
        return removed
    }

    private func endOfMessage(_ sequence: UInt64) throws -> Int64 {
        var result = headOffset
        _ = try scan(from: headOffset, to: end) { decoded, offset, size in
            guard case .message(let message) = decoded else { return true }
            guard message.sequence <= sequence else { return false }
            result = offset + Int64(size)
            return true
        }
        return result
    }

    public func close() throws {
        try file.close()
    }

    private func write(_ record: [UInt8]) throws {
        do {
            try file.write(record, at: end)
            try file.sync()
        } catch {
            health = .tailUnknown
            throw error
        }
        end += Int64(record.count)
    }

    /// Rolls back what a failed write or compaction left, so the store may be used again; throws
    /// (and stays unhealthy, to be tried again by the next call) when that fails too.
    private func heal() throws {
        switch health {
        case .healthy:
            return
        case .tailUnknown:
            try file.truncate(to: end)
            try file.sync()
        case .needsReopen:
            try reopen()
        }
        recordEnds = [:]
        health = .healthy
    }

    /// Reopens `path` after a failed compaction and replays it; it must hold the messages the
    /// counts say, or the store stays failed.
    private func reopen() throws {
        let saved = (end, headOffset, removedThrough, lastSequence, count)
        do {
            try? file.close()
            if storage.fileExists(path + ".tmp") { try storage.remove(path + ".tmp") }
            file = try storage.open(path, create: false)
            (end, headOffset, removedThrough, lastSequence, count) = (Int64(SpoolRecord.headerSize), Int64(SpoolRecord.headerSize), 0, 0, 0)
            try replay()
            guard count == saved.4 else {
                throw StorageError.io(path: path, detail: "reopened after a failed compaction with \(count) messages, expected \(saved.4)")
            }
        } catch {
            (end, headOffset, removedThrough, lastSequence, count) = saved
            throw error
        }
        // A compacted file without live messages does not remember the last sequence.
        if lastSequence < saved.3 {
            lastSequence = saved.3
            removedThrough = saved.3 - UInt64(count)
        }
    }

    /// Copies the live messages to a new file that atomically replaces the old one, record by
    /// record (the live part may be large; it is never read whole into memory).
    private func compact() throws {
        let temporary = path + ".tmp"
        do {
            let copy = try storage.open(temporary, create: true)
            try copy.truncate(to: 0)
            var at = Int64(SpoolRecord.headerSize)
            try copy.write(SpoolRecord.header(), at: 0)
            _ = try scan(from: headOffset, to: end) { decoded, _, _ in
                guard case .message(let message) = decoded, message.sequence > removedThrough else { return true }
                let bytes = SpoolRecord.encode(message)
                try copy.write(bytes, at: at)
                at += Int64(bytes.count)
                return true
            }
            try copy.sync()
            try copy.close()
            try file.close()
            try storage.rename(temporary, to: path)
            try storage.syncDirectory(StoragePath.parent(of: path))
            file = try storage.open(path, create: false)
            end = at
        } catch {
            health = .needsReopen
            throw error
        }
        headOffset = Int64(SpoolRecord.headerSize)
        recordEnds = [:]
    }
}
