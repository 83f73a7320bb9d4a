import Foundation
import ProtocolCore
import Runtime
import Testing

/// A gregor-style synchronous slave (reference §6.2): `metaq-server start --gregor` stores the
/// `sync` requests of an original samsa master with the master's msgId and answers
/// `<msgId> <partition> <offset>`, and has the master's test topic `_metaq_slave_status_test`.
@Suite("Gregor slave (reference §6.2)")
struct GregorTests {
    @Test func syncRequestsAreStoredWithTheMastersMessageId() throws {
        let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-gregor")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try BrokerProcess(directory: directory, config: LocalBrokerTests.config)
        broker.extraArguments = ["--gregor"]
        try broker.start()
        defer { broker.stopHard() }
        let connection = try WireConnection(host: "127.0.0.1", port: broker.port)
        let body = Array("from samsa".utf8)
        var offsets: [Int64] = []
        for (index, msgId) in [Int64(-7_365_523_123_456), 42].enumerated() {
            let answer = try connection.request(.sync(SyncCommand(topic: "test", partition: 1, flag: 0, msgId: msgId,
                                                                  checksum: CRC32.metaqChecksum(body), body: body, opaque: Int32(index + 1))))
            guard case .result(let result) = answer else { Issue.record("\(answer)"); return }
            let fields = result.text.split(separator: " ")
            #expect(result.code == 200 && fields.count == 3 && fields[0] == "\(msgId)" && fields[1] == "1", "\(result.text)")
            offsets.append(Int64(fields[2]) ?? -1)
        }
        let stored = try broker.readAll(partition: 1)
        #expect(stored[offsets[0]]?.id == -7_365_523_123_456 && stored[offsets[1]]?.id == 42, "the master's ids: \(stored)")
        // The master's heal thread tests the slave on its status topic (1 partition).
        let test = try connection.request(.sync(SyncCommand(topic: "_metaq_slave_status_test", partition: 0, flag: 0, msgId: 1,
                                                            checksum: nil, body: [1], opaque: 9)))
        #expect({ if case .result(let r) = test { return r.code == 200 } else { return false } }(), "\(test)")
        // A damaged body is refused as a put's is.
        let bad = try connection.request(.sync(SyncCommand(topic: "test", partition: 0, flag: 0, msgId: 3, checksum: 12345,
                                                           body: body, opaque: 10)))
        #expect({ if case .result(let r) = bad { return r.code == 500 && r.text.contains("Checksum failure") } else { return false } }(),
                "\(bad)")
    }

    @Test func aBrokerThatIsNoGregorAnswersSyncAsTheOriginalDoes() throws {
        let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-no-gregor")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try BrokerProcess(directory: directory, config: LocalBrokerTests.config)
        try broker.start()
        defer { broker.stopHard() }
        let connection = try WireConnection(host: "127.0.0.1", port: broker.port)
        let answer = try connection.request(.sync(SyncCommand(topic: "test", partition: 0, flag: 0, msgId: 1, checksum: nil,
                                                              body: [1], opaque: 1)))
        #expect({ if case .result(let r) = answer { return r.code == 503 } else { return false } }(), "\(answer)")
    }
}
