import ArgumentParser
import Foundation
import MetaQClient
import ProtocolCore
import Runtime
import StoreCore

/// `metaq recover`: what the local recover stores hold (reference §5.2) — the messages a
/// consumer on this machine gave up on after its last retry and keeps redelivering.
struct Recover: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the messages kept in the local recover stores (handler failed them too often).",
        discussion: """
            A consumer hands a message its handler failed maxFetchRetries+1 times to its rejection policy; the \
            default keeps it in <path>/<topic>@<group>/recover.log and hands it to the handler again every \
            recoverIntervalMs until it succeeds. This command reads those files without changing them (safe \
            while consumers run) and prints, per store, `topic@group: N messages (path)`, then one line per \
            message: `brokerId-partition offset msgId attribute bytes data`. The data is printed as UTF-8 text, cut \
            to --width characters (0: whole); control characters show as '.'.
            """)

    @Option(help: "The recover store root (the consumer's rejection path; default ~/.meta_recover).")
    var path: String = NSHomeDirectory() + "/.meta_recover"

    @Option(help: "Only stores of this topic.")
    var topic: String?

    @Option(help: "Only stores of this consumer group.")
    var group: String?

    @Option(help: "Print at most this many characters of each message's data (0: all).")
    var width = 80

    @Flag(help: "Print only the per-store counts.")
    var summary = false

    func run() throws {
        let stores: [RecoverStoreContents]
        do {
            stores = try RecoverStore.inspect(storage: FileStorage(), root: path)
        } catch {
            throw ValidationError("cannot read the recover stores under \(path): \(error)")
        }
        let chosen = stores.filter { (topic == nil || $0.topic == topic) && (group == nil || $0.group == group) }
        if chosen.isEmpty {
            FileHandle.standardError.write(Data("no recover store\(topic.map { " of topic \($0)" } ?? "")\(group.map { " of group \($0)" } ?? "") under \(path)\n".utf8))
            return
        }
        for store in chosen {
            print("\(store.topic)@\(store.group): \(store.pending.count) message\(store.pending.count == 1 ? "" : "s") (\(store.path))")
            if store.unreadableTailBytes > 0 {
                print("  (\(store.unreadableTailBytes) bytes after the last whole record: a torn write the consumer cuts when it opens the store)")
            }
            if store.damagedBytes > 0 {
                print("  (\(store.damagedBytes) damaged bytes between records, skipped; the consumer keeps a copy of the file aside when it opens the store)")
            }
            guard !summary else { continue }
            for recovered in store.pending {
                let m = recovered.message
                print("  \(recovered.brokerId)-\(recovered.partition) \(m.offset) \(m.id) \(m.attribute ?? "-") \(m.data.count) \(Self.preview(m.data, width: width))")
            }
        }
    }

    /// The data as UTF-8 text (invalid bytes as U+FFFD), control characters as '.', cut to `width` characters.
    static func preview(_ data: [UInt8], width: Int) -> String {
        let characters = String(decoding: data, as: UTF8.self).map { character in
            character.unicodeScalars.allSatisfy { $0.properties.generalCategory == .control } ? "." : character
        }
        guard width > 0, characters.count > width else { return String(characters) }
        return String(characters.prefix(width)) + "…"
    }
}
