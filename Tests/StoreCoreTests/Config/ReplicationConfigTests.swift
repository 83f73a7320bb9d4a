import ProtocolCore
import Testing
@testable import StoreCore

extension ConfigTests {
    /// Issue 17: the `[replication]` section of server.ini — every key, its defaults, each error.
    @Suite struct Replication {
        static func file(_ replication: String) -> String {
            "[system]\nbrokerId=1\n[replication]\n\(replication)\n[topic=test]\n"
        }

        static func parse(_ replication: String) throws -> ReplicationConfig {
            try ConfigTests.parse(file(replication)).replication
        }

        static func error(_ replication: String) throws -> ConfigError {
            try #require(ConfigTests.error(file(replication)))
        }

        @Test func withoutTheSectionTheBrokerIsAMasterWithTheDefaults() throws {
            let config = try ConfigTests.parse("[system]\nbrokerId=1\n[topic=t]\n").replication
            #expect(config == ReplicationConfig())
            #expect(!config.isSlave && !config.synchronous && config.maxLagMs == 10_000)
            #expect(config.minInSyncReplicas == 2 && config.fetchHoldMs == 200)
            #expect(try Self.parse("") == ReplicationConfig(), "an empty section changes nothing")
        }

        @Test func slaveIdMakesASlaveWithTheOriginalsDefaults() throws {
            let slave = try #require(try Self.parse("slaveId=3").slave)
            #expect(slave == ReplicationConfig.Slave(slaveId: 3))
            #expect(slave.slaveGroup == "meta-slave-group_3" && slave.maxDelayMs == 500 && slave.master == nil)
            #expect(try Self.parse("slaveId=0").slave?.slaveId == 0)
            #expect(try Self.parse("slaveId=1023").slave?.slaveId == 1023)
        }

