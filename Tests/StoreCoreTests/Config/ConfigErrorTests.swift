import Testing
@testable import StoreCore

extension ConfigTests {
    /// Each class of config error, with the file, line, section, key and message it reports
    /// (DESIGN §8).
    @Suite struct Errors {
        private func error(_ text: String) throws -> ConfigError {
            try #require(ConfigTests.error(text))
        }

        @Test func descriptionNamesFileLineSectionAndKey() throws {
            let e = try error("[system]\nbrokerID=1\n[topic=t]\n")
            #expect(e.description == "conf/test.ini:2: [system] brokerID: Invalid config key:brokerID,do you mean 'brokerId'?")
            let whole = try error("[system]\nbrokerId=1\n")
            #expect(whole.description == "conf/test.ini: no topic section; expected at least one [topic=<name>] "
                + "section (MetaQ: Empty topics list)")
        }

        @Test func unknownKeySuggestsTheClosestKey() throws {
            let e = try error("[system]\nbrokerID=1\n[topic=t]\n")
            #expect(e == ConfigError(kind: .unknownKey, path: "conf/test.ini", line: 2, section: "system",
                                     key: "brokerID", message: "Invalid config key:brokerID,do you mean 'brokerId'?",
                                     suggestion: "brokerId"))
            let zk = try error("[system]\nbrokerId=1\n[zookeeper]\nzk.zkConect=h:2181\n[topic=t]\n")
            #expect(zk.line == 4 && zk.section == "zookeeper" && zk.suggestion == "zk.zkConnect")
            let topic = try error("[system]\nbrokerId=1\n[topic=t]\nnumPartition=3\n")
            #expect(topic.line == 4 && topic.section == "topic=t" && topic.suggestion == "numPartitions")
            let group = try error("[system]\nbrokerId=1\n[topic=t]\ngroop.a=F\n")
            #expect(group.suggestion == "group.a")
            let noGroup = try error("[system]\nbrokerId=1\n[topic=t]\ngroup.=F\n")
            #expect(noGroup.kind == .unknownKey && noGroup.message == "expected group.<group>=<filter> with a group name")
        }

        @Test func unknownKeyThatBelongsElsewhereSaysWhere() throws {
            let e = try error("[system]\nbrokerId=1\n[topic=t]\nmaxSegmentSize=1024\n")
            #expect(e.kind == .unknownKey)
            #expect(e.message.hasSuffix("(maxSegmentSize belongs in [system])"))
            let zk = try error("[system]\nbrokerId=1\nzk.zkConnect=h:1\n[topic=t]\n")
            #expect(zk.message.hasSuffix("(zk.zkConnect belongs in [zookeeper])"))
        }

        @Test func unknownSection() throws {
            let e = try error("[sytem]\nbrokerId=1\n[topic=t]\n")
            #expect(e.kind == .unknownSection && e.line == 1 && e.section == "sytem" && e.suggestion == "system")
            #expect(e.message == "unknown section; expected [system], [zookeeper], [replication], [http] or [topic=<name>]; do you mean [system]?")
            #expect(try error("[system]\nbrokerId=1\n[topics=orders]\n").suggestion == "topic=orders")
            #expect(try error("[system]\nbrokerId=1\n[ZooKeeper]\n[topic=t]\n").suggestion == "zookeeper")
        }

        @Test func invalidTopicName() throws {
            for header in ["[topic=]", "[topic=a b]", "[topic=a/b]", "[topic=a\u{7}]"] {
                let e = try error("[system]\nbrokerId=1\n\(header)\n")
                #expect(e.kind == .invalidTopicName && e.line == 3, "\(header)")
            }
        }

        @Test func malformedLines() throws {
            let noSeparator = try error("[system]\nbrokerId=1\nserverPort 8123\n[topic=t]\n")
            #expect(noSeparator.kind == .malformedLine && noSeparator.line == 3 && noSeparator.section == "system")
            #expect(noSeparator.message == "expected key=value, got 'serverPort 8123'")
            let emptyKey = try error("[system]\nbrokerId=1\n=5\n[topic=t]\n")
            #expect(emptyKey.kind == .malformedLine && emptyKey.line == 3)
            let unclosed = try error("[system\nbrokerId=1\n[topic=t]\n")
            #expect(unclosed.kind == .malformedLine && unclosed.line == 1)
            #expect(try error("[]\n").kind == .malformedLine)
            let trailing = try error("[system] ; main\nbrokerId=1\n[topic=t]\n")
            #expect(trailing.kind == .malformedLine && trailing.line == 1)
            let backslash = try error("[system]\nbrokerId=1\ndataPath=C:\\meta\n[topic=t]\n")
            #expect(backslash.kind == .malformedLine && backslash.line == 3)
        }

        @Test func keyOutsideSection() throws {
            let e = try error("; header\nbrokerId=1\n[system]\n[topic=t]\n")
            #expect(e.kind == .keyOutsideSection && e.line == 2 && e.key == "brokerId" && e.section == nil)
            #expect(e.description.hasPrefix("conf/test.ini:2: brokerId: key outside any section"))
        }

        @Test func duplicateKey() throws {
            let e = try error("[system]\nbrokerId=1\nserverPort=1\nserverPort=2\n[topic=t]\n")
            #expect(e.kind == .duplicateKey && e.line == 4 && e.key == "serverPort")
            #expect(e.message == "serverPort is already set on line 3; expected each key at most once per section")
            let group = try error("[system]\nbrokerId=1\n[topic=t]\ngroup.g=A\ngroup.g=B\n")
            #expect(group.kind == .duplicateKey && group.line == 5)
            // The same key in different sections is fine.
            #expect(ConfigTests.error("[system]\nbrokerId=1\nstat=true\n[topic=t]\nstat=false\n") == nil)
        }

        @Test func badNumbers() throws {
            let word = try error(ConfigTests.withSystem("numPartitions=four"))
            #expect(word.kind == .badNumber && word.line == 3 && word.key == "numPartitions")
            #expect(word.message == "expected an integer or an integer expression such as 1024*1024, got 'four': "
                + "expected a number at column 1, found 'f'")
            let zero = try error(ConfigTests.withSystem("maxTransferSize=1024/0"))
            #expect(zero.kind == .badNumber && zero.message.hasSuffix("division by zero in 1024 / 0"))
            let overflow = try error(ConfigTests.withSystem("checkpointInterval=9223372036854775807*2"))
            #expect(overflow.kind == .badNumber && overflow.message.hasSuffix("overflows a 64-bit integer"))
            let topic = try error("[system]\nbrokerId=1\n[topic=t]\nunflushInterval=1e3\n")
            #expect(topic.kind == .badNumber && topic.section == "topic=t" && topic.line == 4)
            let zk = try error("[system]\nbrokerId=1\n[zookeeper]\nzk.zkSyncTimeMs=5s\n[topic=t]\n")
            #expect(zk.kind == .badNumber && zk.key == "zk.zkSyncTimeMs")
        }

        @Test func badBooleans() throws {
            let e = try error(ConfigTests.withSystem("stat=yes"))
            #expect(e.kind == .badBoolean && e.line == 3 && e.message == "expected true or false, got 'yes'")
            #expect(try error("[system]\nbrokerId=1\n[zookeeper]\nzk.zkEnable=1\n[topic=t]\n").kind == .badBoolean)
            #expect(try error("[system]\nbrokerId=1\n[topic=t]\nacceptPublish=no\n").kind == .badBoolean)
        }

        @Test func badDeletePolicyWrapsItsReason() throws {
            let e = try error(ConfigTests.withSystem("deletePolicy=remove,7"))
            #expect(e.kind == .badDeletePolicy && e.line == 3 && e.key == "deletePolicy")
            #expect(e.message.hasPrefix("invalid deletePolicy 'remove,7': unknown policy 'remove' (expected delete, archive or size); expected delete,<age>, archive,<age>[,true|false] or size,<bytes> "))
            #expect(e.message.hasSuffix("e.g. delete,168"))
            #expect(try error("[system]\nbrokerId=1\n[topic=t]\ndeletePolicy=delete,7d\n").kind == .badDeletePolicy)
        }

        @Test func badCronWrapsItsReason() throws {
            let e = try error(ConfigTests.withSystem("deleteWhen=0 0 6"))
            #expect(e.kind == .badCron && e.line == 3 && e.key == "deleteWhen")
            #expect(e.message.hasPrefix("invalid cron expression '0 0 6': expected 6 or 7 whitespace-separated fields"))
            #expect(e.message.hasSuffix("e.g. 0 0 6,18 * * ?"))
            #expect(try error("[system]\nbrokerId=1\n[topic=t]\ndeleteWhen=0 0 25 * * ?\n").kind == .badCron)
        }

        @Test func outOfRange() throws {
            let cases: [(String, String)] = [
                ("[system]\nbrokerId=1024\n[topic=t]\n", "expected an integer in 0...1023, got 1024"),
                ("[system]\nbrokerId=-1\n[topic=t]\n", "expected an integer in 0...1023, got -1"),
                (ConfigTests.withSystem("serverPort=0"), "expected an integer in 1...65535, got 0"),
                (ConfigTests.withSystem("dashboardHttpPort=65536"), "expected an integer in 0...65535, got 65536"),
                (ConfigTests.withSystem("numPartitions=-1"), "expected an integer in 1...2147483647, got -1; "
                    + "a topic needs at least one partition (with none, every put fails)"),
                (ConfigTests.withSystem("flushTxLogAtCommit=3"), "expected an integer in 0...2, got 3"),
                (ConfigTests.withSystem("maxSegmentSize=4*1024*1024*1024"),
                 "expected an integer in 20...2147483647, got 4294967296; a segment must have room for at least "
                    + "one record's 20-byte header"),
                (ConfigTests.withSystem("unflushInterval=0"), "expected an integer in 1...2147483647, got 0"),
                ("[system]\nbrokerId=1\n[topic=t]\nnumPartitions=-2\n", "expected an integer in 1...2147483647, got -2; "
                    + "a topic needs at least one partition (with none, every put fails)"),
            ]
            for (text, message) in cases {
                let e = try error(text)
                #expect(e.kind == .outOfRange, "\(text)")
                #expect(e.message == message)
            }
        }

        @Test func missingBrokerId() throws {
            let absent = try error("[system]\nserverPort=8123\n[topic=t]\n")
            #expect(absent == ConfigError(kind: .missingRequired, path: "conf/test.ini", line: 1, section: "system",
                                          key: "brokerId",
                                          message: "missing required key; expected brokerId=<id> with an id in 0...1023"))
            let noSystem = try error("[topic=t]\n")
            #expect(noSystem.kind == .missingRequired && noSystem.line == nil)
            #expect(noSystem.message.hasSuffix("in a [system] section"))
            let blank = try error("[system]\nbrokerId=\n[topic=t]\n")
            #expect(blank.kind == .missingRequired && blank.line == 2 && blank.key == "brokerId")
        }

        /// Blank means "default" only for optional keys (reference §8, general rules).
        @Test func blankValueOfAKeyMetaqRequires() throws {
            let e = try error(ConfigTests.withSystem("numPartitions="))
            #expect(e.kind == .missingRequired && e.line == 3 && e.key == "numPartitions")
            #expect(e.message == "a value is required (MetaQ refuses a blank numPartitions); remove the line to use the default 1")
            for key in ["unflushThreshold", "unflushInterval", "maxSegmentSize", "maxTransferSize"] {
                #expect(try error(ConfigTests.withSystem("\(key)=")).kind == .missingRequired)
            }
            // Optional keys and every topic key take a blank as "default".
            #expect(ConfigTests.error(ConfigTests.withSystem("serverPort=\nstat=\ndeleteWhen=")) == nil)
            #expect(ConfigTests.error("[system]\nbrokerId=1\n[topic=t]\nnumPartitions=\nstat=\n") == nil)
        }

        @Test func missingTopicSection() throws {
            let e = try error("[system]\nbrokerId=1\n[zookeeper]\nzk.zkEnable=false\n")
            #expect(e == ConfigError(kind: .missingRequired, path: "conf/test.ini", line: nil,
                                     message: "no topic section; expected at least one [topic=<name>] section "
                                         + "(MetaQ: Empty topics list)"))
        }

        @Test func firstErrorInFileOrderWins() throws {
            let e = try error("[system]\nbrokerId=1\nserverPort=x\nstat=maybe\n[topic=t]\n")
            #expect(e.kind == .badNumber && e.line == 3)
        }
    }
}
