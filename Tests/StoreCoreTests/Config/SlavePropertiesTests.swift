import Testing
@testable import StoreCore

extension ConfigTests {
    /// Issue 17: the original's `async_slave.properties` (reference §6.1), read by
    /// `metaq-server start --slave <file>`.
    @Suite struct SlaveProperties {
        static let path = "conf/async_slave.properties"

        static func parse(_ text: String) throws(ConfigError) -> ReplicationConfig.Slave {
            try ReplicationConfig.Slave(parsingProperties: Array(text.utf8), path: path)
        }

        static func error(_ text: String) throws -> ConfigError {
            do throws(ConfigError) {
                let slave = try parse(text)
                Issue.record("parsed: \(slave)")
                throw ConfigError(kind: .malformedLine, path: "", line: nil, message: "no error")
            } catch {
                return error
            }
        }

        /// The original's file as shipped, with `autoSyncMasterConfig` set to what we support.
        @Test func theOriginalsFile() throws {
            let slave = try Self.parse("""
                #slave编号,大于等于0表示作为slave启动,同一个master下的slave编号应该设不同值.
                slaveId=0

                #作为slave启动时向master订阅消息的group,如果没配置则默认为meta-slave-group_${slaveId}
                slaveGroup=meta-slave-group

                #slave数据同步的最大延时,单位毫秒
                slaveMaxDelayInMills=500

                #是否自动从master同步server.ini
                autoSyncMasterConfig=false
                """)
            #expect(slave == ReplicationConfig.Slave(slaveId: 0, slaveGroup: "meta-slave-group", maxDelayMs: 500))
        }

        @Test func defaults() throws {
            #expect(try Self.parse("slaveId=5") == ReplicationConfig.Slave(slaveId: 5))
            let slave = try Self.parse("slaveId=5\n")
            #expect(slave.slaveGroup == "meta-slave-group_5" && slave.maxDelayMs == 500 && slave.master == nil)
        }

        @Test func everyKey() throws {
            let slave = try Self.parse("slaveId=9\nslaveGroup=g-1\nslaveMaxDelayInMills=250\nautoSyncMasterConfig=false\n"
                + "master=meta://10.1.2.3:8123\n")
            #expect(slave == ReplicationConfig.Slave(slaveId: 9, slaveGroup: "g-1", maxDelayMs: 250, master: "meta://10.1.2.3:8123"))
            #expect(try Self.parse("slaveId=9\nmaster=h:8124").master == "meta://h:8124")
        }

        /// `key=value`, `key: value`, `key value`, whitespace around, `#` and `!` comments, blank
        /// lines, any line ending.
        @Test func javaPropertiesSyntax() throws {
            let text = "  ! a comment\r\n\t# another\r\n\n   \nslaveId = 3\rslaveGroup: grp\nslaveMaxDelayInMills   700  \n"
                + "master\t:\th:1\n"
            #expect(try Self.parse(text) == ReplicationConfig.Slave(slaveId: 3, slaveGroup: "grp", maxDelayMs: 700, master: "meta://h:1"))
            #expect(try Self.error("slaveId:=4").kind == .badNumber, "a second separator is part of the value, as in Java")
        }

        /// Java reads the bytes as ISO-8859-1, so comments in GBK (the original's encoding) or any
        /// other one are fine.
        @Test func commentsInAnyEncoding() throws {
            let gbkComment: [UInt8] = [0x23, 0xCA, 0xC7, 0xB7, 0xF1, 0x0A] // "#是否" in GBK
            let slave = try ReplicationConfig.Slave(parsingProperties: gbkComment + Array("slaveId=2\n".utf8), path: Self.path)
            #expect(slave.slaveId == 2)
        }

        @Test func blankValuesKeepTheDefaults() throws {
            #expect(try Self.parse("slaveId=1\nslaveGroup=\nslaveMaxDelayInMills\nmaster=") == ReplicationConfig.Slave(slaveId: 1))
        }

        @Test func missingSlaveId() throws {
            let e = try Self.error("# nothing\nslaveGroup=g\n")
            #expect(e.kind == .missingRequired && e.line == nil && e.key == "slaveId")
            #expect(e.description == "conf/async_slave.properties: slaveId: missing required key; expected slaveId=<n> "
                + "with n in 0...1023 (distinct for each slave of a master)")
            #expect(try Self.error("").kind == .missingRequired)
            let blank = try Self.error("slaveId=\n")
            #expect(blank.kind == .missingRequired && blank.line == 1)
            #expect(blank.message == "a value is required; expected slaveId=<n> with n in 0...1023")
        }

        @Test func errorsNameTheLineAndKey() throws {
            let e = try Self.error("# comment\n\nslaveId=1\nslaveMaxDelayInMills=0\n")
            #expect(e.kind == .outOfRange && e.line == 4 && e.section == nil && e.key == "slaveMaxDelayInMills")
            #expect(e.description == "conf/async_slave.properties:4: slaveMaxDelayInMills: expected an integer in "
                + "1...2147483647, got 0")
            #expect(try Self.error("slaveId=2000").kind == .outOfRange)
            #expect(try Self.error("slaveId=-1").kind == .outOfRange)
            #expect(try Self.error("slaveId=x").kind == .badNumber)
            #expect(try Self.error("slaveId=1\nautoSyncMasterConfig=maybe").kind == .badBoolean)
            #expect(try Self.error("slaveId=1\nslaveGroup=a b").kind == .badGroupName)
            let master = try Self.error("slaveId=1\nmaster=host")
            #expect(master.kind == .badAddress && master.line == 2 && master.key == "master")
        }

        @Test func autoSyncMasterConfigTrueSaysWhatToDoInstead() throws {
            let e = try Self.error("slaveId=0\nautoSyncMasterConfig=true\n")
            #expect(e.kind == .unsupported && e.line == 2 && e.key == "autoSyncMasterConfig")
            #expect(e.description == "conf/async_slave.properties:2: autoSyncMasterConfig: autoSyncMasterConfig=true is "
                + "not supported: this broker does not copy its master's server.ini; give the slave the master's "
                + "[topic=...] sections in its own server.ini and set autoSyncMasterConfig=false (or remove the line)")
        }

        @Test func unknownAndDuplicateKeys() throws {
            let unknown = try Self.error("slaveId=1\nslaveGrop=g\n")
            #expect(unknown.kind == .unknownKey && unknown.line == 2 && unknown.suggestion == "slaveGroup")
            #expect(unknown.message == "Invalid config key:slaveGrop,do you mean 'slaveGroup'?")
            #expect(try Self.error("slaveId=1\nfailover=true\n").kind == .unknownKey)
            let masterKey = try Self.error("slaveId=1\nsynchronous=true\n")
            #expect(masterKey.kind == .unknownKey && masterKey.message.hasSuffix("(synchronous belongs in [replication] of server.ini)"))
            let duplicate = try Self.error("slaveId=1\nslaveId=2\n")
            #expect(duplicate.kind == .duplicateKey && duplicate.line == 2)
        }

        @Test func malformedLines() throws {
            let escape = try Self.error("slaveId=1\nslaveGroup=a\\\n  b\n")
            #expect(escape.kind == .malformedLine && escape.line == 2)
            let noKey = try Self.error("=1\n")
            #expect(noKey.kind == .malformedLine && noKey.line == 1)
            #expect(noKey.message == "expected key=value with a key before '=', got '=1'")
        }
    }
}
