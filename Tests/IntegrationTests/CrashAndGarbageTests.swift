import Foundation
import ProtocolCore
import Runtime
import Testing

/// Durability and robustness of a real broker process (issue 3's required integration tests).
@Suite("metaq-server under kill -9 and garbage", .serialized)
struct CrashAndGarbageTests {
    /// Threshold mode: a put is answered once written (not synced); no sync is due during the test.
    static let thresholdConfig = LocalBrokerTests.config.replacingOccurrences(
        of: "unflushThreshold=0", with: "unflushThreshold=1000000\nunflushInterval=600000")

    func withBroker(config: String = LocalBrokerTests.config, _ body: (BrokerProcess) throws -> Void) throws {
        try LocalBrokerTests().withBroker(config: config, body)
    }

    /// `kill -9` mid-stream of puts (§2.4), under group commit and under `unflushThreshold`: every
    /// acknowledged put is there after a restart. A killed process keeps the page cache, so this
    /// catches acknowledging what was never written — e.g. answering a put whose record still sat
    /// in the broker's staging buffer — or recovery dropping it; losing what was written but not
    /// synced is a power loss, which the simulator's sweep covers.
    @Test(arguments: ["group commit", "threshold"])
    func killNineLosesNoAcknowledgedPut(mode: String) throws {
        let config = mode == "threshold" ? Self.thresholdConfig : LocalBrokerTests.config
        try withBroker(config: config) { broker in
            try broker.start()
            let connection = try WireConnection(host: "127.0.0.1", port: broker.port)
            var acknowledged: [(offset: Int64, id: Int64, data: [UInt8])] = []
            var inFlight: [Int32: [UInt8]] = [:]
            var opaque: Int32 = -1000
            var killed = false
            while true {
                while !killed && inFlight.count < 16 {
                    let data = Array("message \(opaque)".utf8)
                    try connection.send(.put(PutCommand(topic: "test", partition: 0, flag: 0,
                                                        checksum: CRC32.metaqChecksum(data), body: data, opaque: opaque)))
                    inFlight[opaque] = data
                    opaque += 1
                }
                if !killed && acknowledged.count >= 2000 {
                    broker.process.send(SIGKILL)
                    killed = true
                }
                guard case .result(let answer)? = try connection.receive() else { break }
                guard let data = inFlight.removeValue(forKey: answer.opaque) else {
                    Issue.record("answer with unknown opaque \(answer.opaque)")
                    break
                }
                #expect(answer.code == 200, "\(answer.text)")
                let parts = answer.text.split(separator: " ")
                acknowledged.append((offset: Int64(parts[2])!, id: Int64(parts[0])!, data: data))
            }
            #expect(broker.process.waitUntilExit(timeoutSeconds: 10), "SIGKILLed broker not reaped")
            #expect(broker.process.terminationSignal == SIGKILL)

            let restarted = try BrokerProcess(directory: broker.directory, config: config)
            defer { restarted.stopHard() }
            try restarted.start()
            let stored = try restarted.readAll(partition: 0)
            #expect(acknowledged.count >= 2000)
            let missing = acknowledged.filter { stored[$0.offset]?.id != $0.id || stored[$0.offset]?.data != $0.data }
            #expect(missing.isEmpty, "\(missing.count) acknowledged puts lost, first at \(missing.first.map { "\($0.offset)" } ?? "")")
            #expect(restarted.stop() == 0)
        }
    }

