import ProtocolCore
import Sim
import StoreCore

/// The bytes as the transaction redo log found at start (reference §4.3–§4.5): a script of
/// well-formed entries built from the input (puts, prepares, commits, rollbacks of a few
/// transactions), then cut at a point the input picks and with one byte the input picks changed.
/// Opening must either refuse with an error or cut the tail off and replay entries the machine
/// digests without trapping; a journal that opened takes appends after what it kept. With no
/// byte changed, what is replayed is a prefix of what was written.
public enum JournalFuzz {
    /// Returns how many entries were replayed (nil when the journal refused to open).
    @discardableResult
    public static func run(_ input: [UInt8]) -> Int? {
        guard input.count >= 4 else { return nil }
        var written: [TxJournalEntry] = []
        var bytes: [UInt8] = []
        var index = 4
        func next() -> UInt8 {
            defer { index += 1 }
            return index < input.count ? input[index] : 0
        }
        while index < input.count && written.count < 64 {
            let choice = next()
            let key = choice & 1 == 0 ? "TX:s:\(choice % 5)" : "XID:1:0a:0\(choice % 3):q"
            let entry: TxJournalEntry
            switch choice % 5 {
            case 0, 1:
                let body = Array(input[min(index, input.count)..<min(index + Int(next() % 32), input.count)])
                let put = PutCommand(topic: "t", partition: Int32(choice % 2), flag: 0, checksum: CRC32.metaqChecksum(body),
                                     transactionKey: key, body: body, opaque: 1)
                entry = .appendMessage(messageId: Int64(next()) << 8, putCommand: Frame.put(put).encoded())
            case 2: entry = .operation(type: .xaPrepare, wasPrepared: false, transactionId: key, locations: [])
            case 3:
                let location = TxPartitionLocation(offset: Int64(next()), length: Int32(next()), checksum: Int32(next()),
                                                   topic: "t", partition: Int32(choice % 2))
                entry = .operation(type: key.hasPrefix("TX") ? .localCommit : .xaCommit, wasPrepared: choice & 4 != 0,
                                   transactionId: key, locations: [location])
            default: entry = .operation(type: key.hasPrefix("TX") ? .localRollback : .xaRollback, wasPrepared: false,
                                        transactionId: key, locations: [])
            }
            written.append(entry)
            bytes += TxJournalCodec.encode(entry, force: choice % 5 == 2)
        }
        let cut = bytes.isEmpty ? 0 : (Int(input[0]) << 8 | Int(input[1])) % (bytes.count + 1)
        bytes = Array(bytes[..<cut])
        let flip = input[2] != 0 && !bytes.isEmpty
        if flip { bytes[Int(input[3]) * 97 % bytes.count] ^= input[2] }

        let disk = SimDisk()
        let directory = "/data/transactions"
        do {
            try disk.makeDirectory(directory)
            let file = try disk.open(directory + "/redo.1", create: true)
            try file.write(bytes, at: 0)
            try file.sync()
            try file.close()
            try disk.syncDirectory(directory)
        } catch {
            preconditionFailure("cannot lay out the redo file: \(error)")
        }
        let journal: TxJournal
        do { journal = try TxJournal.open(storage: disk, directory: directory).0 } catch {
            return nil  // refused with an error: fine
        }
        var machine = TransactionMachine()
        var replayed: [TxJournalEntry] = []
        do {
            try journal.replay { record in
                replayed.append(record.entry)
                _ = machine.replay(record.entry, at: record.position)
            }
        } catch {
            preconditionFailure("a journal that opened cannot be replayed: \(error)")
        }
        _ = machine.finishReplay()
        precondition(machine.checkInvariants().isEmpty, "replay left \(machine.checkInvariants())")
        if !flip {
            precondition(replayed.count <= written.count && Array(written[..<replayed.count]) == replayed,
                         "the replay is not a prefix of what was written")
        }
        do {
            let position = try journal.append(.operation(type: .localRollback, wasPrepared: false, transactionId: "TX:s:9",
                                                         locations: []), force: true)
            try journal.syncNow()
            precondition(position.offset <= Int64(bytes.count), "an append after recovery landed beyond the end")
        } catch {
            preconditionFailure("a recovered journal refuses an append: \(error)")
        }
        journal.close()
        return replayed.count
    }
}
