import ProtocolCore
import Testing
@testable import StoreCore

extension ConfigTests {
    /// Topic sections: overrides of the system values and wildcard resolution (reference §8.3, §2.8).
    @Suite struct Topics {
        static let text = """
            [system]
            brokerId=1
            numPartitions=2
            unflushThreshold=1000
            unflushInterval=10000
            dataPath=/data/meta
            deletePolicy=delete,168
            deleteWhen=0 0 6,18 * * ?
            stat=false

            [topic=orders]
            numPartitions=8
            unflushThreshold=0
            deletePolicy=archive,30,true
            acceptSubscribe=false
            group.billing=red
            group.audit=not:prefix:test-
            group.empty=

            [topic=log-*]
            numPartitions=4
            unflushInterval=1000
            dataPath=/fast/meta
            deleteWhen=0 0 * * * ?
            stat=true

            [topic=log-app*]
            numPartitions=16

            [topic=*.events]
            acceptPublish=false

            [topic=log-special]
            """

        @Test func topicValuesOverrideSystemValuesOneByOne() throws {
            let config = try ConfigTests.parse(Self.text)
            let orders = try #require(config.topicConfig(for: "orders"))
            #expect(orders.topic == "orders" && orders.sectionName == "orders")
            #expect(orders.numPartitions == 8)
            // The threshold is overridden, the interval inherited.
            #expect(orders.flushPolicy == FlushPolicy(unflushThreshold: 0, unflushIntervalMs: 10_000))
            #expect(orders.dataPath == "/data/meta")
            #expect(orders.deletePolicy == (try DeletePolicy(parsing: "archive,30,true")))
            #expect(orders.deleteWhen.description == "0 0 6,18 * * ?")
            #expect(orders.acceptPublish && !orders.acceptSubscribe && !orders.stat)
        }

        @Test func groupFiltersKeepFileOrderAndSkipBlanks() throws {
            let config = try ConfigTests.parse(Self.text)
            let orders = try #require(config.topicConfig(for: "orders"))
            #expect(orders.groupFilters == [GroupFilter(group: "billing", filter: .exact("red")),
                                            GroupFilter(group: "audit", filter: .not(.prefix("test-")))])
            #expect(orders.filter(forGroup: "audit") == .not(.prefix("test-")))
            #expect(orders.filter(forGroup: "empty") == nil)
            #expect(orders.filter(forGroup: "other") == nil)
        }

        @Test func wildcardSectionAppliesItsOverrides() throws {
            let config = try ConfigTests.parse(Self.text)
            let log = try #require(config.topicConfig(for: "log-web"))
            #expect(log.topic == "log-web" && log.sectionName == "log-*")
            #expect(log.numPartitions == 4)
            #expect(log.flushPolicy == FlushPolicy(unflushThreshold: 1000, unflushIntervalMs: 1000))
            #expect(log.dataPath == "/fast/meta")
            #expect(log.deleteWhen.description == "0 0 * * * ?")
            #expect(log.deletePolicy == .metaqDefault)
            #expect(log.stat)
        }

        /// Exact name first; then the first matching pattern in file order, even when a later one
        /// is more specific.
        @Test func precedence() throws {
            let config = try ConfigTests.parse(Self.text)
            #expect(config.topicConfig(for: "log-special")?.sectionName == "log-special")
            #expect(config.topicConfig(for: "log-special")?.numPartitions == 2)
            #expect(config.topicConfig(for: "log-app1")?.sectionName == "log-*")
            #expect(config.topicConfig(for: "log-")?.sectionName == "log-*")   // `*` matches nothing too
        }

        @Test func patternCharactersOtherThanStarAreLiteral() throws {
            let config = try ConfigTests.parse(Self.text)
            #expect(config.topicConfig(for: "shop.events")?.acceptPublish == false)
            #expect(config.topicConfig(for: ".events")?.sectionName == "*.events")
            #expect(config.topicConfig(for: "shopXevents") == nil)             // MetaQ's regex would match
            #expect(config.topicConfig(for: "shop.events.old") == nil)
        }

        @Test func unknownTopicIsNotLegal() throws {
            let config = try ConfigTests.parse(Self.text)
            #expect(config.topicConfig(for: "payments") == nil)
            #expect(config.topicConfig(for: "") == nil)
            #expect(config.topicConfig(for: "ORDERS") == nil)
        }

        @Test func wildcardMatching() {
            // The one matcher both the config and the broker machine use (ProtocolCore).
            let match: (String, String) -> Bool = { pattern, name in TopicRules.matches(name, pattern) }
            #expect(match("*", ""))
            #expect(match("*", "anything"))
            #expect(match("a*b*c", "aXXbYYc"))
            #expect(match("a*b*c", "abc"))
            #expect(match("a*b", "abab"))
            #expect(!match("a*b", "aba"))
            #expect(match("**x", "x"))
            #expect(!match("abc", "abcd"))
            #expect(!match("a*", "ba"))
            #expect(match("*-*-*", "a-b-c-d"))
        }

        @Test func sectionsKeepFileOrder() throws {
            let config = try ConfigTests.parse(Self.text)
            #expect(config.topics.map(\.name) == ["orders", "log-*", "log-app*", "*.events", "log-special"])
            #expect(config.topics.map(\.isPattern) == [false, true, true, true, false])
        }
    }
}
