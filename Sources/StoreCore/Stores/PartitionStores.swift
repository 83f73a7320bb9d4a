import ProtocolCore

/// Every partition log of one broker (reference §2.2, §2.8): found on disk at start, created on
/// the first put to a legal topic, each under its topic's data path with its topic's flush policy.
///
/// The glue between `BrokerMachine` actions and `PartitionLog`s, kept here (pure, over `Storage`)
/// so the Linux runtime and the simulator drive the same code. Single owner, like the logs.
public final class PartitionStores {
    /// Fixed but for its topic sections, which `replaceTopics` swaps (reload, §8.4).
    public private(set) var config: ServerConfig
    /// Where topics without their own `dataPath` live (MetaQ: `${user.home}/meta`, resolved by the
    /// runtime, which knows the home directory).
    public let defaultDataPath: String
    let storage: any Storage
    @exclusivity(unchecked) var logs: [TopicPartition: PartitionLog] = [:]
    /// Logs looked up lately (every put looks its log up): found without hashing the topic.
    /// Forgotten whenever a log is removed from `logs`.
    @exclusivity(unchecked) var recentLogs = RecentPartitions<PartitionLog>()
    /// What `openAll` found on disk that deserves an operator's attention; the runtime logs these.
    public private(set) var openNotices: [OpenNotice] = []

    public init(storage: any Storage, config: ServerConfig, defaultDataPath: String) {
        self.storage = storage
        self.config = config
        self.defaultDataPath = config.dataPath ?? defaultDataPath
    }

    /// `reload` (§8.4): the topic sections become `topics`; everything else stays as started.
    /// Logs created from now on take their topic's new settings; open logs keep the flush
    /// policy they were opened with until the next start.
    public func replaceTopics(_ topics: [TopicSection]) {
        config.topics = topics
    }

    /// The partitions that have a log, sorted.
    public var partitions: [TopicPartition] { logs.keys.sorted() }

    public func log(_ partition: TopicPartition) -> PartitionLog? {
        if let log = recentLogs.value(for: partition) { return log }
        guard let log = logs[partition] else { return nil }
        recentLogs.remember(partition, log)
        return log
    }

    /// How many partitions have a log.
    public var partitionCount: Int { logs.count }

    /// The data path of `topic`: its section's `dataPath`, else the broker's.
    public func dataPath(of topic: String) -> String {
        config.topicConfig(for: topic)?.dataPath ?? defaultDataPath
    }

    /// The log settings of `topic`: its flush policy (topic over system), the system segment size.
    public func logConfig(of topic: String) -> LogConfig {
        var log = LogConfig(maxSegmentSize: config.maxSegmentSize,
                            flushPolicy: config.topicConfig(for: topic)?.flushPolicy ?? config.flushPolicy)
        log.canaryTrustsStaleCleanStopMark = canaryTrustsStaleCleanStopMarks
        return log
    }

    /// Simulation canary: every log opened trusts a stale clean-stop mark
    /// (`LogConfig.canaryTrustsStaleCleanStopMark`). False in production.
    public var canaryTrustsStaleCleanStopMarks = false

    /// The topic table the broker machine decides legality and partition counts with.
    public func topicRules() -> TopicRules {
        TopicRules(config.topics.map { section in
            .init(pattern: section.name, numPartitions: Int32(section.numPartitions ?? config.numPartitions),
                  stat: config.topicConfig(for: section.name)?.stat ?? false,
                  filters: Dictionary(section.groupFilters.map { ($0.group, $0.filter) }, uniquingKeysWith: { first, _ in first }))
        })
    }

    /// Opens and recovers every partition directory under every data path. As in MetaQ, every
    /// subdirectory whose name has a `-` followed by a partition number is a partition, also of
    /// topics no longer configured (their data stays readable).
    ///
    /// A partition whose topic fails `MetaName` (written before the rule existed, or by the
    /// original broker) is still opened: its messages stay readable, although no put can reach
    /// it any more. It is listed in `openNotices`, as is a directory with a `-` that is not a
    /// partition directory (nothing in it is loaded, nothing is deleted).
    public func openAll(now: Instant) throws(StoresError) -> [TopicPartition: RecoveryReport] {
        let found = try partitionDirectories()
        var reports: [TopicPartition: RecoveryReport] = [:]
        for (partition, path) in found.sorted(by: { $0.key < $1.key }) {
            if let problem = MetaName.problem(with: partition.topic) {
                openNotices.append(.nameOutsideRule(partition, path: path, problem))
            }
            do {
                let log = try PartitionLog.open(storage: storage, directory: path, config: logConfig(of: partition.topic), now: now)
                logs[partition] = log
                reports[partition] = log.recoveryReport
            } catch {
                throw .log(partition, error)
            }
        }
        return reports
    }

