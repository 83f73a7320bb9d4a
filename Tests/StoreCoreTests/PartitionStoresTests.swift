import ProtocolCore
import Sim
import Testing
@testable import StoreCore

@Suite("Partition stores (reference §2.2, §2.8)")
struct PartitionStoresTests {
    let ini = """
        [system]
        brokerId=1
        numPartitions=2
        unflushThreshold=100
        [topic=test]
        [topic=fast]
        unflushThreshold=0
        dataPath=/ssd/meta
        [topic=log-*]
        numPartitions=8
        """

    func stores(_ disk: SimDisk) throws -> PartitionStores {
        PartitionStores(storage: disk, config: try ServerConfig(parsing: ini, path: "server.ini"), defaultDataPath: "/home/u/meta")
    }

    /// §2.2: the topic is the text before the last `-`, the partition a number after it.
    @Test func directoryNames() {
        #expect(PartitionStores.partition(fromDirectoryName: "test-0") == TopicPartition("test", 0))
        #expect(PartitionStores.partition(fromDirectoryName: "my-topic-12") == TopicPartition("my-topic", 12))
        #expect(PartitionStores.partition(fromDirectoryName: "test--1") == TopicPartition("test-", 1), "last '-' splits")
        for name in ["transactions", "test-", "-3", "test-x", "test-1a", "test-+1"] {
            #expect(PartitionStores.partition(fromDirectoryName: name) == nil, "\(name)")
        }
    }

    @Test func createsUnderTheTopicsDataPathWithItsFlushPolicy() throws {
        let disk = SimDisk()
        let s = try stores(disk)
        let fast = try s.logCreatingIfNeeded(TopicPartition("fast", 1), now: .zero)
        #expect(fast.directory == "/ssd/meta/fast-1")
        #expect(fast.config.flushPolicy.isGroupCommit)
        let test = try s.logCreatingIfNeeded(TopicPartition("test", 0), now: .zero)
        #expect(test.directory == "/home/u/meta/test-0")
        #expect(test.config.flushPolicy.unflushThreshold == 100)
        #expect(try s.logCreatingIfNeeded(TopicPartition("test", 0), now: .zero) === test)
        #expect(s.partitions == [TopicPartition("fast", 1), TopicPartition("test", 0)])
    }

