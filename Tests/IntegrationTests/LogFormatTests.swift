import Foundation
import Testing
import ProcessHarness

/// Issue 19: `metaq-server start --log-format json` writes one JSON object per line, and
/// `METAQ_LOG_LEVEL` (or `--log-level`) chooses the least level logged (docs/OPERATIONS.md,
/// "Logging"). Real broker processes, stopped by PID.
@Suite("metaq-server log level and format", .serialized)
struct LogFormatTests {
    @Test func jsonLinesFromStartToStop() throws {
        let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-logjson")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try BrokerProcess(directory: directory, config: LocalBrokerTests.config)
        broker.extraArguments = ["--log-format", "json"]
        try broker.start()
        #expect(broker.waitForLog("metaq-server started") != nil)
        #expect(broker.stop() == 0)
        let lines = broker.log().split(separator: "\n")
        #expect(lines.count >= 3)
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object != nil, "not a JSON object: \(line)")
            guard let object else { continue }
            #expect(object["time"] is String && object["level"] is String && object["label"] is String && object["message"] is String,
                    "\(line)")
        }
        let started = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .first { $0["message"] as? String == "metaq-server started" }
        #expect(started?["port"] as? String == "\(broker.port)" && started?["level"] as? String == "info")
    }

    @Test func theEnvironmentChoosesTheLevelAndTheFlagWins() throws {
        for (environment, flag, expectInfo) in [("warning", nil, false), ("warning", "info", true)] as [(String, String?, Bool)] {
            let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-loglevel")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let broker = try BrokerProcess(directory: directory, config: LocalBrokerTests.config)
            broker.process.environment = ProcessInfo.processInfo.environment.merging(["METAQ_LOG_LEVEL": environment]) { $1 }
            if let flag { broker.extraArguments = ["--log-level", flag] }
            try broker.start()
            if expectInfo { #expect(broker.waitForLog("metaq-server started") != nil) }
            #expect(broker.stop() == 0)
            #expect(broker.log().contains("metaq-server started") == expectInfo, "METAQ_LOG_LEVEL=\(environment) --log-level \(flag ?? "-"): \(broker.log())")
        }
    }
}
