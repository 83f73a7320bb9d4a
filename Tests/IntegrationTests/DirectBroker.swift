import Foundation
import Logging
import MetaQClient

/// For client tests: a local `metaq-server` (LocalBrokerTests' config) in its own temp directory
/// and a direct-mode `MetaQClient` to it. `stop()` kills the broker by PID and removes the directory.
final class DirectBroker {
    static let silent = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    let directory: String
    let broker: BrokerProcess
    let client: MetaQClient

    /// LocalBrokerTests' config with one partition, for tests that need one order of all messages.
    static let onePartition = LocalBrokerTests.config.replacingOccurrences(of: "numPartitions=2", with: "numPartitions=1")

    init(_ prefix: String, config: String = LocalBrokerTests.config) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        broker = try BrokerProcess(directory: directory, config: config)
        try broker.start()
        client = try MetaQClient(servers: ["meta://127.0.0.1:\(broker.port)"], logger: Self.silent)
    }

    func stop() {
        broker.stopHard()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
