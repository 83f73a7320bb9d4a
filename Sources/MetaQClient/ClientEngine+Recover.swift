import Dispatch
import Foundation
import Logging
import NIOCore
import ProtocolCore
import Runtime
import StoreCore

/// Messages the handler failed `maxFetchRetries + 1` times (§5.2): kept in the local recover
/// store (or dropped), and handed to the handler again by the consumer's `RecoverRounds`.
/// Decisions run on the client loop; the stores' file work (each write synced) on `storeQueue`,
/// so a hand-off never stalls the other partitions; the handler runs in a task, as for fetched
/// batches.
extension ClientEngine {
    static var defaultRecoverPath: String { NSHomeDirectory() + "/.meta_recover" }

    /// Opens the stores of the subscribed topics that exist (so messages kept by an earlier run
    /// are redelivered; others are created at the first hand-off) and schedules the first round
    /// (after at most 5 s, as the original). A store that cannot be opened is logged and tried
    /// again at the next hand-off or round.
    func openRecoverStores(_ link: ConsumerLink) {
        guard case .recoverLocally = link.settings.rejection else { return }
        let topics = link.topics.sorted()
        storeQueue.async { self.openExistingRecoverStores(link, topics) }
        link.rounds = RecoverRounds(settings: .init(intervalMs: link.settings.recoverIntervalMs))
        roundsEvent(link, .start)
    }

    /// Opens the stores of `link`'s topics that exist on disk and are not open (at the start, and
    /// before each round, for one that could not be opened before). On `storeQueue` only.
    private func openExistingRecoverStores(_ link: ConsumerLink, _ topics: [String]) {
        guard case .recoverLocally(let path) = link.settings.rejection else { return }
        let root = path ?? Self.defaultRecoverPath
        for topic in topics where link.recoverStores[topic] == nil {
            let directory = root + "/" + RecoverStore.directoryName(topic: topic, group: link.group)
            guard FileManager.default.fileExists(atPath: directory) else { continue }
            do {
                _ = try recoverStore(link, topic: topic)
            } catch {
                logger.error("cannot open the recover store; its messages wait for the next round",
                             metadata: ["directory": "\(directory)", "error": "\(error)"])
            }
        }
    }

    /// The recover store of `topic`, opened (and created) on first use; nil with `.drop`. Its
    /// file is the lowest slot no other process holds (`recover.log`, `recover.1.log`, …), so
    /// consumers of one group on one machine never share a file. On `storeQueue` only.
    private func recoverStore(_ link: ConsumerLink, topic: String) throws -> RecoverStore? {
        dispatchPrecondition(condition: .onQueue(storeQueue))
        guard case .recoverLocally(let path) = link.settings.rejection else { return nil }
        if let store = link.recoverStores[topic] { return store }
        let root = path ?? Self.defaultRecoverPath
        if link.recoverSlots[topic] == nil {
            let directory = root + "/" + RecoverStore.directoryName(topic: topic, group: link.group)
            try FileStorage().makeDirectory(directory)
            link.recoverSlots[topic] = try Self.claimSlot(in: directory)
        }
        let store = try RecoverStore(storage: FileStorage(), root: root, topic: topic, group: link.group,
                                     slot: link.recoverSlots[topic]!.slot)
        if let copy = store.damagedCopyPath {
            logger.error("the recover store had damaged bytes; the records around them were kept, the damaged file set aside",
                         metadata: ["path": "\(store.path)", "damaged": "\(store.damagedRanges)", "copy": "\(copy)",
                                    "kept": "\(store.count)"])
        }
        link.recoverStores[topic] = store
        return store
    }

    /// The lowest store slot of `directory` whose lock is free, locked.
    private static func claimSlot(in directory: String) throws -> (slot: Int, lock: FileLock) {
        for slot in 0..<1024 {
            if let lock = try FileLock.tryLock(directory + "/" + RecoverStore.fileName(slot: slot) + ".lock") {
                return (slot, lock)
            }
        }
        throw MetaQClientError("every recover store slot of \(directory) is held by another process")
    }

    /// Moves the messages of store files no process holds (left by a consumer that stopped or
    /// died) into this process's store of `topic`, then deletes them — so they are redelivered
    /// although no later process took their slot. A crash in between leaves them in both files:
    /// delivered twice, never lost. On `storeQueue` only.
    private func adoptAbandonedFiles(_ link: ConsumerLink, topic: String) {
        guard let own = link.recoverSlots[topic], let store = link.recoverStores[topic] else { return }
        let directory = store.directory
        let names = (try? FileStorage().list(directory)) ?? []
        for slot in names.compactMap(RecoverStore.slot(ofFileName:)).sorted() where slot != own.slot {
            let lockPath = directory + "/" + RecoverStore.fileName(slot: slot) + ".lock"
            guard let lock = (try? FileLock.tryLock(lockPath)) ?? nil else { continue }
            defer { lock.release() }
            do {
                let other = try RecoverStore(storage: FileStorage(), root: StoragePath.parent(of: directory),
                                             topic: topic, group: link.group, slot: slot)
                let moved = other.pending()
                for recovered in moved {
                    try store.append(recovered.message, brokerId: recovered.brokerId, partition: recovered.partition)
                }
                try other.close()
                try FileStorage().remove(other.path)
                try FileStorage().syncDirectory(directory)
                if !moved.isEmpty {
                    logger.info("took over the messages of a recover store file no consumer holds", metadata: [
                        "from": "\(other.path)", "to": "\(store.path)", "count": "\(moved.count)"])
                }
            } catch {
                logger.error("could not take over an abandoned recover store file; trying again next round",
                             metadata: ["directory": "\(directory)", "slot": "\(slot)", "error": "\(error)"])
                try? link.recoverStores.removeValue(forKey: topic)?.close()
                return
            }
        }
    }

