import Foundation
import ProtocolCore
import Testing
import ProcessHarness

/// `/metrics` on the dashboard port of a real broker (issue 19): parsed by `prometheus_client`,
/// its counters moving by exactly what a client sent — here puts over the HTTP message API, so one
/// test crosses both HTTP servers and the node between them.
@Suite("/metrics of a running broker", .serialized)
struct MetricsEndpointTests {
    @Test func scrapesParseAndCountersMoveByExactlyThePutsSent() throws {
        let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-metrics")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let httpPort = try LocalProcess.freePort()
        let broker = try BrokerProcess(directory: directory, config: HTTPMessageAPITests.config(httpPort: httpPort))
        broker.dashboardPort = try LocalProcess.freePort()
        defer { broker.stopHard() }
        try broker.start()
        try LocalProcess.waitUntilAccepting(port: httpPort, what: "the HTTP message API")
        try LocalProcess.waitUntilAccepting(port: broker.dashboardPort, what: "the dashboard")
        func scrape() throws -> String {
            let answer = try HTTPTestClient(port: broker.dashboardPort).exchange("GET", "/metrics")
            #expect(answer.status == 200)
            #expect(answer.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
            return answer.text
        }
        let before = try scrape()
        let api = try HTTPTestClient(port: httpPort)
        var bodyBytes = 0
        for i in 0..<7 {
            let body = Array("message \(i) over http".utf8)
            bodyBytes += body.count
            let put = try api.exchange("POST", "/put?topic=test&partition=\(i % 2)&flag=0&length=\(body.count)", body: body)
            #expect(put.status == 200)
        }
        let after = try scrape()
        let (samples, types) = try PrometheusText.parse([before, after])
        func delta(_ key: String) -> Double? {
            guard let a = samples[0][key], let b = samples[1][key] else { return nil }
            return b - a
        }
        #expect(types["metaq_puts"] == "counter")
        #expect(delta("metaq_puts_total") == 7)
        #expect(delta("metaq_received_bytes_total") == Double(bodyBytes))
        #expect(delta("metaq_put_duration_seconds_count") == 7)
        #expect(samples[1]["metaq_partition_messages{partition=\"0\",topic=\"test\"}"] == 4)
        #expect(samples[1]["metaq_partition_messages{partition=\"1\",topic=\"test\"}"] == 3)
        #expect((samples[1]["process_resident_memory_bytes"] ?? 0) > 0)
    }
}