        @Test func everyKey() throws {
            let config = try Self.parse("""
                slaveId=7
                slaveGroup=replicas.b
                slaveMaxDelayInMills=2*1000
                master=10.0.0.5:8123
                autoSyncMasterConfig=false
                synchronous=true
                maxLagMs=3000
                minInSyncReplicas=3
                fetchHoldMs=0
                """)
            #expect(config.slave == ReplicationConfig.Slave(slaveId: 7, slaveGroup: "replicas.b", maxDelayMs: 2000,
                                                            master: "meta://10.0.0.5:8123"))
            #expect(config.synchronous && config.maxLagMs == 3000 && config.minInSyncReplicas == 3 && config.fetchHoldMs == 0)
        }

        @Test func failoverKeys() throws {
            let master = try Self.parse("failover=true\nrejoinSlaveId=5")
            #expect(master.failover && master.rejoinSlaveId == 5 && master.slave == nil)
            let slave = try Self.parse("slaveId=2\nfailover=true")
            #expect(slave.failover && slave.rejoinSlaveId == nil && slave.slave?.slaveId == 2)
            #expect(try Self.parse("").failover == false)
            #expect(try Self.error("failover=on").kind == .badBoolean)
            #expect(try Self.error("rejoinSlaveId=1024").kind == .outOfRange)
            let both = try Self.error("rejoinSlaveId=3\nslaveId=2")
            #expect(both.kind == .conflictingKeys && both.line == 4 && both.key == "rejoinSlaveId")
            #expect(both.message == "rejoinSlaveId is a master's setting: a slave rejoins under its slaveId; remove "
                + "rejoinSlaveId or slaveId")
        }

        /// A synchronous master without held fetches and a `maxLagMs` shorter than two of a
        /// slave's default polls would refuse every put: refused at start, saying what to change.
        @Test func aSynchronousMasterWithoutHeldFetchesNeedsALagAboveTheSlavesPolls() throws {
            let error = try Self.error("synchronous=true\nfetchHoldMs=0\nmaxLagMs=300")
            #expect(error.kind == .conflictingKeys && error.key == "fetchHoldMs")
            #expect(error.message.contains("set maxLagMs to 1000 or more"))
            #expect(try Self.parse("synchronous=true\nfetchHoldMs=0\nmaxLagMs=1000").maxLagMs == 1000)
            #expect(try Self.parse("synchronous=true\nfetchHoldMs=1\nmaxLagMs=300").fetchHoldMs == 1)
            #expect(try Self.parse("fetchHoldMs=0\nmaxLagMs=300").synchronous == false)
        }

        @Test func aMasterSetsOnlyItsOwnKeys() throws {
            let config = try Self.parse("synchronous=true\nminInSyncReplicas=1\nmaxLagMs=500\nfetchHoldMs=60000")
            #expect(config.slave == nil && config.synchronous && config.minInSyncReplicas == 1)
            #expect(config.maxLagMs == 500 && config.fetchHoldMs == 60_000)
        }

        @Test(arguments: [
            ("master=broker-a:8123", "meta://broker-a:8123"),
            ("master=meta://broker-a:8124", "meta://broker-a:8124"),
            ("master=[::1]:8123", "meta://[::1]:8123"),
            ("master = meta://[fe80::1]:1", "meta://[fe80::1]:1"),
        ])
        func masterIsStoredAsAURI(_ line: String, _ uri: String) throws {
            #expect(try Self.parse("slaveId=1\n\(line)").slave?.master == uri)
        }

        @Test(arguments: ["broker-a", "broker-a:", ":8123", "broker-a:0", "broker-a:65536", "broker-a:80x",
                          "meta://broker-a:8123/x", "meta://broker-a:8123?slaveId=1", "broker a:8123", "http://a:1"])
        func badMasterAddresses(_ text: String) throws {
            let e = try Self.error("slaveId=1\nmaster=\(text)")
            #expect(e.kind == .badAddress && e.line == 5 && e.section == "replication" && e.key == "master", "\(text)")
            #expect(e.message == "expected host:port or meta://host:port with a port in 1...65535 (IPv6 hosts in "
                + "brackets), got '\(text)'")
        }

        @Test func blankOptionalKeysKeepTheirDefaults() throws {
            let config = try Self.parse("slaveId=2\nslaveGroup=\nslaveMaxDelayInMills=\nmaster=\nsynchronous=\nmaxLagMs=")
            #expect(config.slave == ReplicationConfig.Slave(slaveId: 2))
            #expect(config.maxLagMs == 10_000 && !config.synchronous)
        }

        @Test func blankSlaveIdIsRefused() throws {
            let e = try Self.error("slaveId=")
            #expect(e.kind == .missingRequired && e.line == 4 && e.key == "slaveId")
            #expect(e.message == "a value is required; expected slaveId=<n> with n in 0...1023, or remove the line "
                + "(a broker without slaveId is a master)")
        }

        @Test(arguments: ["slaveGroup=g", "slaveMaxDelayInMills=100", "master=h:1", "autoSyncMasterConfig=false"])
        func slaveKeysWithoutSlaveIdAreRefused(_ line: String) throws {
            let e = try Self.error("synchronous=true\n\(line)")
            let key = String(line.prefix { $0 != "=" })
            #expect(e.kind == .missingRequired && e.line == 5 && e.section == "replication" && e.key == key)
            #expect(e.message == "\(key) is a slave's setting, and slaveId is missing; expected slaveId=<n> with n "
                + "in 0...1023 to make this broker a slave, or remove \(key)")
            #expect(e.description.hasPrefix("conf/test.ini:5: [replication] \(key): "))
        }

        @Test func slaveIdMayComeAfterTheSlavesOtherKeys() throws {
            #expect(try Self.parse("slaveGroup=g\nslaveId=4").slave == ReplicationConfig.Slave(slaveId: 4, slaveGroup: "g"))
        }

        @Test func autoSyncMasterConfigTrueIsNotSupported() throws {
            let e = try Self.error("slaveId=1\nautoSyncMasterConfig=true")
            #expect(e.kind == .unsupported && e.line == 5 && e.key == "autoSyncMasterConfig")
            #expect(e.message.hasPrefix("autoSyncMasterConfig=true is not supported"))
            #expect(e.message.contains("give the slave the master's [topic=...] sections in its own server.ini"))
            #expect(try Self.error("slaveId=1\nautoSyncMasterConfig=yes").kind == .badBoolean)
        }

        @Test(arguments: [
            ("slaveId=1024", "slaveId", "expected an integer in 0...1023, got 1024; each slave of a master needs its own id"),
            ("slaveId=-1", "slaveId", "expected an integer in 0...1023, got -1; each slave of a master needs its own id"),
            ("slaveId=1\nslaveMaxDelayInMills=0", "slaveMaxDelayInMills", "expected an integer in 1...2147483647, got 0"),
            ("maxLagMs=0", "maxLagMs", "expected an integer in 1...2147483647, got 0"),
            ("minInSyncReplicas=0", "minInSyncReplicas",
             "expected an integer in 1...16, got 0; the copies that must hold a synchronous put, this master's included"),
            ("minInSyncReplicas=17", "minInSyncReplicas",
             "expected an integer in 1...16, got 17; the copies that must hold a synchronous put, this master's included"),
            ("fetchHoldMs=-1", "fetchHoldMs", "expected an integer in 0...60000, got -1"),
            ("fetchHoldMs=60001", "fetchHoldMs", "expected an integer in 0...60000, got 60001"),
        ])
        func outOfRange(_ lines: String, _ key: String, _ message: String) throws {
            let e = try Self.error(lines)
            #expect(e.kind == .outOfRange && e.key == key && e.section == "replication" && e.message == message)
        }

        @Test func badValues() throws {
            #expect(try Self.error("slaveId=one").kind == .badNumber)
            #expect(try Self.error("synchronous=1").kind == .badBoolean)
            let group = try Self.error("slaveId=1\nslaveGroup=a/b")
            #expect(group.kind == .badGroupName && group.line == 5)
            #expect(group.message == MetaName.refusal("group", "a/b", .forbiddenByte(UInt8(ascii: "/"), at: 1)))
        }

        @Test func unknownKeysGetASuggestionAndKeysOfOtherSectionsTheirHome() throws {
            let e = try Self.error("slaveID=1")
            #expect(e.kind == .unknownKey && e.line == 4 && e.suggestion == "slaveId")
            #expect(e.message == "Invalid config key:slaveID,do you mean 'slaveId'?")
            #expect(try Self.error("slaveMaxDelayInMillis=5").suggestion == "slaveMaxDelayInMills")
            let system = try Self.error("brokerId=2")
            #expect(system.kind == .unknownKey && system.message.hasSuffix("(brokerId belongs in [system])"))
            let elsewhere = try #require(ConfigTests.error(ConfigTests.withSystem("maxLagMs=5")))
            #expect(elsewhere.kind == .unknownKey && elsewhere.message.hasSuffix("(maxLagMs belongs in [replication])"))
        }

        @Test func duplicatesAreRefused() throws {
            let key = try Self.error("slaveId=1\nslaveId=2")
            #expect(key.kind == .duplicateKey && key.line == 5)
            let section = try #require(ConfigTests.error(Self.file("slaveId=1") + "[replication]\nmaxLagMs=5\n"))
            #expect(section.kind == .duplicateSection && section.line == 6)
        }

        @Test func theSectionIsSuggestedForAMisspeltHeader() throws {
            let e = try #require(ConfigTests.error("[system]\nbrokerId=1\n[replicaton]\n[topic=t]\n"))
            #expect(e.kind == .unknownSection && e.suggestion == "replication")
        }
    }
}
