import ProtocolCore
import StoreCore

/// Operators' admin verbs on a running broker (issue 19; reference §8.4, §8.5), reached over the
/// wire as `stats admin@…` items (`AdminCommand`): close-partitions, open-partitions, reload.
///
/// The rules live here so the simulator runs them too: which partitions are closed, that a close
/// is persisted (`ClosedPartitionsFile`, loaded in `open`) before it is answered, what a reload
/// may change and what it does about it. The drivers only read the config file for a reload.
extension BrokerNode {
    /// What a driver read for a `reload`: the new file parsed, or why it could not be.
    public enum ConfigReload {
        case loaded(ServerConfig, file: [UInt8], path: String)
        case unreadable(String)
    }

    /// Answers an admin item: a malformed one 400, close/open at once, reload through the driver
    /// (`.reloadConfig`), which reads the file and calls `reload`.
    func adminRequested(_ item: String, from connection: ConnectionID, opaque: Int32, _ clock: NodeClock,
                        _ actions: inout [Action]) {
        let command: AdminCommand
        do { command = try AdminCommand(statsItem: item) } catch {
            return actions.append(.reply(connection, ResultResponse(code: StatusCode.badRequest, text: error.message, opaque: opaque)))
        }
        switch command {
        case .closePartitions(let topic, let start, let end):
            actions.append(.reply(connection, closePartitions(topic, start...end, opaque: opaque, clock, &actions)))
        case .openPartitions(let topic):
            actions.append(.reply(connection, openPartitions(topic, opaque: opaque, clock, &actions)))
        case .reload:
            actions.append(.reloadConfig(replyTo: connection, opaque: opaque))
        }
    }

    /// The most partitions that may be closed at once (what the closed-partitions file may hold).
    public static var maxClosedPartitions: Int { ClosedPartitionsFile.maxEntries }

    /// Closes `topic`'s partitions in `range`: persisted first (an unsaved close is not
    /// answered as done), then puts and gets answer 403 (§1.4). The topic must be configured or
    /// have data here, as the original required a configured topic. The partitions stay
    /// registered in ZooKeeper, as in the original.
    func closePartitions(_ topic: String, _ range: ClosedRange<Int32>, opaque: Int32, _ clock: NodeClock,
                         _ actions: inout [Action]) -> ResultResponse {
        guard machine.settings.topics.rule(for: topic) != nil || stores.partitions.contains(where: { $0.topic == topic }) else {
            return ResultResponse(code: StatusCode.badRequest,
                                  text: "topic \(topic) is neither configured nor stored on broker \(settings.brokerURI)", opaque: opaque)
        }
        var closed = machine.closedPartitions
        for partition in range { closed.insert(TopicPartition(topic, partition)) }
        guard closed.count <= Self.maxClosedPartitions else {
            return ResultResponse(code: StatusCode.badRequest,
                                  text: "at most \(Self.maxClosedPartitions) partitions may be closed at once", opaque: opaque)
        }
        if let failure = saveClosed(closed, opaque: opaque) { return failure }
        let newly = range.filter { !machine.closedPartitions.contains(TopicPartition(topic, $0)) }
        for partition in newly { feed(.partitionClosed(TopicPartition(topic, partition)), clock, &actions) }
        let text = "closed partitions \(range.lowerBound)..\(range.upperBound) of topic \(topic) on broker \(settings.brokerURI)"
            + (newly.count < range.count ? " (\(range.count - newly.count) closed already)" : "")
            + "; puts and gets to them answer 403 until open-partitions, also after a restart"
        actions.append(.notice(.admin(text)))
        return ResultResponse(code: StatusCode.success, text: text, opaque: opaque)
    }

    /// Opens every closed partition of `topic` (persisted first).
    func openPartitions(_ topic: String, opaque: Int32, _ clock: NodeClock, _ actions: inout [Action]) -> ResultResponse {
        let reopened = machine.closedPartitions.filter { $0.topic == topic }.sorted()
        guard !reopened.isEmpty else {
            return ResultResponse(code: StatusCode.success, text: "topic \(topic) has no closed partitions on broker \(settings.brokerURI)",
                                  opaque: opaque)
        }
        if let failure = saveClosed(machine.closedPartitions.subtracting(reopened), opaque: opaque) { return failure }
        for partition in reopened { feed(.partitionReopened(partition), clock, &actions) }
        let text = "opened partitions \(reopened.map { String($0.partition) }.joined(separator: ",")) of topic \(topic) "
            + "on broker \(settings.brokerURI)"
        actions.append(.notice(.admin(text)))
        return ResultResponse(code: StatusCode.success, text: text, opaque: opaque)
    }

    /// Persists the closed set; a failure is the answer (500) and changes nothing.
    private func saveClosed(_ closed: Set<TopicPartition>, opaque: Int32) -> ResultResponse? {
        do {
            try ClosedPartitionsFile.save(closed, storage: storage, dataPath: stores.defaultDataPath)
            return nil
        } catch {
            return ResultResponse(code: StatusCode.internalServerError,
                                  text: "cannot persist the closed partitions, nothing changed: \(error)", opaque: opaque)
        }
    }

