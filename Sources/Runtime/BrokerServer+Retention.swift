import Glibc
import NIOCore
import ProtocolCore
import StoreCore

/// Retention jobs (reference §2.7): one timer per distinct `deleteWhen` cron; when it fires, every
/// partition of the topics with that schedule applies its topic's `deletePolicy`.
extension BrokerServer {
    /// Arms the retention timers; call once after `start`.
    public func scheduleRetention() {
        loop.execute {
            var schedules: [String: CronExpression] = [:]
            for partition in self.stores.partitions {
                let cron = self.topicConfig(partition.topic).deleteWhen
                schedules[cron.description] = cron
            }
            for topic in self.stores.config.topics where !topic.name.contains("*") {
                let cron = self.topicConfig(topic.name).deleteWhen
                schedules[cron.description] = cron
            }
            for key in schedules.keys.sorted() { self.armRetention(schedules[key]!) }
        }
    }

    func topicConfig(_ topic: String) -> (deleteWhen: CronExpression, deletePolicy: DeletePolicy) {
        let config = stores.config
        let topicConfig = config.topicConfig(for: topic)
        return (topicConfig?.deleteWhen ?? config.deleteWhen, topicConfig?.deletePolicy ?? config.deletePolicy)
    }

    func armRetention(_ cron: CronExpression) {
        let nowMs = Clocks.wallMs()
        let localSeconds = nowMs / 1000 + Self.utcOffsetSeconds()
        guard let next = cron.nextFire(after: localSeconds) else { return }
        let delayMs = max(0, (next - localSeconds) * 1000 - nowMs % 1000)
        loop.scheduleTask(in: .milliseconds(delayMs)) {
            self.runRetention(cron)
            self.armRetention(cron)
        }
    }

    /// Applies retention to every partition whose topic runs on `cron`.
    func runRetention(_ cron: CronExpression) {
        for partition in stores.partitions {
            let (when, policy) = topicConfig(partition.topic)
            guard when == cron, let log = stores.log(partition) else { continue }
            do {
                let removed = try log.applyRetention(policy, nowMs: Clocks.wallMs(), archiver: ZipSegmentArchiver())
                if !removed.isEmpty {
                    logger.info("retention", metadata: ["partition": "\(partition)", "policy": "\(policy)",
                                                        "segments": "\(removed.map(\.segmentStart))"])
                }
            } catch {
                logger.error("retention failed", metadata: ["partition": "\(partition)", "error": "\(error)"])
            }
        }
    }

    /// The local time zone's offset from UTC now (Quartz evaluates cron in local time).
    static func utcOffsetSeconds() -> Int64 {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        return Int64(parts.tm_gmtoff)
    }
}
