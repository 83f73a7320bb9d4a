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

/// Batches to the handler: the `DeliveryTracker` of the fetch run (dedup cache, §5.1; manual ack
/// and rollback bookkeeping, §5.3) on the loop, then in a task per batch the filter (§5.7) and
/// the handler, whose results go through a `HandlerBatch` and hop back onto the loop in order.
extension ClientEngine {
    /// Hands the batch to the handler off the loop, one message at a time; reports how far it got.
    func process(_ link: ConsumerLink, _ fetcher: FetchLink, _ messages: [Message], nextOffset: Int64) {
        guard let handler = link.handler else { return }
        let fresh = withDedupCache(link) { fetcher.tracker.admit(messages, nextOffset: nextOffset, cache: &$0) }
        if fresh.count < messages.count {
            logger.debug("skipped messages handled before (dedup cache)", metadata: [
                "topic": "\(fetcher.key.topic)", "partition": "\(fetcher.key.partition)",
                "count": "\(messages.count - fresh.count)"])
        }
        let filter = link.filters[fetcher.key.topic]
        Task {
            let end = await self.handleBatch(fresh, upTo: nextOffset, link, fetcher, handler, filter)
            self.loop.execute { self.trackerEvent(link, fetcher, end) }
        }
    }

    private func handleBatch(_ batch: [DeliveryTracker.Delivery], upTo nextOffset: Int64, _ link: ConsumerLink,
                             _ fetcher: FetchLink, _ handler: ConsumerHandler,
                             _ filter: (@Sendable (ReceivedMessage) throws -> Bool)?) async -> DeliveryTracker.Event {
        let key = fetcher.key
        var progress = HandlerBatch(nextOffset: nextOffset)
        for delivery in batch {
            let message = delivery.message
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
                return progress.failed(at: message.offset)
            }
            let request = handler.isManual ? acknowledger.take() : Acknowledger.Request()
            let step = progress.handled(delivery, ack: request.ack, rollback: request.rollback.map {
                switch $0 {
                case .lastAck: .toLastAck
                case .thisMessage: .toThisMessage
                }
            })
            if let ack = step.ack { loop.execute { self.trackerEvent(link, fetcher, ack) } }
            if let end = step.end { return end }
        }
        return progress.finished()
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

    /// An ack, or the end of a batch, reaches the tracker and then the fetcher's machine.
    private func trackerEvent(_ link: ConsumerLink, _ fetcher: FetchLink, _ event: DeliveryTracker.Event) {
        // A fetcher stopped meanwhile (rebalance, close) no longer owns the partition.
        guard link.fetchers[fetcher.key] === fetcher else { return }
        if case .rolledBack(let to, _) = event {
            logger.debug("rollback", metadata: ["topic": "\(fetcher.key.topic)", "partition": "\(fetcher.key.partition)",
                                                "to": "\(to.map(String.init) ?? "last ack")"])
        }
        let machineEvent = withDedupCache(link) { fetcher.tracker.handle(event, cache: &$0) }
        fetchEvent(link, fetcher, machineEvent)
    }

    // MARK: dedup cache (§5.1)

    /// Runs `body` with the group's dedup cache (created with this consumer's size), or nil when
    /// this consumer dedups nothing. Taken out of the table for the call: one lookup, no copy.
    func withDedupCache<T>(_ link: ConsumerLink, _ body: (inout MessageIdCache?) -> T) -> T {
        guard link.settings.dedupCacheSize > 0 else {
            var none: MessageIdCache? = nil
            return body(&none)
        }
        var cache: MessageIdCache? = messageIdCaches.removeValue(forKey: link.group)
            ?? MessageIdCache(capacity: link.settings.dedupCacheSize)
        defer { messageIdCaches[link.group] = cache }
        return body(&cache)
    }
}