    /// `reload` (§8.4): only the topic sections of the new file take effect. New and changed
    /// topics are usable at once (legality, partition counts, `stat`, filters), their ZooKeeper
    /// registration is renewed (`.registerTopic`), retention schedules of new `deleteWhen`s are
    /// armed, and `config` / `config_checksum` answer the new file. A change to anything else
    /// is reported as needing a restart and not applied; a file that does not parse changes
    /// nothing. Returns the outcome's text; with `replyTo` it is also the answer (200, or 500
    /// when nothing could be applied).
    @discardableResult
    public func reload(_ loaded: ConfigReload, replyTo: (connection: ConnectionID, opaque: Int32)? = nil, clock: NodeClock,
                       into actions: inout [Action]) -> String {
        func answer(_ code: Int32, _ text: String) -> String {
            if let replyTo { actions.append(.reply(replyTo.connection, ResultResponse(code: code, text: text, opaque: replyTo.opaque))) }
            actions.append(.notice(.admin(text)))
            return text
        }
        guard phase == .running else { return answer(StatusCode.internalServerError, "reload refused: the broker is stopping") }
        guard case .loaded(let new, let file, let path) = loaded else {
            guard case .unreadable(let why) = loaded else { return "" }
            return answer(StatusCode.internalServerError, "reload failed, the running config is unchanged: \(why)")
        }
        let started = try? ServerConfig(parsing: String(decoding: startedConfigFile, as: UTF8.self), path: path)
        let previous = try? ServerConfig(parsing: String(decoding: settings.configFile, as: UTF8.self), path: path)
        // Sections the driver added at start (in no file) are kept.
        let fileNames = Set((previous?.topics ?? started?.topics ?? []).map(\.name))
        let kept = config.topics.filter { section in
            !fileNames.contains(section.name) && !new.topics.contains { $0.name == section.name }
        }
        // A topic's partitions stay where they are: a changed `dataPath` of an existing section
        // waits for the restart (new partitions would otherwise land beside the open ones).
        var restartTopics: [String] = []
        let newSections = new.topics.map { section -> TopicSection in
            guard let current = config.topics.first(where: { $0.name == section.name }), current.dataPath != section.dataPath else {
                return section
            }
            restartTopics.append("dataPath of \(section.name)")
            var held = section
            held.dataPath = current.dataPath
            return held
        }
        let topics = newSections + kept
        let before = Dictionary(config.topics.map { ($0.name, Self.comparable($0)) }, uniquingKeysWith: { first, _ in first })
        let after = Dictionary(topics.map { ($0.name, Self.comparable($0)) }, uniquingKeysWith: { first, _ in first })
        let addedNames = after.keys.filter { before[$0] == nil }.sorted()
        let changedNames = after.keys.filter { before[$0] != nil && before[$0] != after[$0] }.sorted()
        let removedNames = before.keys.filter { after[$0] == nil }.sorted()
        let registeredBefore = Dictionary(topicsToRegister().map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })

        stores.replaceTopics(topics)
        feed(.topicsChanged(stores.topicRules()), clock, &actions)
        restartTopics += applyFlushPolicies(clock, &actions)
        settings.configFile = file
        configChecksum = Int64(CRC32.checksum(file))
        configLoadedWallMs = clock.wallMs
        for topic in topicsToRegister() where registeredBefore[topic.name] != topic {
            actions.append(.registerTopic(topic))
        }
        armRetentionTimers(clock, &actions)

        var parts = ["reloaded \(path)"]
        if addedNames.isEmpty && changedNames.isEmpty && removedNames.isEmpty {
            parts.append("no topic changed")
        } else {
            if !addedNames.isEmpty { parts.append("topics added: \(addedNames.joined(separator: ","))") }
            if !changedNames.isEmpty { parts.append("topics changed: \(changedNames.joined(separator: ","))") }
            if !removedNames.isEmpty {
                parts.append("topics removed: \(removedNames.joined(separator: ",")) (their stored messages stay readable)")
            }
        }
        let restart = (started.map { Self.changedKeys($0, new) } ?? []) + restartTopics
        if !restart.isEmpty {
            parts.append("not applied, needs a restart: \(restart.joined(separator: ","))")
        }
        return answer(StatusCode.success, parts.joined(separator: "; "))
    }

    /// Open logs take their topic's new `unflushThreshold`/`unflushInterval` at once; the sync
    /// schedule is looked at again (a sync due under the new values starts, a later deadline is
    /// armed). A switch between group commit and threshold mode waits for the restart: returns
    /// those topics for the answer's "needs a restart".
    func applyFlushPolicies(_ clock: NodeClock, _ actions: inout [Action]) -> [String] {
        var modeChanges = Set<String>()
        for partition in stores.partitions {
            guard let log = stores.log(partition) else { continue }
            let policy = stores.logConfig(of: partition.topic).flushPolicy
            guard policy != log.config.flushPolicy else { continue }
            if log.changeFlushPolicy(to: policy) {
                scheduleSync(partition, clock, &actions)
            } else {
                modeChanges.insert(partition.topic)
            }
        }
        return modeChanges.sorted().map { "flush mode (group commit or not) of \($0)" }
    }

    /// A section without its line number (moving a section in the file changes nothing).
    static func comparable(_ section: TopicSection) -> TopicSection {
        var section = section
        section.line = 0
        return section
    }

    /// The `[system]`, `[zookeeper]` and `[replication]` settings that differ between two parses
    /// of the file (reload applies none of them), by property name.
    static func changedKeys(_ old: ServerConfig, _ new: ServerConfig) -> [String] {
        var old = old, new = new
        old.topics = []
        new.topics = []
        guard old != new else { return [] }
        let newValues = Mirror(reflecting: new).children.map { "\($0.value)" }
        return Mirror(reflecting: old).children.enumerated().compactMap { index, child in
            index < newValues.count && "\(child.value)" != newValues[index] ? child.label : nil
        }
    }
}
