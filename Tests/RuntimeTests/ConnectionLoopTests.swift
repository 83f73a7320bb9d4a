import BrokerCore
import Dispatch
import Foundation
import Glibc
import Logging
import ProtocolCore
import StoreCore
import Testing
@testable import Runtime

/// Issue 18: connections on their own loop hand requests to the node's loop. What that loop may
/// queue for the node is bounded (`maxQueuedRequestBytes`): with the node's loop held up, a
/// client that keeps sending makes its connection loop stop reading instead of queueing all it
/// sends; once the node runs again every request is answered. Every wait has a deadline.
@Suite("Connection loops (runtime driver)", .serialized)
struct ConnectionLoopTests {
    @Test func aLoopStopsReadingWhileTheNodeIsBehindAndEveryPutIsAnsweredAfter() throws {
        try withTemporaryDirectory { directory in
            let ini = """
                [system]
                brokerId=1
                dataPath=\(directory)
                unflushThreshold=1000
                ioThreads=1
                maxQueuedRequestBytes=2*1024*1024
                [topic=test]
                """
            let config = try ServerConfig(parsing: ini, path: "test.ini")
            let settings = BrokerNode.Settings(brokerURI: "meta://127.0.0.1:8123", version: "t", configFile: Array(ini.utf8), seed: 1)
            let (node, _) = try BrokerNode.open(storage: FileStorage(), config: config, defaultDataPath: directory,
                                                settings: settings, clock: NodeClock(now: Clocks.monotonic(), wallMs: Clocks.wallMs()))
            let server = BrokerServer(node: node, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
            let port = try server.start(host: "127.0.0.1", port: 0)
            defer { _ = try? server.stop() }
            let home = try #require(server.connectionLoops.first)
            #expect(server.connectionLoops.count == 1 && !(home.loop === server.loop), "connections off the node's loop")

            // Hold the node's loop: nothing handed to it is handled until the gate opens.
            let gate = DispatchSemaphore(value: 0)
            let held = DispatchSemaphore(value: 0)
            server.loop.execute {
                held.signal()
                _ = gate.wait(timeout: .now() + 120)
            }
            #expect(held.wait(timeout: .now() + 30) == .success)

            let client = try #require(Self.connect(port: port))
            defer { client.close() }
            let body = [UInt8](repeating: 0x61, count: 1000)
            let puts = 16_000  // ~16 MiB, eight times the bound
            let writer = Thread {
                var bytes: [UInt8] = []
                bytes.reserveCapacity(300 << 10)
                for opaque in 1...puts {
                    bytes.append(contentsOf: "put test 0 \(body.count) 0 -1 \(opaque)\r\n".utf8)
                    bytes.append(contentsOf: body)
                    if bytes.count > 256 << 10 || opaque == puts {
                        Self.writeAll(client.fd, bytes)
                        bytes.removeAll(keepingCapacity: true)
                    }
                }
            }
            writer.start()

            // The loop pauses, with no more queued than the bound and one loop iteration's reads.
            var paused = false
            let deadline = Date().addingTimeInterval(60)
            while !paused && Date() < deadline {
                paused = try home.loop.submit { home.isPausedForNode }.wait()
                if !paused { usleep(2000) }
            }
            #expect(paused, "the connection loop stopped reading while the node was behind")
            let queued = home.queuedBytes.load(ordering: .relaxed)
            #expect(queued > 2 << 20 && queued <= (2 << 20) + (4 << 20), "queued \(queued) bytes")

            // The node runs again: every put is answered, in order of arrival.
            gate.signal()
            var answered = 0
            var pending: [UInt8] = []
            var start = 0
            let readDeadline = Date().addingTimeInterval(120)
            while answered < puts && Date() < readDeadline {
                let chunk = Self.readSome(client.fd, timeoutMs: 30_000)
                if chunk.isEmpty { break }
                pending.removeFirst(start)
                start = 0
                pending += chunk
                while let end = Self.lineEnd(pending, from: start) {
                    // `result 200 <n> <opaque>␍␊<msgId> <partition> <offset>`: skip the body too.
                    let fields = pending[start..<end].split(separator: 0x20)
                    guard fields.count == 4, let length = Int(String(decoding: fields[2], as: UTF8.self)),
                          pending.count >= end + 2 + length else { break }
                    #expect(Array(fields[0]) == Array("result".utf8) && Array(fields[1]) == Array("200".utf8),
                            "\(String(decoding: pending[start..<end], as: UTF8.self))")
                    answered += 1
                    start = end + 2 + length
                }
            }
            #expect(answered == puts)
            #expect(home.queuedBytes.load(ordering: .relaxed) == 0, "the node handled everything it was handed")
            // Reading resumes at the loop's next check once the node caught up (it may have paused
            // again near the end): wait for it.
            var resumed = false
            let resumeDeadline = Date().addingTimeInterval(30)
            while !resumed && Date() < resumeDeadline {
                resumed = try home.loop.submit { !home.isPausedForNode }.wait()
                if !resumed { usleep(2000) }
            }
            #expect(resumed)
        }
    }

    static func lineEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= start + 2 else { return nil }
        for index in start..<(bytes.count - 1) where bytes[index] == 0x0D && bytes[index + 1] == 0x0A { return index }
        return nil
    }

    /// What one read returns once the socket is readable (empty at end of stream or after
    /// `timeoutMs` without a byte).
    static func readSome(_ fd: Int32, timeoutMs: Int32) -> [UInt8] {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, timeoutMs) == 1 else { return [] }
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        return n > 0 ? Array(buffer[0..<n]) : []
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + sent, $0.count - sent) }
            guard n > 0 else { return }
            sent += n
        }
    }

    static func connect(port: Int) -> TestSocket? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        return fd >= 0 && ok ? TestSocket(fd: fd, port: port) : nil
    }
}
