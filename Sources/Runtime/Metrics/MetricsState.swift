import BrokerCore
import Prometheus
import ProtocolCore

/// A registry counter fed from a monotonic counter the broker keeps: each scrape adds what the
/// broker's value moved since the last one. An older value (a slower concurrent scrape) adds
/// nothing, so the exported counter never decreases.
struct TrackedCounter {
    let counter: Counter
    var last: Int64 = 0

    mutating func advance(to value: Int64) {
        guard value > last else { return }
        counter.increment(by: value - last)
        last = value
    }
}

/// The same for a counter in fractional units (CPU seconds).
struct TrackedFloatCounter {
    let counter: Counter
    var last: Double = 0

    mutating func advance(to value: Double) {
        guard value > last else { return }
        counter.increment(by: value - last)
        last = value
    }
}

/// A gauge family whose label sets follow the broker (partitions, slaves, consumer groups):
/// each scrape sets the series it is given and unregisters those it no longer is, so a deleted
/// topic's series disappear instead of freezing at their last value.
struct GaugeFamily {
    let name: String
    let help: String
    let labelNames: [String]
    var gauges: [[String]: Gauge] = [:]

    init(_ name: String, _ help: String, labels: [String]) {
        self.name = name
        self.help = help
        self.labelNames = labels
    }

    mutating func update(_ rows: [(labels: [String], value: Double)], in registry: PrometheusCollectorRegistry) {
        var seen = Set<[String]>()
        for row in rows where row.labels.count == labelNames.count {
            seen.insert(row.labels)
            let gauge = gauges[row.labels] ?? {
                let made = registry.makeGauge(descriptor: .named(name, help), labels: Array(zip(labelNames, row.labels)))
                gauges[row.labels] = made
                return made
            }()
            gauge.set(to: row.value)
        }
        for (labels, gauge) in gauges where !seen.contains(labels) {
            registry.unregisterGauge(gauge)
            gauges[labels] = nil
        }
    }
}

extension MetricNameDescriptor {
    /// A whole metric name as written in docs/METRICS.md (unit suffix included) and its help.
    static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}

/// What a scrape learned of consumer lag.
enum ConsumerLagRead: Sendable {
    /// No source was given (local mode, or not wired): the metric is not exported.
    case notConfigured
    /// The source failed (ZooKeeper unreachable): the scrape leaves the series out.
    case failed
    case rows([ConsumerLagSample])
}

