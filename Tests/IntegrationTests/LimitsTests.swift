import Foundation
import ProtocolCore
import Runtime
import Testing
import ProcessHarness

/// DESIGN.md §8's limits on a real broker, each at its bound (issue 14): connections, partly
/// received frames (memory and time), the listen backlog.
@Suite("metaq-server limits", .serialized)
struct LimitsTests {
    static func config(_ limits: String) -> String {
        """
        [system]
        brokerId=0
        numPartitions=1
        unflushThreshold=0
        ; The tests put messages of up to 1.5 MiB (the default maxTransferSize, 1 MiB, refuses them).
        maxTransferSize=2*1024*1024
        \(limits)
        [zookeeper]
        zk.zkEnable=false
        [topic=test]
        """
    }

    func withBroker(config: String, _ body: (BrokerProcess) throws -> Void) throws {
        try LocalBrokerTests().withBroker(config: config, body)
    }

    func version(_ connection: WireConnection, opaque: Int32 = 1) throws -> Bool {
        guard case .result(let answer) = try connection.request(.version(VersionCommand(opaque: opaque))) else { return false }
        return answer.code == 200
    }

    static func put(_ data: [UInt8], opaque: Int32) -> Frame {
        .put(PutCommand(topic: "test", partition: 0, flag: 0, checksum: CRC32.metaqChecksum(data), body: data, opaque: opaque))
    }

    /// `count` connections the broker serves. The connection `BrokerProcess.start` probed the port
    /// with counts until the broker has seen it close, so one refused meanwhile is replaced.
    func serve(_ count: Int, _ broker: BrokerProcess) throws -> [WireConnection] {
        var served: [WireConnection] = []
        let deadline = Date().addingTimeInterval(15)
        while served.count < count && Date() < deadline {
            let connection = try WireConnection(host: "127.0.0.1", port: broker.port)
            if (try? version(connection)) == true { served.append(connection) }
        }
        guard served.count == count else { throw HarnessError("the broker served \(served.count) of \(count) connections") }
        return served
    }

