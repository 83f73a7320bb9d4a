import Foundation
import ProtocolCore

/// Offsets in a local JSON file, in the format of MetaQ's LocalOffsetStorage (§5.4):
/// `{"<group>":[{"topic":"test","partition":{"brokerId":0,"partition":1},"offset":126,
/// "messageId":-5468932283484340224,"modified":false}, …]}` — one document for all groups,
/// rewritten through a temporary file and a rename, so a crash leaves the old or the new file.
///
/// Not shared between processes: like the original, it suits a group with one consumer.
public final class LocalOffsetFile: @unchecked Sendable {  // used only on the client loop (or read once by a tool)
    public static var defaultPath: String { NSHomeDirectory() + "/.meta_offsets" }

    let path: String
    /// group → "topic|broker-partition" → offset.
    private var groups: [String: [String: Entry]] = [:]

    struct Entry {
        var topic: String
        var partition: BrokerPartition
        var offset: StoredOffset
    }

    public init(path: String) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else { return }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard !data.isEmpty else { return }
        guard let document = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw MetaQClientError("\(path) is not a JSON object of groups (MetaQ's LocalOffsetStorage format)")
        }
        for (group, value) in document {
            for item in value as? [[String: Any]] ?? [] {
                guard let topic = item["topic"] as? String, let part = item["partition"] as? [String: Any],
                      let broker = (part["brokerId"] as? NSNumber)?.intValue,
                      let partition = (part["partition"] as? NSNumber)?.intValue,
                      let offset = (item["offset"] as? NSNumber)?.int64Value else {
                    throw MetaQClientError("\(path): an entry of group \(group) lacks topic, partition or offset")
                }
                let msgId = (item["messageId"] as? NSNumber)?.int64Value ?? -1
                let bp = BrokerPartition(brokerId: broker, partition: partition)
                groups[group, default: [:]][Self.key(topic, bp)] = Entry(topic: topic, partition: bp,
                                                                          offset: StoredOffset(msgId: msgId, offset: offset))
            }
        }
    }

    static func key(_ topic: String, _ partition: BrokerPartition) -> String { topic + "|" + partition.description }

    func offset(group: String, topic: String, partition: BrokerPartition) -> StoredOffset? {
        groups[group]?[Self.key(topic, partition)]?.offset
    }

    /// Every offset stored for `topic` by `group`, by broker and partition (`metaq offsets`).
    public func offsets(group: String, topic: String) -> [(partition: BrokerPartition, offset: StoredOffset)] {
        (groups[group] ?? [:]).values.filter { $0.topic == topic }.sorted { $0.partition < $1.partition }
            .map { ($0.partition, $0.offset) }
    }

    /// Records the offsets and rewrites the file.
    func store(group: String, _ commits: [(topic: String, partition: BrokerPartition, offset: StoredOffset)]) throws {
        for commit in commits {
            groups[group, default: [:]][Self.key(commit.topic, commit.partition)] =
                Entry(topic: commit.topic, partition: commit.partition, offset: commit.offset)
        }
        try write()
    }

    private func write() throws {
        var document: [String: Any] = [:]
        for (group, entries) in groups {
            document[group] = entries.keys.sorted().map { key -> [String: Any] in
                let e = entries[key]!
                return ["topic": e.topic,
                        "partition": ["brokerId": e.partition.brokerId, "partition": e.partition.partition],
                        "offset": e.offset.offset, "messageId": e.offset.msgId, "modified": false]
            }
        }
        let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])
        try data.write(to: URL(fileURLWithPath: path), options: [.atomic])  // a temporary file, then rename
    }
}
