import Foundation
import Testing
@testable import StoreCore

extension ConfigTests {
    /// `conf/server.ini`, the file `start --local` uses, parses to what it promises.
    @Suite struct DefaultFile {
        @Test func shippedDefaultParses() throws {
            let root = URL(fileURLWithPath: #filePath)
                .deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent()
            let file = root.appendingPathComponent("conf/server.ini")
            let text = try String(contentsOf: file, encoding: .utf8)
            let config = try ServerConfig(parsing: text, path: file.path)

            #expect(config.brokerId == 0)
            #expect(config.serverPort == 8123)
            #expect(config.numPartitions == 1)
            #expect(config.flushPolicy == FlushPolicy(unflushThreshold: 0, unflushIntervalMs: 10_000))
            #expect(config.flushPolicy.isGroupCommit)
            #expect(config.maxSegmentSize == 1 << 30)
            #expect(config.maxTransferSize == 1 << 20)
            #expect(config.deletePolicy == .metaqDefault)
            #expect(config.deleteWhen == .metaqDefault)
            #expect(config.dataPath == nil)
            // The limits are shown commented out, at their defaults.
            #expect(config.maxConnections == 10_000 && config.maxPartialFrameBytes == 64 << 20)
            #expect(config.partialFrameTimeoutMs == 30_000 && config.listenBacklog == 1024)
            #expect(config.syncThreads == 8 && config.ioThreads == nil)
            #expect(!config.zooKeeper.isEnabled)
            #expect(config.zooKeeper.connect == nil)
            #expect(config.topics.map(\.name) == ["test"])
            let test = try #require(config.topicConfig(for: "test"))
            #expect(test.stat)
            #expect(test.flushPolicy.isGroupCommit)
            #expect(config.topicConfig(for: "log-app") == nil)   // the wildcard example is commented out
        }
    }
}
