import BrokerCore
import CoreMetrics
import NIOCore
import NIOPosix
import Prometheus
import ProtocolCore
import Synchronization

/// The broker's Prometheus metrics (issue 19; every metric is listed in docs/METRICS.md).
///
/// Costs the put path nothing: no metric is touched per request. A scrape (`exposition()`) takes
/// one `BrokerServer.observe()` — a copy of counters the broker keeps anyway, made on its loop —
/// and does the rest off that loop: counters of the registry advance by what the broker's own
/// monotonic counters moved since the previous scrape, gauges are set, per-partition series
/// come and go with the partitions, the sync-cycle histograms are converted to Prometheus
/// buckets, and /proc is read for the `process_*` metrics.
///
/// Scrapes may come concurrently (several Prometheus servers, a dashboard page): rendering holds
/// one lock, so each answer is whole and no counter ever goes backwards (an observation older
/// than what a counter already shows moves nothing).
public final class BrokerMetrics: Sendable {
    /// Consumer lag rows for `metaq_consumer_lag_*` against the scrape's observation, their
    /// future on the given loop (cluster mode: `zooKeeperConsumerLag`, read from ZooKeeper).
    public typealias ConsumerLagSource = @Sendable (BrokerObservation, any EventLoop) -> EventLoopFuture<[ConsumerLagSample]>

    /// The registry the broker's series live in; other code may register its own metrics here
    /// (or through swift-metrics after `bootstrapMetricsSystem()`), and they are scraped too.
    public let registry: PrometheusCollectorRegistry
    private let observe: @Sendable () -> EventLoopFuture<BrokerObservation>
    private let renderLoop: any EventLoop
    private let consumerLag: ConsumerLagSource?
    private let consumerLagTimeoutMs: Int64
    private let state: Mutex<MetricsState>

    /// - Parameters:
    ///   - renderingOn: where scrapes are rendered: never the node's loop. The dashboard passes
    ///     its HTTP loop; by default one of NIO's shared loops.
    ///   - consumerLag: consumer lag per group and partition (cluster mode:
    ///     `BrokerMetrics.zooKeeperConsumerLag`); without it the metric is not exported.
    public convenience init(server: BrokerServer, renderingOn loop: (any EventLoop)? = nil,
                            consumerLag: ConsumerLagSource? = nil,
                            registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.init(observe: { server.observe() }, renderingOn: loop, consumerLag: consumerLag, registry: registry)
    }

    /// Over any source of observations (tests).
    init(observe: @escaping @Sendable () -> EventLoopFuture<BrokerObservation>, renderingOn loop: (any EventLoop)?,
         consumerLag: ConsumerLagSource?, consumerLagTimeoutMs: Int64 = BrokerMetrics.consumerLagTimeoutMs,
         registry: PrometheusCollectorRegistry) {
        self.observe = observe
        self.consumerLagTimeoutMs = consumerLagTimeoutMs
        self.renderLoop = loop ?? MultiThreadedEventLoopGroup.singleton.any()
        self.consumerLag = consumerLag
        self.registry = registry
        self.state = Mutex(MetricsState(registry: registry))
    }

    /// The Prometheus text exposition (format 0.0.4) of one observation of the broker, for
    /// `GET /metrics` (the dashboard serves it with `Content-Type: text/plain; version=0.0.4`).
    /// Fails only when the broker cannot be observed (it is stopping).
    public func exposition() -> EventLoopFuture<String> {
        let loop = renderLoop
        let source = consumerLag
        let timeoutMs = consumerLagTimeoutMs
        return observe().hop(to: loop).flatMap { observation in
            guard let source else { return loop.makeSucceededFuture((observation, ConsumerLagRead.notConfigured)) }
            return Self.withTimeout(source(observation, loop).hop(to: loop), ms: timeoutMs, on: loop)
                .map { (observation, ConsumerLagRead.rows($0)) }
                .recover { _ in (observation, .failed) }
        }.map { observation, lag in
            self.render(observation, consumerLag: lag, process: ProcessSample.read())
        }
    }

    /// `future`, or a failure after `ms`, whichever comes first (a late result is dropped).
    static func withTimeout<T: Sendable>(_ future: EventLoopFuture<T>, ms: Int64, on loop: any EventLoop) -> EventLoopFuture<T> {
        let promise = loop.makePromise(of: T.self)
        let timeout = loop.scheduleTask(in: .milliseconds(ms)) {
            promise.fail(ConsumerLagUnavailable(timedOut: true))
        }
        future.whenComplete { result in
            timeout.cancel()
            promise.completeWith(result)
        }
        return promise.futureResult
    }

    /// Makes swift-metrics' global `MetricsSystem` record into this registry, so metrics made
    /// with the swift-metrics API (by this code base or a library) appear in `/metrics` too.
    /// Once per process: swift-metrics refuses a second bootstrap.
    public func bootstrapMetricsSystem() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    /// Brings every series up to `observation` and renders the whole exposition, under the lock.
    func render(_ observation: BrokerObservation, consumerLag: ConsumerLagRead, process: ProcessSample) -> String {
        state.withLock { state in
            state.update(observation, consumerLag: consumerLag, process: process)
            var text = Self.sortedFamilies(registry.emitToString())
            let sync = observation.syncStats
            for (name, help, histogram) in [
                ("metaq_put_duration_seconds", "Time from a put's write to its answer handed to the socket, per put answered (group commit: its batch's first write to the answers).", sync.batch),
                ("metaq_sync_wait_duration_seconds", "Sync cycle stage: the oldest write of a batch waiting for the sync in flight.", sync.waitForSync),
                ("metaq_sync_hand_off_duration_seconds", "Sync cycle stage: sync begun on the loop until fdatasync started on the sync thread.", sync.handOff),
                ("metaq_sync_fsync_duration_seconds", "Sync cycle stage: fdatasync of a batch's files.", sync.fsync),
                ("metaq_sync_hand_back_duration_seconds", "Sync cycle stage: fdatasync returned until the loop took the completion.", sync.handBack),
                ("metaq_sync_answer_duration_seconds", "Sync cycle stage: completion taken until the answers were handed to the sockets.", sync.answer),
            ] {
                HistogramExposition.append(name: name, help: help, histogram, to: &text)
            }
            return text
        }
    }

    /// The registry's text with families in name order and each family's series in label order:
    /// the registry emits them in hash order, different at every start, which makes a scrape
    /// hard to read and to compare.
    static func sortedFamilies(_ text: String) -> String {
        var families: [(name: Substring, comments: [Substring], samples: [Substring])] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("#") {
                let name = line.split(separator: " ", maxSplits: 3).dropFirst(2).first ?? ""
                if families.last?.name != name || !(families.last?.samples.isEmpty ?? false) {
                    families.append((name, [], []))
                }
                families[families.count - 1].comments.append(line)
            } else if !families.isEmpty {
                families[families.count - 1].samples.append(line)
            } else {
                families.append(("", [], [line]))
            }
        }
        var sorted = ""
        for family in families.sorted(by: { $0.name < $1.name }) {
            for line in family.comments + family.samples.sorted() { sorted += line + "\n" }
        }
        return sorted
    }
}
