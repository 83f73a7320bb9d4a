import CZooKeeper
import Logging
import ProtocolCore
@testable import Runtime
import Testing

/// The parts of the ZooKeeper session that need no server: reply ordering, the C library's
/// log lines and return codes (toolchain.md §1).
@Suite("ZooKeeper session pieces")
struct ZooKeeperPiecesTests {
    @Test func repliesComeOutInSubmissionOrder() {
        var order = ReplyOrder<Int>()
        let sequences = (0..<4).map { order.enqueue($0) }
        #expect(sequences == [0, 1, 2, 3])
        // A later request answered first (e.g. failed before reaching the C library) waits.
        #expect(order.resolve(2, .deleted).isEmpty)
        #expect(order.resolve(1, .dataSet).isEmpty)
        let due = order.resolve(0, .exists(true))
        #expect(due.map(\.0) == [0, 1, 2])
        #expect(due.map(\.1) == [.exists(true), .dataSet, .deleted])
        #expect(order.outstandingCount == 1)
        #expect(order.resolve(3, .exists(false)).map(\.0) == [3])
        #expect(order.enqueue(4) == 4)
    }

    @Test func eachRequestGetsOneReply() {
        var order = ReplyOrder<String>()
        _ = order.enqueue("a")
        _ = order.enqueue("b")
        #expect(order.resolve(1, .deleted).isEmpty)
        #expect(order.resolve(1, .dataSet).isEmpty, "a second reply for 1 is ignored")
        #expect(order.resolve(7, .dataSet).isEmpty, "an unknown request is ignored")
        let due = order.resolve(0, .deleted)
        #expect(due.map(\.0) == ["a", "b"] && due.map(\.1) == [.deleted, .deleted])
        #expect(order.resolve(0, .deleted).isEmpty, "already handed out")
    }

    @Test func removeAllReturnsTheUnansweredAndKeepsNumbering() {
        var order = ReplyOrder<Int>()
        for value in 0..<3 { _ = order.enqueue(value) }
        _ = order.resolve(1, .deleted)
        #expect(order.removeAll() == [0, 2])
        #expect(order.outstandingCount == 0)
        #expect(order.resolve(2, .deleted).isEmpty)
        #expect(order.enqueue(3) == 3)
        #expect(order.resolve(3, .deleted).map(\.0) == [3])
    }

    @Test func manyRepliesStayInOrderAcrossCompaction() {
        var order = ReplyOrder<Int>()
        var out: [Int] = []
        for round in 0..<30 {
            let base = round * 100
            for index in 0..<100 { #expect(order.enqueue(base + index) == UInt64(base + index)) }
            // Resolve each round backwards: nothing is due until its first request is answered.
            for index in (0..<100).reversed() { out += order.resolve(UInt64(base + index), .deleted).map(\.0) }
        }
        #expect(out == Array(0..<3000))
    }

    @Test func cLibraryLogLinesAreSplit() {
        let line = "2026-11-21 15:27:40,813:4242(0x7f12abcd):ZOO_ERROR@handle_socket_error_msg@2185: "
            + "Socket [127.0.0.1:2181] zk retcode=-4, errno=111(Connection refused): server refused to accept the client\n"
        let parsed = ZooKeeperLog.parse(line)
        #expect(parsed.level == .error)
        #expect(parsed.source == "handle_socket_error_msg@2185")
        #expect(parsed.message.hasPrefix("Socket [127.0.0.1:2181] zk retcode=-4"))
        #expect(parsed.message.hasSuffix("accept the client"), "the trailing newline is dropped")
        #expect(ZooKeeperLog.parse("t:1(0x1):ZOO_WARN@f@1: w").level == .warning)
        #expect(ZooKeeperLog.parse("t:1(0x1):ZOO_INFO@f@1: i").level == .debug)
        #expect(ZooKeeperLog.parse("t:1(0x1):ZOO_DEBUG@f@1: d").level == .trace)
        #expect(ZooKeeperLog.parse("no level here").message == "no level here")
    }

    @Test func cLevelFollowsTheLogger() {
        #expect(ZooKeeperLog.cLevel(for: .info) == ZOO_LOG_LEVEL_WARN, "a good run is silent at the default level")
        #expect(ZooKeeperLog.cLevel(for: .debug) == ZOO_LOG_LEVEL_INFO)
        #expect(ZooKeeperLog.cLevel(for: .trace) == ZOO_LOG_LEVEL_DEBUG)
        #expect(ZooKeeperLog.cLevel(for: .critical) == ZOO_LOG_LEVEL_ERROR)
    }

    @Test func returnCodesMapToCoordinationErrors() {
        #expect(ZooKeeperCodes.error(ZNONODE.rawValue) == .noNode)
        #expect(ZooKeeperCodes.error(ZNODEEXISTS.rawValue) == .nodeExists)
        #expect(ZooKeeperCodes.error(ZNOTEMPTY.rawValue) == .notEmpty)
        #expect(ZooKeeperCodes.error(ZCONNECTIONLOSS.rawValue) == .connectionLoss)
        #expect(ZooKeeperCodes.error(ZSESSIONEXPIRED.rawValue) == .sessionExpired)
        #expect(ZooKeeperCodes.error(ZINVALIDSTATE.rawValue) == .sessionExpired)
        #expect(ZooKeeperCodes.error(ZOPERATIONTIMEOUT.rawValue) == .operationTimeout)
        #expect(ZooKeeperCodes.error(ZBADARGUMENTS.rawValue) == .other(code: -8, message: "bad arguments"))
        #expect(ZooKeeperCodes.hex(0x1_0000_00ab) == "0x1000000ab")
        #expect(ZooKeeperCodes.hex(-1) == "0xffffffffffffffff")
    }
}