    /// The partition directories under every data path; other directories with a `-` go to
    /// `openNotices`.
    private func partitionDirectories() throws(StoresError) -> [TopicPartition: String] {
        var found: [TopicPartition: String] = [:]
        for root in dataPaths() where storage.isDirectory(root) {
            let names: [String]
            do { names = try storage.list(root).sorted() } catch { throw .storage(Self.storageError(error, root)) }
            for name in names {
                let path = StoragePath.join(root, name)
                guard storage.isDirectory(path) else { continue }
                guard let partition = Self.partition(fromDirectoryName: name) else {
                    if name.contains("-") { openNotices.append(.notAPartition(path: path)) }
                    continue
                }
                if let other = found[partition] { throw .duplicatePartition(partition, [other, path]) }
                found[partition] = path
            }
        }
        return found
    }

    /// The log of `partition`, created (directory and first segment) if it has none yet. A topic
    /// that fails `MetaName` is refused before it can become a path (the broker machine refuses
    /// such puts already; this guards every other way to get here).
    /// `startingAt`: where a new log begins (a slave's copy starts at its master's first
    /// segment, issue 17); 0 for a put's.
    public func logCreatingIfNeeded(_ partition: TopicPartition, now: Instant,
                                    startingAt: Int64 = 0) throws(StoresError) -> PartitionLog {
        if let log = logs[partition] { return log }
        if let problem = MetaName.problem(with: partition.topic) { throw .invalidTopicName(partition.topic, problem) }
        let directory = StoragePath.join(dataPath(of: partition.topic), partition.description)
        do {
            let log = try PartitionLog.open(storage: storage, directory: directory, config: logConfig(of: partition.topic), now: now,
                                            offsetIfCreate: startingAt)
            logs[partition] = log
            return log
        } catch {
            throw .log(partition, error)
        }
    }

    /// Replaces the log of `partition` with an empty one starting at `offset`: a slave whose copy
    /// ends before its master's first segment (the master's retention removed what the slave
    /// had not copied yet, issue 17). Every segment of the old log is removed; the caller makes
    /// sure no sync of it runs.
    public func recreate(_ partition: TopicPartition, startingAt offset: Int64, now: Instant) throws(StoresError) -> PartitionLog {
        recentLogs.removeAll()
        if let old = logs.removeValue(forKey: partition) {
            let directory = old.directory
            old.close()
            do {
                for name in try storage.list(directory) { try storage.remove(StoragePath.join(directory, name)) }
                try storage.syncDirectory(directory)
            } catch {
                throw .log(partition, .failed(PartitionLog.storageError(error, path: directory)))
            }
        }
        return try logCreatingIfNeeded(partition, now: now, startingAt: offset)
    }

    /// Reads for the broker machine: what to tell it, and the slice to send when there is one.
    public func read(_ partition: TopicPartition, offset: Int64, maxBytes: Int) -> (PartitionRead, LogSlice?) {
        guard let log = logs[partition] else { return (.atOrBeyondEnd(maxOffset: 0), nil) }
        switch log.read(offset: offset, maxBytes: maxBytes) {
        case .slice(let slice): return (.slice(count: slice.count), slice)
        case .belowMinimum(let minOffset): return (.belowMinimum(minOffset: minOffset), nil)
        case .atOrBeyondEnd(let maxOffset): return (.atOrBeyondEnd(maxOffset: maxOffset), nil)
        case .damaged(let resumeAt): return (.damaged(resumeAt: resumeAt), nil)
        }
    }

    /// `read` for a filtered `get` (§5.7): the bytes themselves instead of a slice to send.
    public func readBytes(_ partition: TopicPartition, offset: Int64, maxBytes: Int) -> PartitionRead {
        let (read, slice) = self.read(partition, offset: offset, maxBytes: maxBytes)
        guard let slice, let log = logs[partition] else { return read }
        do { return .bytes(try log.bytes(of: slice)) } catch { return .failed("\(error)") }
    }