    /// Closes the stores and gives their slots up, after every operation queued before.
    func closeRecoverStores(_ link: ConsumerLink) {
        storeQueue.async {
            for topic in link.recoverStores.keys.sorted() { try? link.recoverStores[topic]?.close() }
            link.recoverStores = [:]
            for topic in link.recoverSlots.keys.sorted() { link.recoverSlots[topic]?.lock.release() }
            link.recoverSlots = [:]
        }
    }

    /// `message` failed its last attempt: keep it (durably, before the offset past it can be
    /// committed) or drop it, then let the machine move past it. When the store cannot keep it
    /// the machine holds the partition at it and asks again after a back-off.
    func handOff(_ link: ConsumerLink, _ fetcher: FetchLink, _ message: Message, attempts: Int) {
        let key = fetcher.key
        let metadata: Logger.Metadata = [
            "topic": "\(key.topic)", "partition": "\(key.partition)", "offset": "\(message.offset)",
            "msgId": "\(message.id)", "attempts": "\(attempts)"]
        storeQueue.async {
            let outcome: ConsumerMachine.Event
            do {
                if let store = try self.recoverStore(link, topic: key.topic) {
                    try store.append(message, brokerId: Int32(key.partition.brokerId), partition: Int32(key.partition.partition))
                    self.logger.warning("the handler failed a message too often; kept in the recover store", metadata: metadata)
                } else {
                    self.logger.warning("the handler failed a message too often; dropped (rejection policy .drop)", metadata: metadata)
                }
                outcome = .handedOff
            } catch {
                self.logger.error("the handler failed a message too often and the recover store cannot keep it; the partition waits at it",
                                  metadata: metadata.merging(["error": "\(error)"]) { $1 })
                outcome = .handOffFailed
                // A store whose write failed accepts nothing more; the next attempt reopens the
                // file (which rewrites what it holds) instead.
                try? link.recoverStores.removeValue(forKey: key.topic)?.close()
            }
            self.loop.execute {
                guard link.fetchers[key] === fetcher else { return }
                self.fetchEvent(link, fetcher, outcome)
            }
        }
    }

    /// Whether `link` still runs its handler (not closed, not closing).
    private func isRunning(_ link: ConsumerLink) -> Bool {
        consumers[link.id] === link && link.closing == nil && link.handler != nil
    }

    /// Feeds the consumer's redelivery rounds and does what they ask.
    func roundsEvent(_ link: ConsumerLink, _ event: RecoverRounds<RecoveredMessage>.Event) {
        guard link.rounds != nil else { return }
        let actions = withDedupCache(link) { link.rounds!.handle(event, now: Clocks.monotonic(), cache: &$0) }
        for action in actions {
            switch action {
            case .scheduleTick(let when):
                at(when) {
                    // A consumer closed meanwhile starts no round: its rounds end here.
                    self.roundsEvent(link, self.isRunning(link) ? .tick : .stop)
                }
            case .list:
                listRecovered(link)
            case .deliver(let pending):
                redeliver(link, pending)
            case .remove(let items):
                if case .listed = event {
                    logger.info("recovered messages handled meanwhile (dedup cache) are removed unhandled",
                                metadata: ["count": "\(items.count)"])
                }
                removeRecovered(link, items)
            }
        }
    }

    /// Answers `.list`: every stored message, oldest first, once stores left by an earlier run
    /// or by processes gone meanwhile are opened and adopted.
    private func listRecovered(_ link: ConsumerLink) {
        let topics = link.topics.sorted()
        storeQueue.async {
            self.openExistingRecoverStores(link, topics)
            for topic in link.recoverStores.keys.sorted() { self.adoptAbandonedFiles(link, topic: topic) }
            let stored = link.recoverStores.keys.sorted().flatMap { link.recoverStores[$0]!.pending() }
            self.loop.execute { self.roundsEvent(link, self.isRunning(link) ? .listed(stored) : .stop) }
        }
    }

    /// Answers `.deliver`: the messages to the handler in a task, one at a time; a failing one
    /// stays for the next round (MetaQ issue #111).
    private func redeliver(_ link: ConsumerLink, _ pending: [RecoveredMessage]) {
        guard let handler = link.handler else { return roundsEvent(link, .stop) }
        let logger = self.logger
        Task {
            var handled: [RecoveredMessage] = []
            for recovered in pending {
                let message = recovered.message
                let received = ReceivedMessage(
                    topic: recovered.topic,
                    partition: BrokerPartition(brokerId: Int(recovered.brokerId), partition: Int(recovered.partition)),
                    offset: message.offset, id: message.id, attribute: message.attribute, data: message.data)
                do {
                    try await handler(received, .inert)
                    handled.append(recovered)
                } catch {
                    logger.warning("a recovered message failed again; kept for the next round", metadata: [
                        "topic": "\(recovered.topic)", "msgId": "\(message.id)", "error": "\(error)"])
                }
            }
            let done = handled
            self.loop.execute { self.roundsEvent(link, .roundEnded(handled: done)) }
        }
    }

    private func removeRecovered(_ link: ConsumerLink, _ handled: [RecoveredMessage]) {
        storeQueue.async {
            for (topic, msgId) in handled.map({ ($0.topic, $0.msgId) }) {
                do {
                    try link.recoverStores[topic]?.remove(msgId: msgId)
                } catch {
                    self.logger.error("could not remove a redelivered message from the recover store; it will be delivered again",
                                      metadata: ["topic": "\(topic)", "msgId": "\(msgId)", "error": "\(error)"])
                    try? link.recoverStores.removeValue(forKey: topic)?.close()
                }
            }
        }
    }
}
