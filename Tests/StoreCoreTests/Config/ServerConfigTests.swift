import Testing
@testable import StoreCore

extension ConfigTests {
    /// Keys, defaults and MetaQ's own sample files (reference §8.1–§8.3).
    @Suite struct Keys {
        /// The keys and values of MetaQ's `metamorphosis-server-wrapper/conf/server.ini`.
        static let metaqWrapperSample = """
            [system]
            brokerId=0
            numPartitions=1
            serverPort=8123
            unflushThreshold=0
            unflushInterval=10000
            maxSegmentSize=1073741824
            maxTransferSize=1048576
            deletePolicy=delete,168
            deleteWhen=0 0 6,18 * * ?
            flushTxLogAtCommit=1

            [zookeeper]
            zk.zkConnect=localhost:2181
            zk.zkSessionTimeoutMs=30000
            zk.zkConnectionTimeoutMs=30000
            zk.zkSyncTimeMs=5000

            ;; Topics section
            [topic=test]
            stat=true

            [topic=meta-test]
            stat=true
            """

        /// The keys and values of MetaQ's `conf/sample.server.ini` (its comments left out), including
        /// the blank values it uses to mean "default".
        static let metaqFullSample = """
            [system]
            brokerId=0
            hostName=
            numPartitions=1
            serverPort=8123
            dataPath=
            dataLogPath=
            loadMessageStoresInParallel=false
            unflushThreshold=1000
            unflushInterval=10000
            maxSegmentSize=1073741824
            maxTransferSize=1048576
            getProcessThreadCount=80
            putProcessThreadCount=80
            deletePolicy=delete,168
            deleteWhen=0 0 6,18 * * ?
            maxCheckpoints=3
            checkpointInterval=3600000
            maxTxTimeoutTimerCapacity=30000
            maxTxTimeoutInSeconds=60
            flushTxLogAtCommit=1
            acceptPublish=true
            acceptSubscribe=true
            updateConsumerOffsets=false
            stat=true

            [zookeeper]
            zk.zkEnable=true
            zk.zkConnect=localhost:2181
            zk.zkSessionTimeoutMs=30000
            zk.zkConnectionTimeoutMs=30000
            zk.zkSyncTimeMs=5000

            [topic=test]
            stat=true
            numPartitions=10
            deletePolicy=
            unflushInterval=
            unflushThreshold=
            deleteWhen=0 0 6,18 * * ?
            """

        @Test func metaqWrapperSampleParses() throws {
            let config = try ConfigTests.parse(Self.metaqWrapperSample)
            var expected = ServerConfig(brokerId: 0)
            expected.flushPolicy = FlushPolicy(unflushThreshold: 0, unflushIntervalMs: 10_000)
            expected.zooKeeper.connect = "localhost:2181"
            var test = TopicSection(name: "test", line: 20)
            test.stat = true
            var metaTest = TopicSection(name: "meta-test", line: 23)
            metaTest.stat = true
            expected.topics = [test, metaTest]
            #expect(config == expected)
            #expect(config.flushPolicy.isGroupCommit)
        }

        @Test func metaqFullSampleParsesWithBlanksAsDefaults() throws {
            let config = try ConfigTests.parse(Self.metaqFullSample)
            #expect(config.hostName == nil)
            #expect(config.dataPath == nil)
            #expect(config.dataLogPath == nil)
            #expect(config.getProcessThreadCount == 80)
            #expect(config.putProcessThreadCount == 80)
            #expect(config.flushPolicy == .metaqDefault)
            #expect(config.stat)
            #expect(config.zooKeeper == ZooKeeperConfig(connect: "localhost:2181"))
            let test = try #require(config.topicConfig(for: "test"))
            #expect(test.numPartitions == 10)
            #expect(test.flushPolicy == .metaqDefault)           // blank overrides inherit
            #expect(test.deletePolicy == .metaqDefault)
            #expect(config.topics[0].deletePolicy == nil)
            #expect(config.topics[0].unflushThreshold == nil)
        }

