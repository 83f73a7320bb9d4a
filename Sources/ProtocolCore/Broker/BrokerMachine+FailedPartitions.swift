/// Partitions whose log failed a write or a sync (DESIGN.md §4): they refuse writes until the
/// broker restarts, since neither is ever retried. The runtime reports the failure once
/// (`.partitionFailed`); from then on the machine answers every put to the partition itself,
/// saying since when and why, and `stats` lists them, so a client or an operator learns it
/// without reading the broker's log.
extension BrokerMachine {
    /// A partition that refuses writes: when the machine learnt of it and what failed.
    public struct PartitionFailure: Equatable, Sendable {
        /// Wall-clock milliseconds of the event that reported it.
        public var sinceMs: Int64
        /// The failed operation and its cause, e.g. `write failed: I/O error on <file>: pwrite:
        /// No space left on device (ENOSPC)`.
        public var cause: String

        public init(sinceMs: Int64, cause: String) {
            self.sinceMs = sinceMs
            self.cause = cause
        }
    }

    /// The first report counts: later ones (a sync failing after the write did) keep the cause
    /// that put the partition out of service.
    mutating func recordFailure(_ partition: TopicPartition, cause: String) {
        guard failedPartitions[partition] == nil else { return }
        failedPartitions[partition] = PartitionFailure(sinceMs: clockMs, cause: cause)
    }

    /// The error detail of a put to a failed partition, after the put prefix.
    func refusal(_ partition: TopicPartition, _ failure: PartitionFailure) -> String {
        "partition \(partition) refuses writes since \(GregorianCalendar.utcTimestamp(milliseconds: failure.sinceMs)) "
            + "(\(failure.cause)); restart the broker after fixing the disk"
    }

    /// The error detail of a put the store could not take: its cause, and for a put caught in the
    /// failure of its partition's log, that the partition is now out of service.
    func storeFailureDetail(_ partition: TopicPartition, _ failure: StoreFailure) -> String {
        guard failedPartitions[partition] != nil else { return failure.message }
        return failure.message + "; partition \(partition) refuses writes until the broker is restarted"
    }

    /// `stats failed_partitions`: one `<topic>-<partition> <since> <cause>` line per failed
    /// partition, sorted; a key and a value per line, as MetaQ's Java client parses stats.
    func failedPartitionLines() -> [String] {
        failedPartitions.sorted { $0.key < $1.key }.map { partition, failure in
            "\(partition) refuses writes since \(GregorianCalendar.utcTimestamp(milliseconds: failure.sinceMs)): \(failure.cause)"
        }
    }
}