    /// `maxConnections`: one connection beyond it is accepted and closed at once, those before it
    /// are served; once one closes the broker logs that it is below the limit and serves again.
    @Test func connectionsBeyondMaxConnectionsAreClosed() throws {
        try withBroker(config: Self.config("maxConnections=4")) { broker in
            try broker.start()
            var served = try serve(4, broker)
            let fifth = try RawClient(port: broker.port)
            #expect(fifth.waitForClose(), "the connection beyond maxConnections=4 is closed")
            #expect(broker.waitForLog("connection limit reached") != nil, "\(broker.log())")
            for connection in served { #expect(try version(connection), "earlier connections are still served") }
            // Earlier episodes may have ended already (the probe, see `serve`): wait for the next.
            let episodes = broker.logLines(containing: "below the connection limit again").count
            served.removeLast()
            let eased = broker.waitForLog("below the connection limit again", occurrence: episodes + 1)
            #expect(eased?.contains("refused=1") == true, "\(broker.log())")
            #expect(try version(try WireConnection(host: "127.0.0.1", port: broker.port)))
            #expect(broker.stop() == 0)
        }
    }

    /// `maxPartialFrameBytes`: connections that announce bodies they do not finish hold at most
    /// the budget between them; the rest wait unread, so the broker's memory does not grow with
    /// their number. Complete puts are still answered, and when the holders go the waiting
    /// connections are read again.
    @Test func halfSentPutsStayWithinThePartialFrameBudget() throws {
        let config = Self.config("maxPartialFrameBytes=2*1024*1024\npartialFrameTimeoutMs=120000")
        try withBroker(config: config) { broker in
            try broker.start()
            let probe = try WireConnection(host: "127.0.0.1", port: broker.port)
            guard case .result(let first) = try probe.request(Self.put(Array("warm-up".utf8), opaque: 1)) else {
                Issue.record("no answer to the first put")
                return
            }
            #expect(first.code == 200)
            let before = try #require(broker.residentBytes())
            // 150 puts announcing 1.5 MiB each: the header first, then as much body as the
            // socket takes. Without a budget the broker buffers every one of them.
            let body = [UInt8](repeating: 0x61, count: 1_536 << 10)
            var stuck: [RawClient] = []
            for i in 0..<150 {
                let client = try RawClient(port: broker.port)
                try client.sendAll(Array("put test 0 \(body.count) 0 \(CRC32.metaqChecksum(body)) \(i)\r\n".utf8))
                stuck.append(client)
            }
            for client in stuck { client.sendSome(Array(body.dropLast(1024))) }
            #expect(broker.waitForLog("partial-frame budget in use") != nil, "\(broker.log())")
            guard case .result(let complete) = try probe.request(Self.put(Array("complete".utf8), opaque: 2)) else {
                Issue.record("a complete put was not answered while others wait for the budget")
                return
            }
            #expect(complete.code == 200)
            let grown = try #require(broker.residentBytes()) - before
            // Budget (2 MiB, buffered in up to twice that) plus what each waiting connection had
            // read before it was stopped; 150 × 1.5 MiB = 225 MiB without the budget.
            #expect(grown < 48 << 20, "resident memory grew by \(grown >> 20) MiB")
            stuck.removeAll()
            #expect(broker.waitForLog("partial-frame budget available again") != nil, "\(broker.log())")
            #expect(broker.stop() == 0)
        }
    }

    /// The budget lets the frame ahead finish first, then reads the one that waited: both puts
    /// are answered.
    @Test func aPutWaitingForTheBudgetCompletesAfterTheOneAhead() throws {
        try withBroker(config: Self.config("maxPartialFrameBytes=2*1024*1024")) { broker in
            try broker.start()
            let ahead = try RawClient(port: broker.port)
            let aheadBody = [UInt8](repeating: 0x62, count: 1_536 << 10)
            let aheadFrame = Self.put(aheadBody, opaque: 1).encoded()
            try ahead.sendAll(Array(aheadFrame.prefix(aheadFrame.count / 2)))
            let behind = try RawClient(port: broker.port)
            let behindFrame = Self.put([UInt8](repeating: 0x63, count: 1 << 20), opaque: 2).encoded()
            // The first half of it: its header asks for more than the budget has left.
            try behind.sendAll(Array(behindFrame.prefix(behindFrame.count / 2)))
            #expect(broker.waitForLog("partial-frame budget in use") != nil, "\(broker.log())")
            try ahead.sendAll(Array(aheadFrame.suffix(from: aheadFrame.count / 2)))
            guard case .result(let first)? = try ahead.receive() else { Issue.record("the put ahead got no answer"); return }
            #expect(first.code == 200)
            try behind.sendAll(Array(behindFrame.suffix(from: behindFrame.count / 2)))
            guard case .result(let second)? = try behind.receive() else { Issue.record("the waiting put got no answer"); return }
            #expect(second.code == 200 && second.opaque == 2)
            #expect(broker.waitForLog("partial-frame budget available again")?.contains("waited=1") == true)
            #expect(broker.stop() == 0)
        }
    }

    /// `partialFrameTimeoutMs`: a connection silent in the middle of a put body or of a command
    /// line is closed, with a log line; an idle connection between frames is kept (MetaQ's
    /// server has no idle timeout, reference §1.4.4).
    @Test func aConnectionSilentMidFrameIsClosed() throws {
        try withBroker(config: Self.config("partialFrameTimeoutMs=300")) { broker in
            try broker.start()
            let idle = try WireConnection(host: "127.0.0.1", port: broker.port)
            #expect(try version(idle))
            let midBody = try RawClient(port: broker.port)
            try midBody.sendAll(Array("put test 0 10 0 1\r\nhel".utf8))
            let midLine = try RawClient(port: broker.port)
            try midLine.sendAll(Array("version".utf8))
            #expect(midBody.waitForClose(), "closed in the middle of a body")
            #expect(midLine.waitForClose(), "closed in the middle of a line")
            #expect(broker.waitForLog("closing a connection silent in the middle of a message")?
                .contains("partialFrameTimeoutMs=300") == true, "\(broker.log())")
            #expect(try version(idle, opaque: 2), "the idle connection is still served")
            #expect(broker.stop() == 0)
        }
    }

    /// `listenBacklog` reaches `listen(2)`: `ss` shows a listener's backlog as its Send-Q.
    @Test(arguments: [("listenBacklog=77", 77), ("", 1024)])
    func listenBacklogIsConfigured(setting: String, expected: Int) throws {
        try withBroker(config: Self.config(setting)) { broker in
            try broker.start()
            let listing = try ChildProcess.run("/usr/bin/ss", ["-ltnH", "sport = :\(broker.port)"])
            let columns = String(decoding: listing.output, as: UTF8.self).split(whereSeparator: \.isWhitespace)
            #expect(columns.count >= 4 && columns[2] == "\(expected)", "ss: \(columns)")
        }
    }
}
