import ArgumentParser
import Foundation
import MetaQClient
import Synchronization

/// Throughput through `MetaQClient`: a producer with async sends over the cluster's partitions,
/// then a consumer group of --members members (each its own client) reading it all.
struct BenchGroup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-group",
        abstract: "Benchmark MetaQClient on a cluster: async producer throughput, then consumer-group throughput.",
        discussion: """
            Sends --count messages through one MetaQClient producer (round robin over every partition the \
            cluster registers, --window sends in flight), then starts --members consumers in a new group \
            that read the topic from offset 0 until every message sent was handled once. Prints msgs/s and \
            MB/s for both phases. Needs a cluster (--zookeeper), or, with --produce-only, brokers given by \
            --servers (no ZooKeeper: each put names partition -1 and the broker picks one).
            """)

    @OptionGroup var zooKeeper: ZooKeeperOption

    @Option(help: "Topic to use.")
    var topic = "test"

    @Option(help: "Messages to send and then consume.")
    var count = 100_000

    @Option(help: "Payload bytes per message.")
    var messageSize = 100

    @Option(help: "Sends in flight at once (over all brokers).")
    var window = 1024

    @Option(help: "Puts in flight per broker connection (the producer's maxInFlight).")
    var maxInFlight = 256

    @Option(help: "Consumers in the group (each with its own client and ZooKeeper session).")
    var members = 2

    @Option(help: "Brokers to send to directly, comma-separated meta://host:port (instead of --zookeeper; needs --produce-only).")
    var servers: String?

    @Flag(help: "Only the producer phase (no consumer group).")
    var produceOnly = false

    @Option(help: "Producers of the one client the sends are spread over, round robin (each has its own connection per broker).")
    var producers = 1

    func validate() throws {
        guard count > 0, messageSize >= 0, window > 0, maxInFlight > 0, members > 0, producers > 0 else {
            throw ValidationError("--count, --window, --max-in-flight, --members and --producers must be positive")
        }
        if servers != nil {
            guard zooKeeper.connect == nil else { throw ValidationError("give --servers or --zookeeper, not both") }
            guard produceOnly else { throw ValidationError("--servers needs --produce-only (the consumer group needs ZooKeeper)") }
        }
    }

    func run() async throws {
        let settings = ProducerSettings(maxInFlight: maxInFlight, maxQueued: window * 2)
        if let servers {
            let client = try MetaQClient(servers: servers.split(separator: ",").map(String.init),
                                         logger: ZooKeeperOption.quietLogger)
            _ = try await produce((0..<producers).map { _ in client.producer(settings) }, keepIds: false)
            await client.shutdown()
            return
        }
        guard let connect = zooKeeper.connect else { throw ValidationError("--zookeeper host:port (or --servers) is required") }
        let producerClient = try MetaQClient(zooKeeper: connect, root: zooKeeper.root, logger: ZooKeeperOption.quietLogger)
        let senders = (0..<producers).map { _ in producerClient.producer(settings) }
        let partitions = try await senders[0].publish(topic)
        for producer in senders.dropFirst() { try await producer.publish(topic) }
        guard !partitions.isEmpty else { throw ValidationError("no broker has registered topic \(topic)") }
        let sent = try await produce(senders, keepIds: !produceOnly)
        await producerClient.shutdown()
        if !produceOnly { try await consume(connect, expecting: sent, partitions: partitions.count) }
    }

    /// Sends --count messages over `producers`; returns the msgIds stored when `keepIds` (the
    /// consumer phase checks them), else nothing (only acknowledgements are counted).
    func produce(_ producers: [MetaQProducer], keepIds: Bool) async throws -> Set<Int64> {
        let payload = [UInt8](repeating: 0x61, count: messageSize)
        let ids = Shared<Set<Int64>>([])
        let acknowledgedCount = Counter()
        let failedCount = Counter()
        let slots = SendWindow(window)
        let started = ContinuousClock.now
        for i in 0..<count {
            await slots.acquire()
            producers[i % producers.count].send(topic: topic, data: payload) { result in
                switch result {
                case .success(let r):
                    acknowledgedCount.add()
                    if keepIds { ids.value.withLock { _ = $0.insert(r.msgId) } }
                case .failure: failedCount.add()
                }
                slots.release()
            }
        }
        await slots.drain()
        let seconds = (ContinuousClock.now - started).seconds
        let acknowledged = acknowledgedCount.value
        let failed = failedCount.value
        report("produce (MetaQClient, \(producers.count) producer(s), window \(window), \(maxInFlight) in flight per connection)",
               acknowledged, seconds)
        if failed > 0 { FileHandle.standardError.write(Data("\(failed) sends failed\n".utf8)) }
        return ids.value.withLock { $0 }
    }

    func consume(_ connect: String, expecting ids: Set<Int64>, partitions: Int) async throws {
        let group = "bench-\(UInt32.random(in: 0...UInt32.max))"
        let seen = Shared<(ids: Set<Int64>, handled: Int, bytes: Int)>(([], 0, 0))
        var clients: [MetaQClient] = []
        var consumers: [MetaQConsumer] = []
        let started = ContinuousClock.now
        var runs: [Task<Void, any Error>] = []
        for i in 0..<members {
            let client = try MetaQClient(zooKeeper: connect, root: zooKeeper.root, logger: ZooKeeperOption.quietLogger)
            let consumer = try client.consumer(group: group, ConsumerSettings(consumerId: "m\(i)", rebalanceRetryDelayMs: 500))
            try consumer.subscribe(topic)
            clients.append(client)
            consumers.append(consumer)
            runs.append(Task {
                try await consumer.run { message in
                    seen.value.withLock { s in
                        s.handled += 1
                        s.bytes += message.data.count + 20
                        if ids.contains(message.id) { s.ids.insert(message.id) }
                    }
                }
            })
        }
        while seen.value.withLock({ $0.ids.count }) < ids.count {
            try await Task.sleep(for: .milliseconds(20))
            if ContinuousClock.now - started > .seconds(600) { throw ValidationError("the group did not read everything in 600 s") }
        }
        let seconds = (ContinuousClock.now - started).seconds
        let (handled, bytes) = seen.value.withLock { ($0.handled, $0.bytes) }
        report("consume (group of \(members) over \(partitions) partitions, incl. join and rebalance)", handled, seconds,
               bytes: bytes)
        for consumer in consumers { await consumer.close() }
        for run in runs { _ = try? await run.value }
        for client in clients { await client.shutdown() }
    }

    /// `bytes`: record bytes handled (payload + 20-byte header); default: `messages` records of --message-size.
    func report(_ title: String, _ messages: Int, _ seconds: Double, bytes: Int? = nil) {
        let rate = Double(messages) / max(seconds, 1e-9)
        let mb = Double(bytes ?? messages * (messageSize + 20)) / max(seconds, 1e-9) / 1_000_000
        print(String(format: "%@: %d msgs in %.2f s = %.0f msgs/s, %.1f MB/s", title, messages, seconds, rate, mb))
    }
}