    /// `stats` as the stores see it (§9): each partition's offsets, record count and bytes, the
    /// configured topics (patterns left out) and their publish/subscribe flags. The caller adds
    /// what only the process knows.
    public func statsSnapshot(pid: Int, uptimeSeconds: Int64, threads: Int, currentConnections: Int,
                              configChecksum: Int64) -> StatsSnapshot {
        let partitionStats = partitions.compactMap { partition -> StatsSnapshot.PartitionStats? in
            guard let log = logs[partition] else { return nil }
            return .init(partition: partition, minOffset: log.minOffset, maxOffset: log.maxOffset,
                         messageCount: Int64(log.recordCount), bytes: log.maxOffset - log.minOffset)
        }
        let topics = config.topics.map(\.name).filter { !$0.contains("*") }
        let flags = topics.compactMap { topic in
            config.topicConfig(for: topic).map {
                StatsSnapshot.TopicFlags(topic: topic, acceptPublish: $0.acceptPublish, acceptSubscribe: $0.acceptSubscribe)
            }
        }
        return StatsSnapshot(pid: pid, uptimeSeconds: uptimeSeconds, threads: threads, currentConnections: currentConnections,
                             configChecksum: configChecksum, isSlave: false, partitions: partitionStats,
                             configuredTopics: topics, topicFlags: flags)
    }

    /// Closes every log. `clean` (the graceful stop, after its final syncs): each log that is
    /// healthy and fully synced leaves its clean-stop mark (`PartitionLog.close(clean:)`).
    /// Returns how many did.
    @discardableResult
    public func closeAll(clean: Bool = false) -> Int {
        var marked = 0
        for partition in partitions where logs[partition]?.close(clean: clean) == true { marked += 1 }
        logs.removeAll()
        return marked
    }

    /// `<topic>-<n>`: the topic is the text before the last `-` (topics may contain `-`), the
    /// partition a non-negative number after it (§2.2). Anything else (`transactions`) is not one.
    public static func partition(fromDirectoryName name: String) -> TopicPartition? {
        guard let dash = name.lastIndex(of: "-"), dash != name.startIndex else { return nil }
        let digits = name[name.index(after: dash)...]
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int32(digits) else { return nil }
        return TopicPartition(String(name[..<dash]), n)
    }

    /// The broker's data path and every topic section's own, sorted and distinct.
    func dataPaths() -> [String] {
        Array(Set([defaultDataPath] + config.topics.compactMap(\.dataPath))).sorted()
    }

    static func storageError(_ error: any Error, _ path: String) -> StorageError {
        (error as? StorageError) ?? .io(path: path, detail: "\(error)")
    }
}

/// Why the stores could not be opened or a log created.
public enum StoresError: Error, Equatable, CustomStringConvertible {
    case storage(StorageError)
    /// The same topic-partition directory under two data paths: which one is the log is unclear.
    case duplicatePartition(TopicPartition, [String])
    case log(TopicPartition, LogError)
    /// The topic cannot become a directory name (`MetaName`).
    case invalidTopicName(String, MetaName.Problem)

    public var description: String {
        switch self {
        case .storage(let error): return error.description
        case .duplicatePartition(let partition, let paths):
            return "partition \(partition) exists under more than one data path: \(paths.joined(separator: ", "))"
        case .log(let partition, let error): return "partition \(partition): \(error)"
        case .invalidTopicName(let topic, let problem): return MetaName.refusal("topic", topic, problem)
        }
    }
}

/// Something `PartitionStores.openAll` found on disk and kept, that an operator should know about.
public enum OpenNotice: Equatable, Sendable, CustomStringConvertible {
    /// A partition directory whose topic is not a valid name (`MetaName`): loaded and readable,
    /// but puts to the topic are refused.
    case nameOutsideRule(TopicPartition, path: String, MetaName.Problem)
    /// A directory with a `-` in its name that is not `<topic>-<partition>`: not loaded, left as it is.
    case notAPartition(path: String)

    public var description: String {
        switch self {
        case .nameOutsideRule(let partition, let path, let problem):
            return "partition directory \(path): \(MetaName.refusal("topic", partition.topic, problem)); "
                + "its messages stay readable, but puts to this topic are refused"
        case .notAPartition(let path):
            return "directory \(path) is not a partition directory (<topic>-<partition>); nothing in it is loaded"
        }
    }
}
