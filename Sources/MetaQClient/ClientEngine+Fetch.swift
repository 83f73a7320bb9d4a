import Logging
import NIOCore
import ProtocolCore
import Runtime

/// Fetchers: one `ConsumerMachine` per owned partition, with `awaitsProcessing` so the next
/// `get` leaves only after the handler finished the last batch (§5.1: per-partition order).
extension ClientEngine {
    func startFetcher(_ link: ConsumerLink, _ key: FetchKey, _ address: BrokerAddress, offset: Int64) {
        stopFetcher(link, key)
        let settings = link.settings
        let machine = ConsumerMachine(settings: .init(
            topic: key.topic, group: link.group, partition: Int32(key.partition.partition), startOffset: max(0, offset),
            maxSizeBytes: settings.fetchSizeBytes, maxMaxSizeBytes: max(settings.fetchSizeBytes, 2 * 1024 * 1024 + 20),
            requestTimeoutMs: settings.fetchTimeoutMs,
            fetchBackoff: Backoff(stepMs: max(1, settings.maxFetchDelayMs / 10), maxMs: settings.maxFetchDelayMs),
            reconnectBackoff: Backoff(stepMs: max(1, settings.maxFetchDelayMs / 10), maxMs: settings.maxFetchDelayMs),
            awaitsProcessing: true, retry: RetryPolicy(maxFetchRetries: settings.maxFetchRetries),
            manualAck: link.handler?.isManual ?? false))
        let tracker = DeliveryTracker(mode: link.handler?.isManual ?? false ? .manualAck : .automatic,
                                      unackedLimit: settings.dedupCacheSize)
        let fetcher = FetchLink(key: key, address: address, machine: machine, tracker: tracker)
        link.fetchers[key] = fetcher
        logger.debug("fetching", metadata: ["topic": "\(key.topic)", "partition": "\(key.partition)",
                                            "broker": "\(address)", "offset": "\(offset)"])
        fetchEvent(link, fetcher, .start)
    }

    func stopFetcher(_ link: ConsumerLink, _ key: FetchKey) {
        guard let fetcher = link.fetchers.removeValue(forKey: key) else { return }
        fetcher.isStopped = true
        fetcher.channel?.close()
        fetcher.channel = nil
    }

    func fetchEvent(_ link: ConsumerLink, _ fetcher: FetchLink, _ event: ConsumerMachine.Event) {
        guard !fetcher.isStopped else { return }
        let actions = fetcher.machine.handle(event, now: Clocks.monotonic())
        recordAcknowledged(link, fetcher)
        for action in actions {
            switch action {
            case .connect:
                fetcher.channel = BrokerChannel(
                    address: fetcher.address, loop: loop, timeoutMs: link.settings.fetchTimeoutMs,
                    onOpen: { [weak fetcher] in fetcher.map { self.fetchEvent(link, $0, .connected) } },
                    onFrame: { [weak fetcher] frame in fetcher.map { self.fetchEvent(link, $0, .frame(frame)) } },
                    onClose: { [weak fetcher] in fetcher.map { self.fetchEvent(link, $0, .connectionLost) } })
            case .sendFrame(let frame):
                fetcher.channel?.send(frame)
            case .disconnect:
                fetcher.channel?.close()
                fetcher.channel = nil
            case .scheduleTick(let when):
                at(when) { [weak fetcher] in fetcher.map { self.fetchEvent(link, $0, .tick) } }
            case .deliver(let messages, let nextOffset):
                process(link, fetcher, messages, nextOffset: nextOffset)
            case .offsetChanged(let offset):
                logger.info("the broker moved the offset (301)", metadata: [
                    "topic": "\(fetcher.key.topic)", "partition": "\(fetcher.key.partition)", "offset": "\(offset)"])
            case .reportDamage(let offset, let damage):
                logger.error("damaged record; fetching it again after a back-off", metadata: [
                    "broker": "\(fetcher.address)", "topic": "\(fetcher.key.topic)", "partition": "\(fetcher.key.partition)",
                    "offset": "\(offset)", "damage": "\(damage)"])
            case .reportRecordTooLarge(let offset, let recordBytes, let fetchedBytes):
                logger.error("a record does not fit a fetch", metadata: [
                    "broker": "\(fetcher.address)", "topic": "\(fetcher.key.topic)", "partition": "\(fetcher.key.partition)",
                    "offset": "\(offset)", "recordBytes": "\(recordBytes.map(String.init) ?? "?")", "fetched": "\(fetchedBytes)"])
            case .recover(let message, let attempts):
                handOff(link, fetcher, message, attempts: attempts)
            case .reportBrokerError(let code, let text):
                logger.warning("fetch failed", metadata: [
                    "broker": "\(fetcher.address)", "topic": "\(fetcher.key.topic)", "partition": "\(fetcher.key.partition)",
                    "code": "\(code)", "text": "\(text)"])
            }
        }
    }

    /// Hands the machine's committable position, when it moved (§5.3: in manual mode only acks
    /// move it), to the group member or the direct-mode offsets.
    private func recordAcknowledged(_ link: ConsumerLink, _ fetcher: FetchLink) {
        let acknowledged = fetcher.machine.acknowledged
        guard acknowledged != fetcher.recorded else { return }
        fetcher.recorded = acknowledged
        processed(link, fetcher.key, nextOffset: acknowledged.offset, msgId: acknowledged.msgId)
    }

    /// Records the committable position with the group member (committed later) or, in direct
    /// mode, for the local offset file.
    func processed(_ link: ConsumerLink, _ key: FetchKey, nextOffset: Int64, msgId: Int64) {
        guard link.fetchers[key] != nil else { return }
        if link.member != nil {
            memberEvent(link.id, .processed(topic: key.topic, partition: key.partition, nextOffset: nextOffset, msgId: msgId))
        } else {
            link.directOffsets[key] = StoredOffset(msgId: msgId, offset: nextOffset)
        }
    }
}