    /// Issue 18: logs looked up lately are found without hashing (`RecentPartitions`); a log
    /// that is recreated (a slave re-copying a partition) is never answered from that memory.
    @Test func aRecreatedLogIsNotAnsweredFromTheRecentLookups() throws {
        let disk = SimDisk()
        let s = try stores(disk)
        let partitions = (0..<20).map { TopicPartition("log-\($0 % 3)", Int32($0 % 8)) }
        for partition in partitions { _ = try s.logCreatingIfNeeded(partition, now: .zero) }
        for _ in 0..<2 {
            for partition in partitions { #expect(s.log(partition)?.directory == "/home/u/meta/\(partition)") }
        }
        #expect(s.log(TopicPartition("log-9", 0)) == nil, "not a log, not remembered")
        let target = TopicPartition("log-1", 1)
        let old = try #require(s.log(target))
        let recreated = try s.recreate(target, startingAt: 4096, now: .zero)
        #expect(recreated !== old)
        #expect(s.log(target) === recreated, "the new log, not the remembered one")
    }

    @Test func recentPartitionsCompareNumberAndNameAndForgetTheOldest() {
        var recent = RecentPartitions<Int>()
        recent.remember(TopicPartition("a", 1), 1)
        recent.remember(TopicPartition("b", 1), 2)
        #expect(recent.value(for: TopicPartition("a", 1)) == 1 && recent.value(for: TopicPartition("b", 1)) == 2)
        #expect(recent.value(for: TopicPartition("a", 2)) == nil && recent.value(for: TopicPartition("c", 1)) == nil)
        for i in 0..<RecentPartitions<Int>.capacity { recent.remember(TopicPartition("x", Int32(i)), 100 + i) }
        #expect(recent.count == RecentPartitions<Int>.capacity)
        #expect(recent.value(for: TopicPartition("a", 1)) == nil, "the oldest went first")
        #expect(recent.value(for: TopicPartition("x", 15)) == 115)
        recent.removeAll()
        #expect(recent.count == 0 && recent.value(for: TopicPartition("x", 15)) == nil)
    }

    /// Every `<topic>-<n>` directory under every data path is opened and recovered at start,
    /// also of topics no longer configured; other directories are left alone.
    @Test func openAllFindsEveryPartition() throws {
        let disk = SimDisk()
        do {
            let s = try stores(disk)
            for partition in [TopicPartition("fast", 0), TopicPartition("test", 1), TopicPartition("log-web", 5)] {
                let log = try s.logCreatingIfNeeded(partition, now: .zero)
                _ = try log.append(msgId: 1, flag: 0, payload: [1, 2, 3], now: .zero)
                try log.syncNow(now: .zero)
            }
            s.closeAll()
        }
        try disk.makeDirectory("/home/u/meta/transactions")
        try disk.makeDirectory("/home/u/meta/old-topic-0")
        let s = try stores(disk)
        let reports = try s.openAll(now: .zero)
        #expect(s.partitions == [TopicPartition("fast", 0), TopicPartition("log-web", 5),
                                 TopicPartition("old-topic", 0), TopicPartition("test", 1)])
        #expect(reports[TopicPartition("test", 1)]?.scannedRecordCount == 1)
        #expect(s.log(TopicPartition("old-topic", 0))?.config.flushPolicy.unflushThreshold == 100, "system values")
    }

    /// §5.7: the broker machine's topic table carries each section's `group.<g>=` filters.
    @Test func topicRulesCarryTheFilters() throws {
        let config = try ServerConfig(parsing: "[system]\nbrokerId=1\n[topic=test]\ngroup.g1=red\n[topic=plain]\n", path: "s.ini")
        let rules = PartitionStores(storage: SimDisk(), config: config, defaultDataPath: "/d").topicRules()
        #expect(rules.hasFilters)
        #expect(rules.filter(for: "test", group: "g1") == .exact("red"))
        #expect(rules.filter(for: "test", group: "g2") == nil && rules.filter(for: "plain", group: "g1") == nil)
        #expect(try !stores(SimDisk()).topicRules().hasFilters)
    }

    /// A filtered get reads the bytes themselves; every other outcome is the plain read's.
    @Test func readBytesReturnsTheSlicesBytes() throws {
        let s = try stores(SimDisk())
        let log = try s.logCreatingIfNeeded(TopicPartition("test", 0), now: .zero)
        _ = try log.append(msgId: 1, flag: 0, payload: [1, 2, 3], now: .zero)
        try log.syncNow(now: .zero)
        let record = Record.encode(msgId: 1, flag: 0, payload: [1, 2, 3])
        #expect(s.readBytes(TopicPartition("test", 0), offset: 0, maxBytes: 100) == .bytes(record))
        #expect(s.readBytes(TopicPartition("test", 0), offset: 0, maxBytes: 10) == .bytes(Array(record.prefix(10))))
        #expect(s.readBytes(TopicPartition("test", 0), offset: 23, maxBytes: 10) == .atOrBeyondEnd(maxOffset: 23))
    }

    @Test func samePartitionUnderTwoDataPathsIsRefused() throws {
        let disk = SimDisk()
        try disk.makeDirectory("/home/u/meta/fast-0")
        try disk.makeDirectory("/ssd/meta/fast-0")
        #expect(throws: StoresError.duplicatePartition(TopicPartition("fast", 0), ["/home/u/meta/fast-0", "/ssd/meta/fast-0"])) {
            try stores(disk).openAll(now: .zero)
        }
    }

    /// The broker machine's view of legality and of reads.
    @Test func rulesAndReadsForTheBrokerMachine() throws {
        let disk = SimDisk()
        let s = try stores(disk)
        let rules = s.topicRules()
        #expect(rules.numPartitions(of: "test") == 2)
        #expect(rules.numPartitions(of: "log-app") == 8)
        #expect(rules.numPartitions(of: "other") == nil)
        let partition = TopicPartition("test", 0)
        #expect(s.read(partition, offset: 0, maxBytes: 10).0 == .atOrBeyondEnd(maxOffset: 0))
        let log = try s.logCreatingIfNeeded(partition, now: .zero)
        _ = try log.append(msgId: 1, flag: 0, payload: [1, 2, 3], now: .zero)
        try log.syncNow(now: .zero)
        let (read, slice) = s.read(partition, offset: 0, maxBytes: 10)
        #expect(read == .slice(count: 10))
        #expect(slice?.segmentPath == "/home/u/meta/test-0/00000000000000000000.meta")
        #expect(s.read(partition, offset: -1, maxBytes: 10).0 == .belowMinimum(minOffset: 0))
        #expect(s.read(partition, offset: 23, maxBytes: 10).0 == .atOrBeyondEnd(maxOffset: 23))
    }

    /// Issue 14, defense in depth: whatever asks, a topic that is not one safe path component
    /// (`MetaName`) never becomes a directory — nothing is created, inside or outside the data path.
    @Test func aTopicOutsideTheNameRuleIsNeverCreated() throws {
        let disk = SimDisk()
        let s = try stores(disk)
        for topic in ["log-/../../escaped", "log-a/b", "..", "log-a@b", "log-\u{0}"] {
            let partition = TopicPartition(topic, 0)
            #expect(throws: StoresError.invalidTopicName(topic, MetaName.problem(with: topic)!)) {
                try s.logCreatingIfNeeded(partition, now: .zero)
            }
            #expect(s.log(partition) == nil)
        }
        #expect(disk.filePaths().isEmpty)
        #expect(!disk.fileExists("/home/u/meta") && !disk.fileExists("/home/escaped-0") && !disk.fileExists("/escaped-0"))
        let error = StoresError.invalidTopicName("log-a/b", .forbiddenByte(UInt8(ascii: "/"), at: 5))
        #expect(error.description.hasPrefix(#"topic name "log-a/b" is not valid: '/' at byte 5; expected"#))
    }

    /// Directories already on disk stay readable whatever their name: a partition whose topic
    /// fails the rule (an older broker wrote it) is opened and reported; a directory with a `-`
    /// that is not a partition (such as `w-a/` left by a put to `w-a/b`) is reported, not loaded
    /// and not touched.
    @Test func existingDirectoriesOutsideTheRuleAreKeptAndReported() throws {
        let disk = SimDisk()
        try disk.makeDirectory("/home/u/meta/caf\u{E9}-0")
        try disk.makeDirectory("/home/u/meta/log-a/b-0")
        try disk.makeDirectory("/home/u/meta/test-1")
        let s = try stores(disk)
        _ = try s.openAll(now: .zero)
        #expect(s.partitions == [TopicPartition("caf\u{E9}", 0), TopicPartition("test", 1)])
        #expect(s.openNotices == [
            .notAPartition(path: "/home/u/meta/log-a"),
            .nameOutsideRule(TopicPartition("caf\u{E9}", 0), path: "/home/u/meta/caf\u{E9}-0", .forbiddenByte(0xC3, at: 3)),
        ])
        #expect(s.openNotices[1].description.hasSuffix("its messages stay readable, but puts to this topic are refused"))
        #expect(disk.isDirectory("/home/u/meta/log-a/b-0"))
    }
}
