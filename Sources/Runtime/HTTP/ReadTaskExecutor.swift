import Dispatch
import NIOCore

/// Where the async reads of the dashboard and `/metrics` (ZooKeeper: consumer groups, offsets,
/// owners, brokers) run: a serial queue of their own instead of Swift's cooperative pool. That
/// pool has as many threads as cores (two here); a caller that blocks one of them waiting for a
/// read's future — a test's `.wait()`, or any code that ever blocks there — could otherwise
/// leave the read no thread to run on until something else lets go (seen: a metrics test whose
/// read did not start for a minute while other tests held both threads).
public final class ReadTaskExecutor: TaskExecutor, @unchecked Sendable {
    public static let shared = ReadTaskExecutor()
    private let queue = DispatchQueue(label: "metaq.dashboard-reads")

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}

extension EventLoopPromise where Value: Sendable {
    /// Completes the promise with `body`'s result, run as a task on `ReadTaskExecutor`.
    public func completeWithReadTask(_ body: @escaping @Sendable () async throws -> Value) {
        Task(executorPreference: ReadTaskExecutor.shared) {
            do { self.succeed(try await body()) } catch { self.fail(error) }
        }
    }
}
