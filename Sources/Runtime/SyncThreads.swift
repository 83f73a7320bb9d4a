import NIOCore
import NIOPosix
import ProtocolCore
import StoreCore
import Synchronization

/// The threads that run the node's syncs (`fdatasync`) off the event loop: a fixed pool per data
/// directory (`syncThreads`, 8 by default), fed in the order the node starts syncs.
///
/// Why a pool and not one thread: the node keeps at most one sync in flight per partition, but
/// partitions sync independently, and on ext4 concurrent `fdatasync`s of different files share
/// journal commits — eight files synced at once cost about a third of eight in a row on this VM
/// (docs/PERFORMANCE.md, "Both cores"). One thread per directory made the eighth partition wait
/// for seven other syncs. The simulator completes syncs of different partitions in any order, so
/// the node has never relied on a directory's syncs finishing in the order they began.
///
/// Threads are created when a directory's first sync starts and stopped by `shutdown()`.
/// Touched on the event loop only (the pools themselves are thread-safe).
struct SyncThreads {
    let threadsPerDirectory: Int
    private var pools: [String: NIOThreadPool] = [:]

    init(threadsPerDirectory: Int) {
        self.threadsPerDirectory = max(1, threadsPerDirectory)
    }

    /// Runs `work` on one of `dataPath`'s sync threads.
    mutating func run(in dataPath: String, _ work: @escaping @Sendable () -> Void) {
        let pool: NIOThreadPool
        if let existing = pools[dataPath] {
            pool = existing
        } else {
            pool = NIOThreadPool(numberOfThreads: threadsPerDirectory)
            pool.start()
            pools[dataPath] = pool
        }
        pool.submit { state in
            // A pool is shut down only after the node's stop, when no sync is in flight.
            guard case .active = state else { return }
            work()
        }
    }

    /// Stops every pool's threads (after the node's stop: no sync is in flight then).
    mutating func shutdown() {
        for pool in pools.values { try? pool.syncShutdownGracefully() }
        pools = [:]
    }
}

/// Results of syncs on their way from the sync threads to the event loop. The thread that finds
/// the inbox empty schedules one drain on the loop; results that arrive before it runs ride the
/// same drain, so the node hears of every sync that ended meanwhile before its tick ends — the
/// puts they made durable are answered with one write per connection, not one per sync.
final class SyncInbox: Sendable {
    enum Completion: @unchecked Sendable {
        /// A partition's sync (`SyncWork` carries its timings).
        case partition(TopicPartition, SyncWork, Result<Void, StorageError>)
        /// The transaction journal's sync.
        case journal(id: UInt64, Result<Void, StorageError>)
    }

    private let completions = Mutex<[Completion]>([])

    /// Adds a result; true when the inbox was empty (the caller schedules the drain).
    func post(_ completion: Completion) -> Bool {
        completions.withLock { list in
            list.append(completion)
            return list.count == 1
        }
    }

    /// Everything posted since the last call, in the order it arrived.
    func take() -> [Completion] {
        completions.withLock { list in
            let taken = list
            list.removeAll(keepingCapacity: true)
            return taken
        }
    }
}
