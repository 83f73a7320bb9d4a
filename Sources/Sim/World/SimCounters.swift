/// How often each fault and rare path fired in a run (summed over a sweep, so we can see what
/// the seeds actually reached).
public struct SimCounters: Sendable, Equatable {
    public var runs = 0
    // faults
    public var powerLosses = 0
    public var crashes = 0
    public var disconnects = 0
    public var partitions = 0
    public var slowDisks = 0
    public var latentErrors = 0
    public var consumerCrashes = 0
    // paths reached
    public var syncs = 0
    public var recoveries = 0
    public var recoveryTruncations = 0
    public var recoveryRemovedSegments = 0
    public var recoveryDamage = 0
    public var acknowledged = 0
    public var failedPuts = 0
    public var unknownPuts = 0
    public var rejectedPuts = 0
    public var delivered = 0
    public var redelivered = 0
    public var lostUnsyncedAcknowledged = 0
    public var rotDestroyed = 0
    public var damageReports = 0
    public var consumerMoves = 0
    public var producerTimeouts = 0
    public var consumerTimeouts = 0
    public var staleAnswers = 0
    public var segmentRolls = 0
    public var canaryEarlyAcks = 0
    /// Power losses that found appended, unsynced bytes in a log (acknowledged ones too, under
    /// `unflushThreshold`).
    public var powerLossesBetweenAppendAndSync = 0
    /// Crashes and power losses that found a log whose newest segment was just rolled (empty).
    public var faultsRightAfterRoll = 0

    public init() {}

    public mutating func add(_ o: SimCounters) {
        runs += o.runs
        powerLosses += o.powerLosses; crashes += o.crashes; disconnects += o.disconnects
        partitions += o.partitions; slowDisks += o.slowDisks; latentErrors += o.latentErrors
        consumerCrashes += o.consumerCrashes
        syncs += o.syncs; recoveries += o.recoveries; recoveryTruncations += o.recoveryTruncations
        recoveryRemovedSegments += o.recoveryRemovedSegments; recoveryDamage += o.recoveryDamage
        acknowledged += o.acknowledged; failedPuts += o.failedPuts; unknownPuts += o.unknownPuts
        rejectedPuts += o.rejectedPuts; delivered += o.delivered; redelivered += o.redelivered
        lostUnsyncedAcknowledged += o.lostUnsyncedAcknowledged; rotDestroyed += o.rotDestroyed
        damageReports += o.damageReports; consumerMoves += o.consumerMoves
        producerTimeouts += o.producerTimeouts; consumerTimeouts += o.consumerTimeouts
        staleAnswers += o.staleAnswers; segmentRolls += o.segmentRolls; canaryEarlyAcks += o.canaryEarlyAcks
        powerLossesBetweenAppendAndSync += o.powerLossesBetweenAppendAndSync; faultsRightAfterRoll += o.faultsRightAfterRoll
    }

    /// `name value` pairs in a fixed order, for reports.
    public var fields: [(String, Int)] {
        [("runs", runs), ("power-losses", powerLosses), ("crashes", crashes), ("disconnects", disconnects),
         ("partitions", partitions), ("slow-disks", slowDisks), ("latent-errors", latentErrors),
         ("consumer-crashes", consumerCrashes), ("syncs", syncs), ("recoveries", recoveries),
         ("recovery-truncations", recoveryTruncations), ("recovery-removed-segments", recoveryRemovedSegments),
         ("recovery-damage", recoveryDamage), ("segment-rolls", segmentRolls), ("acknowledged", acknowledged),
         ("failed-puts", failedPuts), ("unknown-puts", unknownPuts), ("rejected-puts", rejectedPuts),
         ("delivered", delivered), ("redelivered", redelivered),
         ("lost-unsynced-acknowledged", lostUnsyncedAcknowledged), ("rot-destroyed", rotDestroyed),
         ("damage-reports", damageReports), ("consumer-moves", consumerMoves),
         ("producer-timeouts", producerTimeouts), ("consumer-timeouts", consumerTimeouts),
         ("stale-answers", staleAnswers), ("canary-early-acks", canaryEarlyAcks),
         ("power-losses-between-append-and-sync", powerLossesBetweenAppendAndSync), ("faults-right-after-roll", faultsRightAfterRoll)]
    }

    public var report: String {
        fields.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
    }
}
