import Testing
@testable import StoreCore

extension ConfigTests {
    /// Settings MetaQ accepts that cannot work are refused at start, with file, line and key
    /// (issue 14, DESIGN §8).
    @Suite struct UnworkableSettings {
        private func error(_ text: String) throws -> ConfigError {
            try #require(ConfigTests.error(text))
        }

        /// With no partition every put fails ("wrong partition"), so a topic needs at least one.
        @Test func zeroPartitionsAreRefusedInSystemAndTopic() throws {
            let system = try error(ConfigTests.withSystem("numPartitions=0"))
            #expect(system.description == "conf/test.ini:3: [system] numPartitions: expected an integer in 1...2147483647, "
                + "got 0; a topic needs at least one partition (with none, every put fails)")
            let topic = try error("[system]\nbrokerId=1\n[topic=t]\nnumPartitions=0\n")
            #expect(topic.line == 4 && topic.section == "topic=t" && topic.key == "numPartitions" && topic.kind == .outOfRange)
            #expect(topic.message.hasSuffix("got 0; a topic needs at least one partition (with none, every put fails)"))
        }

        /// A segment smaller than a record header could hold no record at all.
        @Test func segmentsSmallerThanARecordHeaderAreRefused() throws {
            let e = try error(ConfigTests.withSystem("maxSegmentSize=19"))
            #expect(e.kind == .outOfRange && e.line == 3 && e.key == "maxSegmentSize")
            #expect(e.message == "expected an integer in 20...2147483647, got 19; a segment must have room for at least "
                + "one record's 20-byte header")
            #expect(ConfigTests.error(ConfigTests.withSystem("maxSegmentSize=20")) == nil)
        }

        /// ini4j would use only one of two same-named sections, silently: refused, naming both lines.
        @Test func repeatedSectionHeadersAreRefused() throws {
            let topic = try error("[system]\nbrokerId=1\n[topic=x]\nnumPartitions=2\n[topic=y]\n[topic=x]\nstat=true\n")
            #expect(topic.description == "conf/test.ini:6: [topic=x]: repeats the section of line 3; expected each "
                + "section once (MetaQ would silently use only one of them): merge the two")
            #expect(topic.kind == .duplicateSection && topic.line == 6 && topic.section == "topic=x" && topic.key == nil)
            let spaced = try error("[system]\nbrokerId=1\n[topic=x]\n[ topic = x ]\n")
            #expect(spaced.kind == .duplicateSection && spaced.line == 4)
            let system = try error("[system]\nbrokerId=1\n[topic=t]\n[system]\nserverPort=8200\n")
            #expect(system.kind == .duplicateSection && system.line == 4 && system.message.hasPrefix("repeats the section of line 1;"))
            let zooKeeper = try error("[system]\nbrokerId=1\n[zookeeper]\n[topic=t]\n[zookeeper]\n")
            #expect(zooKeeper.kind == .duplicateSection && zooKeeper.line == 5)
            // A pattern and a topic it matches are different sections.
            #expect(ConfigTests.error("[system]\nbrokerId=1\n[topic=x*]\n[topic=x1]\n") == nil)
        }
    }
}
