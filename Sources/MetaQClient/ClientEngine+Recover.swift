import Foundation
import Logging
import NIOCore
import ProtocolCore
import Runtime
import StoreCore

/// Messages the handler failed `maxFetchRetries + 1` times (§5.2): kept in the local recover
/// store (or dropped), and handed to the handler again every `recoverIntervalMs`. Runs on the
/// client loop; the handler runs in a task, as for fetched batches.
extension ClientEngine {
    static var defaultRecoverPath: String { NSHomeDirectory() + "/.meta_recover" }

    /// Opens the stores of the subscribed topics that exist (so messages kept by an earlier run
    /// are redelivered; others are created at the first hand-off) and schedules the first round
    /// (after at most 5 s, as the original).
    func openRecoverStores(_ link: ConsumerLink) throws {
        guard case .recoverLocally(let path) = link.settings.rejection else { return }
        let root = path ?? Self.defaultRecoverPath
        for topic in link.topics.sorted() {
            let directory = root + "/" + RecoverStore.directoryName(topic: topic, group: link.group)
            guard FileManager.default.fileExists(atPath: directory) else { continue }
            link.recoverStores[topic] = try openRecoverStore(root: root, topic: topic, group: link.group)
        }
        scheduleRedelivery(link, afterMs: min(5_000, link.settings.recoverIntervalMs))
    }

    /// The recover store of `topic`, opened (and created) on first use; nil with `.drop`.
    private func recoverStore(_ link: ConsumerLink, topic: String) throws -> RecoverStore? {
        guard case .recoverLocally(let path) = link.settings.rejection else { return nil }
        if let store = link.recoverStores[topic] { return store }
        let store = try openRecoverStore(root: path ?? Self.defaultRecoverPath, topic: topic, group: link.group)
        link.recoverStores[topic] = store
        return store
    }

    private func openRecoverStore(root: String, topic: String, group: String) throws -> RecoverStore {
        let store = try RecoverStore(storage: FileStorage(), root: root, topic: topic, group: group)
        if let copy = store.damagedCopyPath {
            logger.error("the recover store had damaged bytes; the records around them were kept, the damaged file set aside",
                         metadata: ["directory": "\(store.directory)", "damaged": "\(store.damagedRanges)", "copy": "\(copy)",
                                    "kept": "\(store.count)"])
        }
        return store
    }

    func closeRecoverStores(_ link: ConsumerLink) {
        for topic in link.recoverStores.keys.sorted() { try? link.recoverStores[topic]?.close() }
        link.recoverStores = [:]
    }

    /// `message` failed its last attempt: keep it (durably, before the offset past it can be
    /// committed) or drop it, then let the machine move past it. When the store cannot keep it
    /// the machine holds the partition at it and asks again after a back-off.
    func handOff(_ link: ConsumerLink, _ fetcher: FetchLink, _ message: Message, attempts: Int) {
        let key = fetcher.key
        let metadata: Logger.Metadata = [
            "topic": "\(key.topic)", "partition": "\(key.partition)", "offset": "\(message.offset)",
            "msgId": "\(message.id)", "attempts": "\(attempts)"]
        let outcome: ConsumerMachine.Event
        do {
            if let store = try recoverStore(link, topic: key.topic) {
                try store.append(message, brokerId: Int32(key.partition.brokerId), partition: Int32(key.partition.partition))
                logger.warning("the handler failed a message too often; kept in the recover store", metadata: metadata)
            } else {
                logger.warning("the handler failed a message too often; dropped (rejection policy .drop)", metadata: metadata)
            }
            outcome = .handedOff
        } catch {
            logger.error("the handler failed a message too often and the recover store cannot keep it; the partition waits at it",
                         metadata: metadata.merging(["error": "\(error)"]) { $1 })
            outcome = .handOffFailed
            // A store whose write failed accepts nothing more; the next attempt reopens the file
            // (which cuts a torn tail) instead.
            try? link.recoverStores.removeValue(forKey: key.topic)?.close()
        }
        // Not from inside the machine's own action loop.
        loop.execute {
            guard link.fetchers[key] === fetcher else { return }
            self.fetchEvent(link, fetcher, outcome)
        }
    }

    func scheduleRedelivery(_ link: ConsumerLink, afterMs: Int64) {
        loop.scheduleTask(in: .milliseconds(afterMs)) { self.redeliver(link) }
    }

    /// One round: every stored message, oldest first, to the handler; the ones it handled are
    /// removed, a failing one stays for the next round (MetaQ issue #111). One the group already
    /// handled in this process (the dedup cache, §5.1) is removed without calling the handler.
    private func redeliver(_ link: ConsumerLink) {
        guard consumers[link.id] === link, link.closing == nil, let handler = link.handler else { return }
        let stored = link.recoverStores.keys.sorted().flatMap { link.recoverStores[$0]!.pending() }
        var pending: [RecoveredMessage] = []
        var seen: [(topic: String, msgId: Int64)] = []
        for recovered in stored {
            if seenBefore(link, recovered.message.id) {
                seen.append((recovered.topic, recovered.message.id))
            } else {
                pending.append(recovered)
            }
        }
        if !seen.isEmpty {
            logger.info("recovered messages handled meanwhile (dedup cache) are removed unhandled", metadata: ["count": "\(seen.count)"])
            removeRecovered(link, seen)
        }
        guard !pending.isEmpty else {
            scheduleRedelivery(link, afterMs: link.settings.recoverIntervalMs)
            return
        }
        let logger = self.logger
        Task {
            var handled: [(topic: String, msgId: Int64)] = []
            for recovered in pending {
                let message = recovered.message
                let received = ReceivedMessage(
                    topic: recovered.topic,
                    partition: BrokerPartition(brokerId: Int(recovered.brokerId), partition: Int(recovered.partition)),
                    offset: message.offset, id: message.id, attribute: message.attribute, data: message.data)
                do {
                    try await handler(received, .inert)
                    handled.append((recovered.topic, message.id))
                } catch {
                    logger.warning("a recovered message failed again; kept for the next round", metadata: [
                        "topic": "\(recovered.topic)", "msgId": "\(message.id)", "error": "\(error)"])
                }
            }
            let done = handled
            self.loop.execute { self.redelivered(link, done) }
        }
    }

    private func redelivered(_ link: ConsumerLink, _ handled: [(topic: String, msgId: Int64)]) {
        remember(link, handled.map(\.msgId))
        removeRecovered(link, handled)
        guard consumers[link.id] === link else { return }
        scheduleRedelivery(link, afterMs: link.settings.recoverIntervalMs)
    }

    private func removeRecovered(_ link: ConsumerLink, _ handled: [(topic: String, msgId: Int64)]) {
        for (topic, msgId) in handled {
            do {
                try link.recoverStores[topic]?.remove(msgId: msgId)
            } catch {
                logger.error("could not remove a redelivered message from the recover store; it will be delivered again",
                             metadata: ["topic": "\(topic)", "msgId": "\(msgId)", "error": "\(error)"])
            }
        }
    }
}
