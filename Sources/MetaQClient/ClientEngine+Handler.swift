import Logging
import ProtocolCore

/// The application's handler, as given to `run` or `run(manualAck:)`.
enum ConsumerHandler: Sendable {
    case automatic(@Sendable (ReceivedMessage) async throws -> Void)
    case manual(@Sendable (ReceivedMessage, Acknowledger) async throws -> Void)

    var isManual: Bool { if case .manual = self { true } else { false } }

    func callAsFunction(_ message: ReceivedMessage, _ acknowledger: Acknowledger) async throws {
        switch self {
        case .automatic(let handler): try await handler(message)
        case .manual(let handler): try await handler(message, acknowledger)
        }
    }
}

/// How a batch task ended, reported back on the loop.
private enum BatchEnd {
    /// Handled up to `upTo` (the batch's end, or a failed message); `ids` were handled and, in
    /// manual mode, not acknowledged yet.
    case processed(upTo: Int64, ids: [Int64])
    /// The handler rolled back (§5.3) to its last ack (`to` nil) or to the message at `to`; `ids`
    /// were handled before it and stay unacknowledged.
    case rolledBack(to: Int64?, ids: [Int64])
}

/// Batches to the handler: the dedup cache (§5.1) on the loop, then in a task per batch the
/// filter (§5.7), the handler, and its acknowledgements (§5.3) hopping back onto the loop in order.
extension ClientEngine {
    /// Hands the batch to the handler off the loop, one message at a time; reports how far it got.
    func process(_ link: ConsumerLink, _ fetcher: FetchLink, _ messages: [Message], nextOffset: Int64) {
        guard let handler = link.handler else { return }
        // Each message with the offset where the next record starts (what an ack of it commits).
        var fresh: [(message: Message, end: Int64)] = []
        fresh.reserveCapacity(messages.count)
        // The group's cache taken out for the batch: one lookup by group name, not one per message.
        var cache = link.settings.dedupCacheSize > 0 ? messageIdCaches.removeValue(forKey: link.group) : nil
        for (i, message) in messages.enumerated() where !(cache?.contains(message.id) ?? false) {
            fresh.append((message, i + 1 < messages.count ? messages[i + 1].offset : nextOffset))
        }
        if let cache { messageIdCaches[link.group] = cache }
        if fresh.count < messages.count {
            logger.debug("skipped messages handled before (dedup cache)", metadata: [
                "topic": "\(fetcher.key.topic)", "partition": "\(fetcher.key.partition)",
                "count": "\(messages.count - fresh.count)"])
        }
        let filter = link.filters[fetcher.key.topic]
        Task {
            let end = await self.handleBatch(fresh, upTo: nextOffset, link, fetcher, handler, filter)
            self.loop.execute { self.batchEnded(link, fetcher, end) }
        }
    }

    private func handleBatch(_ batch: [(message: Message, end: Int64)], upTo nextOffset: Int64, _ link: ConsumerLink,
                             _ fetcher: FetchLink, _ handler: ConsumerHandler,
                             _ filter: (@Sendable (ReceivedMessage) throws -> Bool)?) async -> BatchEnd {
        let key = fetcher.key
        var handled: [Int64] = []
        for (message, end) in batch {
            let received = ReceivedMessage(topic: key.topic, partition: key.partition, offset: message.offset,
                                           id: message.id, attribute: message.attribute, data: message.data)
            if let filter, !accepts(received, filter) { continue }
            let acknowledger = handler.isManual ? Acknowledger() : .inert
            do {
                try await handler(received, acknowledger)
            } catch {
                _ = acknowledger.take()
                logger.warning("the handler failed; the message will be delivered again", metadata: [
                    "topic": "\(key.topic)", "partition": "\(key.partition)", "offset": "\(message.offset)",
                    "msgId": "\(message.id)", "error": "\(error)"])
                return .processed(upTo: message.offset, ids: handled)
            }
            handled.append(message.id)
            guard handler.isManual else { continue }
            let request = acknowledger.take()
            if request.ack {
                let ids = handled
                handled = []
                loop.execute { self.acknowledged(link, fetcher, upTo: end, ids: ids) }
            }
            switch request.rollback {
            case .lastAck?: return .rolledBack(to: nil, ids: [])
            case .thisMessage?: return .rolledBack(to: message.offset, ids: Array(handled.dropLast()))
            case nil: continue
            }
        }
        return .processed(upTo: nextOffset, ids: handled)
    }

    /// §5.7: a throwing filter rejects the message.
    private func accepts(_ message: ReceivedMessage, _ filter: @Sendable (ReceivedMessage) throws -> Bool) -> Bool {
        do {
            return try filter(message)
        } catch {
            logger.warning("the message filter threw; the message is skipped", metadata: [
                "topic": "\(message.topic)", "partition": "\(message.partition)", "offset": "\(message.offset)",
                "msgId": "\(message.id)", "error": "\(error)"])
            return false
        }
    }

    /// Manual ack: the messages since the last ack count as handled.
    private func acknowledged(_ link: ConsumerLink, _ fetcher: FetchLink, upTo: Int64, ids: [Int64]) {
        guard link.fetchers[fetcher.key] === fetcher else { return }
        remember(link, fetcher.unackedIds + ids)
        fetcher.unackedIds = []
        fetchEvent(link, fetcher, .ack(upTo: upTo))
    }

    private func batchEnded(_ link: ConsumerLink, _ fetcher: FetchLink, _ end: BatchEnd) {
        // A fetcher stopped meanwhile (rebalance, close) no longer owns the partition.
        guard link.fetchers[fetcher.key] === fetcher else { return }
        let manual = link.handler?.isManual ?? false
        switch end {
        case .processed(let upTo, let ids):
            if manual { keepUnacknowledged(link, fetcher, ids) } else { remember(link, ids) }
            fetchEvent(link, fetcher, .processed(nextOffset: upTo))
        case .rolledBack(let to, let ids):
            if to == nil { fetcher.unackedIds = [] } else { keepUnacknowledged(link, fetcher, ids) }
            logger.debug("rollback", metadata: ["topic": "\(fetcher.key.topic)", "partition": "\(fetcher.key.partition)",
                                                "to": "\(to.map(String.init) ?? "last ack")"])
            fetchEvent(link, fetcher, .rollback(to: to))
        }
    }

    private func keepUnacknowledged(_ link: ConsumerLink, _ fetcher: FetchLink, _ ids: [Int64]) {
        fetcher.unackedIds.append(contentsOf: ids)
        let excess = fetcher.unackedIds.count - link.settings.dedupCacheSize
        if excess > 0 { fetcher.unackedIds.removeFirst(excess) }
    }

    // MARK: dedup cache (§5.1)

    /// Whether the group handled `id` recently in this process.
    func seenBefore(_ link: ConsumerLink, _ id: Int64) -> Bool {
        guard link.settings.dedupCacheSize > 0 else { return false }
        return messageIdCaches[link.group]?.contains(id) ?? false
    }

    /// Puts handled ids in the group's cache (created with this consumer's size).
    func remember(_ link: ConsumerLink, _ ids: [Int64]) {
        guard link.settings.dedupCacheSize > 0, !ids.isEmpty else { return }
        var cache = messageIdCaches.removeValue(forKey: link.group) ?? MessageIdCache(capacity: link.settings.dedupCacheSize)
        for id in ids { cache.insert(id) }
        messageIdCaches[link.group] = cache
    }
}