        @Test func minimalFileGetsMetaqDefaults() throws {
            let config = try ConfigTests.parse("[system]\nbrokerId=0\n[topic=test]\n")
            var expected = ServerConfig(brokerId: 0)
            expected.topics = [TopicSection(name: "test", line: 3)]
            #expect(config == expected)
            #expect(config.serverPort == 8123)
            #expect(config.dashboardHttpPort == 8120)
            #expect(config.numPartitions == 1)
            #expect(config.flushPolicy == FlushPolicy(unflushThreshold: 1000, unflushIntervalMs: 10_000))
            #expect(config.maxSegmentSize == 1_073_741_824)
            #expect(config.maxTransferSize == 1_048_576)
            #expect(config.deletePolicy.description == "delete,168")
            #expect(config.deleteWhen.description == "0 0 6,18 * * ?")
            #expect(config.quartzThreadCount == 5)
            #expect(config.maxCheckpoints == 3)
            #expect(config.checkpointIntervalMs == 3_600_000)
            #expect(config.maxTxTimeoutTimerCapacity == 30_000)
            #expect(config.flushTxLogAtCommit == .everyCommit)
            #expect(config.maxTxTimeoutSeconds == 60)
            #expect(config.acceptPublish && config.acceptSubscribe)
            #expect(!config.stat && !config.updateConsumerOffsets && !config.loadMessageStoresInParallel)
            #expect(config.zooKeeper == ZooKeeperConfig(connect: nil, sessionTimeoutMs: 30_000,
                                                        connectionTimeoutMs: 30_000, syncTimeMs: 5000,
                                                        isEnabled: true, root: "/meta"))
        }

        @Test func everySystemAndZooKeeperKey() throws {
            let text = """
                [system]
                brokerId=1023
                hostName=10.0.0.7
                serverPort=9123
                dashboardHttpPort=9120
                dataPath=/data/meta
                dataLogPath=/journal
                appClassPath=/opt/filters/
                numPartitions=4
                unflushThreshold=100
                unflushInterval=5 * 1000
                maxSegmentSize=512*1024*1024
                maxTransferSize=256*1024
                getProcessThreadCount=16
                putProcessThreadCount=32
                deletePolicy=archive,72s,true
                deleteWhen=0 30 3 * * ?
                quartzThreadCount=2
                maxCheckpoints=7
                checkpointInterval=24*60*60*1000
                maxTxTimeoutTimerCapacity=1000
                flushTxLogAtCommit=2
                maxTxTimeoutInSeconds=120
                acceptPublish=FALSE
                acceptSubscribe=False
                stat=TRUE
                updateConsumerOffsets=true
                loadMessageStoresInParallel=true
                [zookeeper]
                zk.zkConnect=zk1:2181,zk2:2181
                zk.zkSessionTimeoutMs=60000
                zk.zkConnectionTimeoutMs=15000
                zk.zkSyncTimeMs=0
                zk.zkEnable=false
                zk.zkRoot=/metaq-test
                [topic=t]
                """
            let c = try ConfigTests.parse(text)
            #expect(c.brokerId == 1023)
            #expect(c.hostName == "10.0.0.7")
            #expect(c.serverPort == 9123 && c.dashboardHttpPort == 9120)
            #expect(c.dataPath == "/data/meta" && c.dataLogPath == "/journal" && c.appClassPath == "/opt/filters/")
            #expect(c.numPartitions == 4)
            #expect(c.flushPolicy == FlushPolicy(unflushThreshold: 100, unflushIntervalMs: 5000))
            #expect(c.maxSegmentSize == 536_870_912 && c.maxTransferSize == 262_144)
            #expect(c.getProcessThreadCount == 16 && c.putProcessThreadCount == 32)
            #expect(c.deletePolicy == (try DeletePolicy(parsing: "archive,72s,true")))
            #expect(c.deletePolicy.maxAgeMs == 72_000)
            #expect(c.deleteWhen == (try CronExpression(parsing: "0 30 3 * * ?")))
            #expect(c.quartzThreadCount == 2 && c.maxCheckpoints == 7)
            #expect(c.checkpointIntervalMs == 86_400_000)
            #expect(c.maxTxTimeoutTimerCapacity == 1000 && c.maxTxTimeoutSeconds == 120)
            #expect(c.flushTxLogAtCommit == .everySecond)
            #expect(!c.acceptPublish && !c.acceptSubscribe)
            #expect(c.stat && c.updateConsumerOffsets && c.loadMessageStoresInParallel)
            #expect(c.zooKeeper == ZooKeeperConfig(connect: "zk1:2181,zk2:2181", sessionTimeoutMs: 60_000,
                                                   connectionTimeoutMs: 15_000, syncTimeMs: 0,
                                                   isEnabled: false, root: "/metaq-test"))
        }

        /// Guards the key lists used for suggestions against drifting from what the parser accepts.
        @Test func everyListedKeyIsAccepted() throws {
            let sample: [String: String] = [
                "deletePolicy": "delete,1", "deleteWhen": "0 0 6 * * ?", "acceptPublish": "true",
                "acceptSubscribe": "true", "stat": "true", "updateConsumerOffsets": "true",
                "loadMessageStoresInParallel": "true", "zk.zkEnable": "true", "brokerId": "1",
                "serverPort": "1", "dashboardHttpPort": "1", "flushTxLogAtCommit": "0", "maxSegmentSize": "20",
                "maxPartialFrameBytes": "2097152", "maxQueuedRequestBytes": "2097152",
            ]
            func line(_ key: String) -> String { "\(key)=\(sample[key] ?? "1")" }
            let system = ServerConfig.systemKeys.map(line).joined(separator: "\n")
            let zooKeeper = ServerConfig.zooKeeperKeys.map(line).joined(separator: "\n")
            let topic = ServerConfig.topicKeys.map(line).joined(separator: "\n")
            let text = "[system]\n\(system)\n[zookeeper]\n\(zooKeeper)\n[topic=t]\n\(topic)\ngroup.g=red\n"
            let config = try ConfigTests.parse(text)
            #expect(config.topics[0].stat == true)
            #expect(config.topics[0].groupFilters == [GroupFilter(group: "g", filter: .exact("red"))])
        }

        @Test func zooKeeperConnectIsNotRequiredByTheParser() throws {
            let config = try ConfigTests.parse("[system]\nbrokerId=1\n[zookeeper]\nzk.zkEnable=true\n[topic=t]\n")
            #expect(config.zooKeeper.isEnabled)
            #expect(config.zooKeeper.connect == nil)
        }

        /// Issue 14's limits (DESIGN.md §8): defaults, and each accepted at its bound and refused past it.
        @Test func limitKeys() throws {
            let defaults = try ConfigTests.parse("[system]\nbrokerId=0\n[topic=t]\n")
            #expect(defaults.maxConnections == 10_000)
            #expect(defaults.maxPartialFrameBytes == 64 << 20)
            #expect(defaults.partialFrameTimeoutMs == 30_000)
            #expect(defaults.listenBacklog == 1024)
            let lowest = try ConfigTests.parse("""
                [system]
                brokerId=0
                maxConnections=1
                maxPartialFrameBytes=2*1024*1024
                partialFrameTimeoutMs=1
                listenBacklog=1
                [topic=t]
                """)
            #expect(lowest.maxConnections == 1 && lowest.maxPartialFrameBytes == 2 << 20)
            #expect(lowest.partialFrameTimeoutMs == 1 && lowest.listenBacklog == 1)
            for (key, value, expected) in [("maxConnections", "0", "1...2147483647"),
                                           ("maxPartialFrameBytes", "2*1024*1024-1", "2097152...9223372036854775807"),
                                           ("partialFrameTimeoutMs", "0", "1...2147483647"),
                                           ("listenBacklog", "2147483648", "1...2147483647")] {
                let error = #expect(throws: ConfigError.self) {
                    try ConfigTests.parse("[system]\nbrokerId=0\n\(key)=\(value)\n[topic=t]\n")
                }
                #expect(error?.kind == .outOfRange && error?.key == key && error?.line == 3)
                #expect(error?.message.contains("expected an integer in \(expected)") == true, "\(String(describing: error))")
            }
        }

        /// Issue 18's thread keys: defaults, bounds, and what each refuses.
        @Test func threadKeys() throws {
            let defaults = try ConfigTests.parse("[system]\nbrokerId=0\n[topic=t]\n")
            #expect(defaults.syncThreads == 8 && defaults.ioThreads == nil && defaults.maxQueuedRequestBytes == 64 << 20)
            #expect(defaults.ioThreads(cpus: 2) == 0 && defaults.ioThreads(cpus: 4) == 1, "auto")
            let auto = try ConfigTests.parse("[system]\nbrokerId=0\nioThreads=auto\n[topic=t]\n")
            #expect(auto.ioThreads == nil)
            let edges = try ConfigTests.parse("[system]\nbrokerId=0\nsyncThreads=1\nioThreads=0\n[topic=t]\n")
            #expect(edges.syncThreads == 1 && edges.ioThreads == 0 && edges.ioThreads(cpus: 8) == 0)
            let highest = try ConfigTests.parse("[system]\nbrokerId=0\nsyncThreads=256\nioThreads=64\n[topic=t]\n")
            #expect(highest.syncThreads == 256 && highest.ioThreads == 64)
            for (key, value, expected) in [("syncThreads", "0", "1...256"), ("syncThreads", "257", "1...256"),
                                           ("ioThreads", "-1", "0...64"), ("ioThreads", "65", "0...64"),
                                           ("maxQueuedRequestBytes", "2*1024*1024-1", "2097152...9223372036854775807")] {
                let error = #expect(throws: ConfigError.self) {
                    try ConfigTests.parse("[system]\nbrokerId=0\n\(key)=\(value)\n[topic=t]\n")
                }
                #expect(error?.kind == .outOfRange && error?.key == key && error?.line == 3)
                #expect(error?.message.contains("expected an integer in \(expected)") == true, "\(String(describing: error))")
            }
        }

        @Test func brokerIdBoundsAreInclusive() throws {
            #expect(try ConfigTests.parse("[system]\nbrokerId=0\n[topic=t]\n").brokerId == 0)
            #expect(try ConfigTests.parse("[system]\nbrokerId=1023\n[topic=t]\n").brokerId == 1023)
            #expect(try ConfigTests.parse("[system]\nbrokerId=1000+23\n[topic=t]\n").brokerId == 1023)
        }
    }
}