    /// A graceful stop (SIGTERM) in the middle of a stream of group-commit puts, 20 times over the
    /// same data: every stop exits 0 without an error in the log, and every put answered in any of
    /// the runs is read back at the end. The stop waits for the syncs in flight before it closes
    /// the files they sync, and answers the puts its final sync made durable.
    @Test func gracefulStopsUnderLoadLoseNoAcknowledgedPut() throws {
        try withBroker { first in
            var acknowledged: [(partition: Int32, offset: Int64, id: Int64, data: [UInt8])] = []
            var opaque: Int32 = 0
            for round in 0..<20 {
                let broker = round == 0 ? first : try BrokerProcess(directory: first.directory, config: LocalBrokerTests.config,
                                                                    port: first.port)
                defer { broker.stopHard() }
                try broker.start()
                let connection = try WireConnection(host: "127.0.0.1", port: broker.port)
                var inFlight: [Int32: (partition: Int32, data: [UInt8])] = [:]
                var answeredThisRound = 0
                var stopping = false
                while true {
                    while !stopping && inFlight.count < 64 {
                        opaque += 1
                        let partition = opaque % 2
                        let data = Array("round \(round) message \(opaque)".utf8)
                        try connection.send(.put(PutCommand(topic: "test", partition: partition, flag: 0,
                                                            checksum: CRC32.metaqChecksum(data), body: data, opaque: opaque)))
                        inFlight[opaque] = (partition, data)
                    }
                    if !stopping && answeredThisRound >= 200 + 37 * round {
                        #expect(broker.process.send(SIGTERM))
                        stopping = true
                    }
                    guard case .result(let answer)? = try connection.receive() else { break }
                    guard let sent = inFlight.removeValue(forKey: answer.opaque), answer.code == 200 else {
                        Issue.record("round \(round): unexpected answer \(answer)")
                        break
                    }
                    let parts = answer.text.split(separator: " ")
                    acknowledged.append((sent.partition, Int64(parts[2])!, Int64(parts[0])!, sent.data))
                    answeredThisRound += 1
                }
                let status = broker.stop()
                #expect(status == 0, "round \(round): exit \(String(describing: status))")
                let problems = broker.log().split(separator: "\n").filter { $0.contains(" error ") || $0.contains(" critical ") }
                #expect(problems.isEmpty, "round \(round): \(problems)")
                guard status == 0 && problems.isEmpty else { return }
            }
            let reader = try BrokerProcess(directory: first.directory, config: LocalBrokerTests.config, port: first.port)
            defer { reader.stopHard() }
            try reader.start()
            let stored = try [reader.readAll(partition: 0), reader.readAll(partition: 1)]
            let missing = acknowledged.filter {
                let m = stored[Int($0.partition)][$0.offset]
                return m?.id != $0.id || m?.data != $0.data
            }
            #expect(acknowledged.count >= 20 * 200)
            #expect(missing.isEmpty, "\(missing.count) of \(acknowledged.count) acknowledged puts lost")
        }
    }

    /// §1.1: garbage closes that connection only; a bad checksum is answered and the connection
    /// stays; other clients are served throughout.
    @Test func garbageClosesOnlyItsOwnConnection() throws {
        try withBroker { broker in
            try broker.start()
            let good = try WireConnection(host: "127.0.0.1", port: broker.port)
            let bad = try WireConnection(host: "127.0.0.1", port: broker.port)
            try bad.sendRaw([0xFF, 0x00, 0x13, 0x37] + Array("\r\nnot a command\r\n".utf8))
            #expect(try bad.receive() == nil, "closed without a reply")
            guard case .result(let version) = try good.request(.version(VersionCommand(opaque: 5))) else {
                Issue.record("no version answer"); return
            }
            #expect(version.code == 200)
            let corrupt = try good.request(.put(PutCommand(topic: "test", partition: 0, flag: 0, checksum: 1,
                                                           body: Array("hi".utf8), opaque: 6)))
            guard case .result(let refused) = corrupt else { Issue.record("no put answer"); return }
            #expect(refused.code == 500 && refused.text.hasSuffix("Checksum failure,message may be corrupted when transfering on networking."))
            guard case .result(let again) = try good.request(.version(VersionCommand(opaque: 7))) else {
                Issue.record("connection did not survive a refused put"); return
            }
            #expect(again.opaque == 7)
            #expect(broker.stop() == 0)
        }
    }
}