/// State shared between tasks and callbacks, behind a lock held only for a few instructions.
final class Shared<Value: Sendable>: Sendable {
    let value: Mutex<Value>
    init(_ initial: Value) { value = Mutex(initial) }
}

/// A count bumped from completions on the client's loop (no lock per send).
final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    func add() { count.wrappingAdd(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .acquiring) }
}

/// The send window of the benchmark's one producing task: completions give slots back, and the
/// task, when it had to wait, is woken once half the window is free (one wake-up per many sends,
/// not one per send). Completions only bump a counter and read a flag: no lock per send on the
/// client's loop (where completions run) and no lock shared per send with the sending task.
final class SendWindow: Sendable {
    private let size: Int
    /// Slots taken; written only by the sending task (atomic only to be shareable).
    private let taken = Atomic<Int>(0)
    /// Slots given back by completions.
    private let returned = Atomic<Int>(0)
    /// Whether the task waits; set before it checks `returned` again, read after each release.
    private let hasWaiter = Atomic<Bool>(false)
    private let waiter = Mutex<(wakeAt: Int, continuation: CheckedContinuation<Void, Never>?)>((0, nil))  // the waiting task

    init(_ size: Int) { self.size = size }

    /// Takes one slot, waiting for half the window to be free when there is none.
    func acquire() async {
        while true {
            let t = taken.load(ordering: .relaxed)
            if t - returned.load(ordering: .acquiring) < size {
                taken.store(t + 1, ordering: .relaxed)
                return
            }
            await waitUntil(returned: t - size / 2)  // half the window free
        }
    }

    /// Waits until every slot is back.
    func drain() async { await waitUntil(returned: taken.load(ordering: .relaxed)) }

    private func waitUntil(returned target: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = waiter.withLock { w -> Bool in
                w = (target, continuation)
                // Published before `returned` is read again: a release either sees the flag
                // or its slot is counted here (both sequentially consistent).
                hasWaiter.store(true, ordering: .sequentiallyConsistent)
                guard returned.load(ordering: .sequentiallyConsistent) >= target else { return false }
                w = (0, nil)
                hasWaiter.store(false, ordering: .sequentiallyConsistent)
                return true
            }
            if ready { continuation.resume() }
        }
    }

    func release() {
        returned.wrappingAdd(1, ordering: .sequentiallyConsistent)
        guard hasWaiter.load(ordering: .sequentiallyConsistent) else { return }
        let waiting = waiter.withLock { w -> CheckedContinuation<Void, Never>? in
            guard let continuation = w.continuation, returned.load(ordering: .sequentiallyConsistent) >= w.wakeAt else { return nil }
            w = (0, nil)
            hasWaiter.store(false, ordering: .sequentiallyConsistent)
            return continuation
        }
        waiting?.resume()
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
