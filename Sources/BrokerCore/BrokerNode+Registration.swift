import ProtocolCore
import StoreCore

/// Which topics this broker registers in ZooKeeper, and when (reference §3.2): at start the
/// configured topics without wildcards and every topic with data on disk; later each topic whose
/// first partition a put creates (`.registerTopic`).
extension BrokerNode {
    /// The topics to register at start, sorted by name.
    public func topicsToRegister() -> [BrokerRegistration.Topic] {
        var names = Set(config.topics.filter { !$0.isPattern }.map(\.name))
        for partition in stores.partitions { names.insert(partition.topic) }
        return names.sorted().map(registration(of:))
    }

    /// A topic's registration: its section's values, or `[system]`'s for a topic with data on
    /// disk but no section any more.
    func registration(of topic: String) -> BrokerRegistration.Topic {
        guard let section = config.topicConfig(for: topic) else {
            return BrokerRegistration.Topic(name: topic, numPartitions: config.numPartitions,
                                            acceptPublish: config.acceptPublish, acceptSubscribe: config.acceptSubscribe)
        }
        return BrokerRegistration.Topic(name: topic, numPartitions: section.numPartitions,
                                        acceptPublish: section.acceptPublish, acceptSubscribe: section.acceptSubscribe)
    }
}
