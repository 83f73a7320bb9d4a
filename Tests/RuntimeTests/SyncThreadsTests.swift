import Dispatch
import ProtocolCore
import StoreCore
import Testing
@testable import Runtime

/// Issue 18: the threads that run syncs. The node keeps one sync per partition in flight; these
/// check what the runtime adds — syncs of one data directory run at the same time, and results
/// that arrive together reach the loop in one drain, in arrival order.
@Suite("Sync threads and the sync inbox")
struct SyncThreadsTests {
    /// Two jobs of one directory run at once: the first waits for a signal only the second
    /// gives. With one thread per directory (before issue 18) the first would wait forever; the
    /// wait has a deadline, so a serial pool fails the test instead of hanging it.
    @Test func syncsOfOneDirectoryOverlap() {
        var threads = SyncThreads(threadsPerDirectory: 2)
        defer { threads.shutdown() }
        let secondStarted = DispatchSemaphore(value: 0)
        let firstSawSecond = DispatchSemaphore(value: 0)
        threads.run(in: "/data") {
            if secondStarted.wait(timeout: .now() + 30) == .success { firstSawSecond.signal() }
        }
        threads.run(in: "/data") { secondStarted.signal() }
        #expect(firstSawSecond.wait(timeout: .now() + 60) == .success)
    }

    /// With `syncThreads=1` a directory's syncs run one after the other, in the order started.
    @Test func oneThreadRunsSyncsInOrder() {
        var threads = SyncThreads(threadsPerDirectory: 1)
        defer { threads.shutdown() }
        let order = OrderLog()
        let done = DispatchSemaphore(value: 0)
        for index in 0..<20 {
            threads.run(in: "/data") {
                order.append(index)
                if index == 19 { done.signal() }
            }
        }
        #expect(done.wait(timeout: .now() + 60) == .success)
        #expect(order.values == Array(0..<20))
    }

    /// Only the first result of a drain asks for one; every result comes out once, in order.
    @Test func inboxCoalescesResultsIntoOneDrain() {
        let inbox = SyncInbox()
        #expect(inbox.post(.journal(id: 1, .success(()))))
        #expect(!inbox.post(.journal(id: 2, .success(()))))
        #expect(!inbox.post(.journal(id: 3, .failure(.io(path: "/data/x", detail: "EIO")))))
        let taken = inbox.take()
        #expect(taken.map(Self.id) == [1, 2, 3])
        #expect(inbox.take().isEmpty)
        // After a drain the next result asks for a new one.
        #expect(inbox.post(.journal(id: 4, .success(()))))
        #expect(inbox.take().map(Self.id) == [4])
    }

    static func id(_ completion: SyncInbox.Completion) -> UInt64 {
        switch completion {
        case .journal(let id, _): id
        case .partition(_, let work, _): work.batch.id
        }
    }
}

/// Indices appended from sync threads.
final class OrderLog: @unchecked Sendable {
    private let lock = DispatchQueue(label: "order")
    private var list: [Int] = []
    func append(_ value: Int) { lock.sync { list.append(value) } }
    var values: [Int] { lock.sync { list } }
}