/// Every series `BrokerMetrics` owns, and what the broker's counters were at the last scrape.
/// Touched under `BrokerMetrics`'s lock only.
struct MetricsState: @unchecked Sendable {
    let registry: PrometheusCollectorRegistry
    // Requests and traffic (StatsCounters, §9 of reference/metaq.md).
    var puts: TrackedCounter
    var putFailures: TrackedCounter
    var gets: TrackedCounter
    var getMisses: TrackedCounter
    var offsetRequests: TrackedCounter
    var transactions: [(value: KeyPath<StatsCounters, Int64>, counter: TrackedCounter)]
    var receivedBytes: TrackedCounter
    var sentBytes: TrackedCounter
    var syncs: TrackedCounter
    var consumerLagReadFailures: TrackedCounter
    // Broker gauges.
    let connections: Gauge
    let uptime: Gauge
    let startTime: Gauge
    let partitionCount: Gauge
    let closedPartitions: Gauge
    let failedPartitions: Gauge
    var info = GaugeFamily("metaq_broker_info", "Always 1; labels: the broker's version, id and role.", labels: ["version", "broker_id", "role"])
    var partitionMessages = GaugeFamily("metaq_partition_messages", "Messages held by the partition's log.", labels: ["topic", "partition"])
    var partitionBytes = GaugeFamily("metaq_partition_size_bytes", "Bytes held by the partition's log.", labels: ["topic", "partition"])
    var partitionMinOffset = GaugeFamily("metaq_partition_min_offset", "First readable offset (bytes) of the partition's log.", labels: ["topic", "partition"])
    var partitionMaxOffset = GaugeFamily("metaq_partition_max_offset", "End offset (bytes) of the partition's log: where the next message goes.", labels: ["topic", "partition"])
    var topicMessages = GaugeFamily("metaq_topic_messages", "Messages held by all partitions of the topic on this broker.", labels: ["topic"])
    var topicBytes = GaugeFamily("metaq_topic_size_bytes", "Bytes held by all partitions of the topic on this broker.", labels: ["topic"])
    var replicationLagBytes = GaugeFamily("metaq_replication_lag_bytes", "Bytes of the master's partition a slave does not hold yet.", labels: ["role", "slave_id", "topic", "partition"])
    var replicationLagSeconds = GaugeFamily("metaq_replication_lag_seconds", "How long the slave has been behind on the partition (0 at the end; absent when unknown).", labels: ["role", "slave_id", "topic", "partition"])
    var consumerLag = GaugeFamily("metaq_consumer_lag_bytes", "Bytes between the partition's end and the consumer group's committed offset.", labels: ["group", "topic", "partition"])
    var consumerLagMessages = GaugeFamily("metaq_consumer_lag_messages", "Messages between the partition's end and the consumer group's committed offset (estimated at the partition's average message size).", labels: ["group", "topic", "partition"])
    // Process (the names every Prometheus client library uses).
    var cpuSeconds: TrackedFloatCounter
    let residentMemory: Gauge
    let virtualMemory: Gauge
    let processStart: Gauge
    let openDescriptors: Gauge
    let maxDescriptors: Gauge
    let threads: Gauge

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> TrackedCounter {
            TrackedCounter(counter: labels.isEmpty ? registry.makeCounter(descriptor: .named(name, help))
                                                   : registry.makeCounter(descriptor: .named(name, help), labels: labels))
        }
        func gauge(_ name: String, _ help: String) -> Gauge { registry.makeGauge(descriptor: .named(name, help)) }
        puts = counter("metaq_puts_total", "Put requests received, failed ones included (stats cmd_put).")
        putFailures = counter("metaq_put_failures_total", "Put requests answered with anything but 200 (stats put_failed).")
        gets = counter("metaq_gets_total", "Get requests received (stats cmd_get).")
        getMisses = counter("metaq_get_misses_total", "Get requests answered 404: nothing at the offset (stats get_miss).")
        offsetRequests = counter("metaq_offset_requests_total", "Offset requests plus gets answered 301 (stats cmd_offset).")
        let txHelp = "Transaction operations by kind (stats tx_begin, tx_xa_begin, tx_commit, tx_rollback)."
        let operations: [(String, KeyPath<StatsCounters, Int64>)] =
            [("begin", \.txBegin), ("xa_begin", \.txXaBegin), ("commit", \.txCommit), ("rollback", \.txRollback)]
        transactions = operations.map { name, value in
            (value: value, counter: counter("metaq_transaction_operations_total", txHelp, [("operation", name)]))
        }
        receivedBytes = counter("metaq_received_bytes_total", "Bytes of put message bodies received.")
        sentBytes = counter("metaq_sent_bytes_total", "Bytes of get answers (message data) sent.")
        syncs = counter("metaq_syncs_total", "Sync cycles (fdatasync of a batch) completed.")
        consumerLagReadFailures = counter("metaq_consumer_lag_read_failures_total", "Scrapes whose consumer lag could not be read (ZooKeeper unreachable); their lag series are left out.")
        connections = gauge("metaq_connections", "Client connections open now.")
        uptime = gauge("metaq_uptime_seconds", "Seconds since the broker started.")
        startTime = gauge("metaq_start_time_seconds", "When the broker started, in seconds since the Unix epoch.")
        partitionCount = gauge("metaq_partitions", "Partition logs on this broker.")
        closedPartitions = gauge("metaq_partitions_closed", "Partitions an operator closed for writing.")
        failedPartitions = gauge("metaq_partitions_failed", "Partitions refusing writes after a disk error.")
        cpuSeconds = TrackedFloatCounter(counter: registry.makeCounter(descriptor: .named("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.")))
        residentMemory = gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
        virtualMemory = gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.")
        processStart = gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.")
        openDescriptors = gauge("process_open_fds", "Number of open file descriptors.")
        maxDescriptors = gauge("process_max_fds", "Maximum number of open file descriptors.")
        threads = gauge("process_threads", "Number of OS threads in the process.")
    }

    mutating func update(_ o: BrokerObservation, consumerLag lag: ConsumerLagRead, process: ProcessSample) {
        let c = o.counters
        puts.advance(to: c.cmdPut)
        putFailures.advance(to: c.putFailed)
        gets.advance(to: c.cmdGet)
        getMisses.advance(to: c.getMiss)
        offsetRequests.advance(to: c.cmdOffset)
        for index in transactions.indices { transactions[index].counter.advance(to: c[keyPath: transactions[index].value]) }
        receivedBytes.advance(to: o.bytesIn)
        sentBytes.advance(to: o.bytesOut)
        syncs.advance(to: Int64(clamping: o.syncStats.fsync.count))

        let s = o.snapshot
        connections.set(to: Double(s.currentConnections))
        uptime.set(to: Double(max(0, o.takenWallMs - o.startedWallMs)) / 1000)
        startTime.set(to: Double(o.startedWallMs) / 1000)
        partitionCount.set(to: Double(s.partitions.count))
        closedPartitions.set(to: Double(o.closedPartitions.count))
        failedPartitions.set(to: Double(o.failedPartitions.count))
        info.update([(["\(o.version)", "\(o.config.brokerId)", s.isSlave ? "slave" : "master"], 1)], in: registry)

        let partitions = s.partitions
        func rows(_ value: (StatsSnapshot.PartitionStats) -> Int64) -> [(labels: [String], value: Double)] {
            partitions.map { ([$0.partition.topic, "\($0.partition.partition)"], Double(value($0))) }
        }
        partitionMessages.update(rows(\.messageCount), in: registry)
        partitionBytes.update(rows(\.bytes), in: registry)
        partitionMinOffset.update(rows(\.minOffset), in: registry)
        partitionMaxOffset.update(rows(\.maxOffset), in: registry)
        var perTopic: [String: (messages: Int64, bytes: Int64)] = [:]
        for p in partitions {
            let sum = perTopic[p.partition.topic, default: (0, 0)]
            perTopic[p.partition.topic] = (sum.messages + p.messageCount, sum.bytes + p.bytes)
        }
        topicMessages.update(perTopic.map { ([$0.key], Double($0.value.messages)) }, in: registry)
        topicBytes.update(perTopic.map { ([$0.key], Double($0.value.bytes)) }, in: registry)

        func replicationLabels(_ r: ReplicationLag) -> [String] {
            [r.role == .slave ? "slave" : "master", "\(r.slaveId)", r.partition.topic, "\(r.partition.partition)"]
        }
        replicationLagBytes.update(o.replicationLag.map { (replicationLabels($0), Double($0.lagBytes)) }, in: registry)
        replicationLagSeconds.update(o.replicationLag.compactMap { r in r.lagMs.map { (replicationLabels(r), Double($0) / 1000) } },
                                     in: registry)
        var lagRows: [ConsumerLagSample] = []
        switch lag {
        case .rows(let rows): lagRows = rows
        case .failed: consumerLagReadFailures.advance(to: consumerLagReadFailures.last + 1)
        case .notConfigured: break
        }
        consumerLag.update(lagRows.map { ([$0.group, $0.topic, $0.partition], Double(max(0, $0.lagBytes))) }, in: registry)
        consumerLagMessages.update(lagRows.map { ([$0.group, $0.topic, $0.partition], Double(max(0, $0.lagMessages))) }, in: registry)

        if let v = process.cpuSeconds { cpuSeconds.advance(to: v) }
        if let v = process.residentBytes { residentMemory.set(to: Double(v)) }
        if let v = process.virtualBytes { virtualMemory.set(to: Double(v)) }
        if let v = process.startTimeSeconds { processStart.set(to: v) }
        if let v = process.openDescriptors { openDescriptors.set(to: Double(v)) }
        if let v = process.maxDescriptors { maxDescriptors.set(to: Double(v)) }
        if let v = process.threads { threads.set(to: Double(v)) }
    }
}
