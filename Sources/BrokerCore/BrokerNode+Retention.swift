import ProtocolCore
import StoreCore

/// Retention (reference §2.7): one timer per distinct `deleteWhen` cron; when it fires, every
/// partition of the topics on that schedule applies its topic's `deletePolicy`. The log never
/// removes its active segment or one with unsynced bytes.
extension BrokerNode {
    /// The retention settings of `topic`: its section's, else `[system]`'s.
    func retention(of topic: String) -> (deleteWhen: CronExpression, deletePolicy: DeletePolicy) {
        let section = config.topicConfig(for: topic)
        return (section?.deleteWhen ?? config.deleteWhen, section?.deletePolicy ?? config.deletePolicy)
    }

    /// At start: a timer for each distinct schedule of the topics on disk and configured.
    func armRetentionTimers(_ clock: NodeClock, _ actions: inout [Action]) {
        var topics = Set(stores.partitions.map(\.topic))
        for section in config.topics where !section.isPattern { topics.insert(section.name) }
        var crons: [String: CronExpression] = [:]
        for topic in topics { crons[retention(of: topic).deleteWhen.description] = retention(of: topic).deleteWhen }
        for key in crons.keys.sorted() where !retentionSchedules.contains(crons[key]!) {
            retentionSchedules.append(crons[key]!)
            armRetentionTimer(retentionSchedules.count - 1, clock, &actions)
        }
    }

    /// A topic created by a put whose schedule no timer serves yet gets one.
    func armRetentionTimer(for topic: String, _ clock: NodeClock, _ actions: inout [Action]) {
        let cron = retention(of: topic).deleteWhen
        guard !retentionSchedules.contains(cron) else { return }
        retentionSchedules.append(cron)
        armRetentionTimer(retentionSchedules.count - 1, clock, &actions)
    }

    /// Arms schedule `index` for its next firing (cron in local time, as Quartz evaluates it).
    func armRetentionTimer(_ index: Int, _ clock: NodeClock, _ actions: inout [Action]) {
        let localSeconds = clock.wallMs / 1000 + clock.utcOffsetSeconds
        guard let next = retentionSchedules[index].nextFire(after: localSeconds) else { return }
        let delayMs = max(0, (next - localSeconds) * 1000 - clock.wallMs % 1000)
        if armedTimers.insert(.retention(index)).inserted {
            actions.append(.armTimer(.retention(index), at: clock.now.adding(milliseconds: delayMs)))
        }
    }

    /// Applies retention to every partition on `cron` (every partition when nil), judging ages
    /// at `wallMs`.
    func runRetention(_ cron: CronExpression?, wallMs: Int64, _ actions: inout [Action]) {
        for partition in stores.partitions {
            let (when, policy) = retention(of: partition.topic)
            guard cron == nil || when == cron, let log = stores.log(partition), !log.isFailed else { continue }
            do {
                let removed = try log.applyRetention(policy, nowMs: wallMs, archiver: settings.archiver)
                // Retention takes only whole, synced segments before the active one.
                if log.segmentCount < 1 || log.minOffset > log.maxOffset {
                    violated("retention of \(partition) removed bytes that were not synced (now \(log.minOffset)..<\(log.maxOffset))")
                }
                if !removed.isEmpty {
                    actions.append(.notice(.retentionRemoved(partition, policy: policy, segments: removed.map(\.segmentStart),
                                                             minOffset: log.minOffset)))
                }
            } catch {
                actions.append(.notice(.retentionFailed(partition, "\(error)")))
            }
        }
    }
}
