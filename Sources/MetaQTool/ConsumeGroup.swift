import ArgumentParser
import Foundation
import MetaQClient
import Synchronization

extension Consume {
    /// Group consumption through `MetaQClient`: prints each message as it is handled.
    func consumeThroughCluster(_ connect: String) async throws {
        let client = try MetaQClient(zooKeeper: connect, root: zooKeeper.root, sessionTimeoutMs: zooKeeper.sessionTimeoutMs,
                                     logger: ZooKeeperOption.quietLogger)
        // Printing never fails; the only failed messages are those past --count, which must stay
        // uncommitted for the next run — never handed to a recover store.
        let consumer = try client.consumer(group: group, ConsumerSettings(
            startOffset: offset, fetchSizeBytes: maxSize, maxFetchRetries: Int.max / 2, rejection: .drop))
        try consumer.subscribe(topic)
        let progress = Mutex<(count: Int, last: ContinuousClock.Instant)>((0, .now))  // shared with the handler tasks
        let limit = count
        let watchdog = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                let (seen, last) = progress.withLock { ($0.count, $0.last) }
                if let limit, seen >= limit { break }
                if !follow && ContinuousClock.now - last > .seconds(5) { break }
            }
            await consumer.close()
        }
        try await consumer.run { message in
            let line = "\(message.partition) \(message.offset) \(message.id) \(message.attribute ?? "-") \(message.text)\n"
            let proceed = progress.withLock { state -> Bool in
                if let limit, state.count >= limit { return false }
                state.count += 1
                state.last = .now
                return true
            }
            // Past --count: fail the message so its offset is not committed (the next run gets it).
            guard proceed else { throw CancellationError() }
            FileHandle.standardOutput.write(Data(line.utf8))
        }
        watchdog.cancel()
        await client.shutdown()
    }
}
