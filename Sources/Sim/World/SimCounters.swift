/// How often each fault and rare path fired in a run (summed over a sweep, so we can see what
/// the seeds actually reached).
public struct SimCounters: Sendable, Equatable {
    public var runs = 0
    /// Events the scheduler ran (the cost of a run).
    public var events = 0
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
    /// Recoveries that skipped the last segment's scan on a clean-stop mark (issue 18).
    public var recoveryScansSkipped = 0
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
    // ZooKeeper and consumer groups
    public var groupSeeds = 0
    public var groupMembers = 0
    public var memberCrashes = 0
    public var zkExpiries = 0
    public var zkDisconnects = 0
    public var lateBrokerJoins = 0
    /// Session expiries of a broker while some member of a group was rebalancing.
    public var brokerExpiriesDuringRebalance = 0
    /// Registrations completed (every start and every re-registration after an expiry).
    public var brokerRegistrations = 0
    /// Broker / member starts that found their previous session's nodes still there (§3.2 leftovers).
    public var brokerRestartsWithLiveSession = 0
    public var memberRestartsWithLiveSession = 0
    /// `.rebalanced` reports (one per topic whose share was applied).
    public var groupRebalances = 0
    public var groupRebalanceFailures = 0
    public var abortedRebalances = 0
    public var claimConflicts = 0
    /// Session expiries the members saw.
    public var groupSessionExpiries = 0
    /// Partitions of a crashed member that another member started fetching before it came back.
    public var groupTakeovers = 0
    public var groupDelivered = 0
    public var groupRedelivered = 0
    /// 301s that moved a group fetcher; backward ones; stored offsets that went back after one.
    public var groupMoves = 0
    public var groupBackwardMoves = 0
    public var excusedOffsetRegressions = 0
    /// Changes of a stored offset seen in ZooKeeper.
    public var offsetsStored = 0
    // Failing handlers and the recover store (SimHandlers)
    public var handlerSeeds = 0
    /// Attempts of the application that failed (fetched messages; redeliveries apart).
    public var handlerFailures = 0
    /// Hand-offs kept by a recover store (answered `.handedOff`), and those whose write failed.
    public var handOffs = 0
    public var handOffFailures = 0
    /// Recover store operations (open, append, remove) that failed.
    public var recoverStoreFailures = 0
    /// Stored messages a redelivery round handled (and removed), and those that failed again.
    public var recoverRedelivered = 0
    public var redeliveryFailures = 0
    /// Redelivered messages an earlier process of the member had kept (before a crash).
    public var redeliveredAfterRestart = 0
    /// Poison messages in a recover store at the end.
    public var poisonKept = 0
    /// Member crashes right after a hand-off, before an offset past it was committed.
    public var crashesAfterHandOff = 0
    /// Member crashes that were a power loss of the member's disk.
    public var memberPowerLosses = 0
    // Broker disk faults, graceful stops and retention (the broker node's own paths)
    /// Faults armed on a broker's disk: the next write fails (EIO), the next write finds the disk
    /// full (ENOSPC), the next fsync fails (EIO).
    public var diskWriteErrors = 0
    public var diskFullErrors = 0
    public var diskSyncErrors = 0
    /// Partition logs a write or sync failed (each refuses writes until its broker restarts).
    public var brokerLogsFailed = 0
    /// Puts the broker answered with the failed log's error.
    public var failedLogAnswers = 0
    /// Graceful stops asked for, and those that completed (the final sync answered its puts).
    public var gracefulStopsRequested = 0
    public var gracefulStops = 0
    /// Restarts of a broker with a failed log (the operator's cure).
    public var restartsAfterDiskFailure = 0
    public var retentionRuns = 0
    public var retentionRemovedSegments = 0
    /// Acknowledged messages never delivered because retention removed them first (allowed).
    public var retentionExcused = 0
    // ordered producers (§5.6)
    /// Runs with ordered producers.
    public var orderedSeeds = 0
    /// Ordered sends the broker stored at once, and those promised from the spool.
    public var orderedSent = 0
    public var orderedSpooled = 0
    /// Spooled messages replayed to the broker (and removed from the spool).
    public var orderedReplayed = 0
    public var orderedRefused = 0
    public var orderedNotAccepted = 0
    /// Spool writes or removals that failed.
    public var orderedSpoolFailures = 0
    public var orderedCrashes = 0
    public var orderedPowerLosses = 0
    /// Spool writes the canary dropped.
    public var spoolCanaryDrops = 0
    // routed producers (§3.3)
    /// Runs with routed producers.
    public var routedSeeds = 0
    /// Sends the router routed and a link put on the wire.
    public var routedSends = 0
    /// Sends that waited for their topic's partitions; of them, those failed by the timeout.
    public var discoveryWaits = 0
    public var discoveryTimeouts = 0
    /// Sends refused because their topic's discovery backlog was full.
    public var backlogRefusals = 0
    // routed producers' own faults (SimRoutedFaults)
    /// Runs that drew them.
    public var routedFaultSeeds = 0
    /// Expiries and connection losses of the routed producers' ZooKeeper sessions.
    public var routedZkExpiries = 0
    public var routedZkDisconnects = 0
    /// `publish(topic)` waits, those answered with the topic listed, and those that timed out
    /// (or ended with a shutdown) first.
    public var publishWaits = 0
    public var publishWaitsListed = 0
    public var publishWaitsUnlisted = 0
    /// Router shutdowns, and the sends waiting for discovery they failed.
    public var routerShutdowns = 0
    public var shutdownFailedSends = 0
    // manual ack (SimManualAck, §5.3)
    /// Runs with a manual-ack group.
    public var manualAckSeeds = 0
    /// Acks and rollbacks that reached a fetch run; rolled-back messages fetched again.
    public var manualAcks = 0
    public var manualRollbacks = 0
    public var manualRedelivered = 0
    /// Messages a crashed member's handlers had got and not decided about yet.
    public var manualUndecidedAtCrash = 0
    // transactions (SimTransactions)
    public var txSeeds = 0
    public var txBegun = 0
    public var txCommitted = 0
    public var txRolledBack = 0
    public var txAbandoned = 0
    public var txUnknown = 0
    public var txRefused = 0
    public var txPrepared = 0
    public var tmCrashes = 0
    public var tmRecoveredFinished = 0
    public var txBatchesReappended = 0
    // replication (SimReplication)
    public var replicatedSeeds = 0
    /// Worlds whose master promises copies (synchronous, `minInSyncReplicas` ≥ 2).
    public var synchronousReplicatedSeeds = 0
    public var slaves = 0
    public var slaveCrashes = 0
    public var slavePowerLosses = 0
    public var masterLinkPartitions = 0
    public var slowSlaveDisks = 0
    public var masterDisksDestroyed = 0
    /// Master links the network opened (every slave start and reconnect).
    public var masterLinksOpened = 0
    /// Puts a synchronous master refused with `Slave is disconnected `.
    public var slaveDisconnectedRefusals = 0
    /// Acknowledged messages found on a slave's disk by the final checks (per slave when the
    /// master survived; once, on the best slave, when its disk was destroyed).
    public var acknowledgedOnSlaves = 0
    /// Acknowledged messages an asynchronous master's destroyed disk took along (none of its
    /// slaves had them): the unreplicated tail.
    public var acknowledgedLostWithMaster = 0
    /// Bytes of master and slave copies compared.
    public var replicaBytesCompared = 0
    /// Copies (slave, partition) held at the end where the master cannot give more: bit rot, or
    /// a damaged range its recovery kept and skips.
    public var copiesHeldByMasterDamage = 0
    // failover (SimFailover)
    public var failoverSeeds = 0
    /// Terms a broker began leading (the first leader's included).
    public var termsLed = 0
    /// Terms led by a process other than the configured master.
    public var takeovers = 0
    public var failoverFaults = 0
    /// Forced promotes by the simulated operator once no process led after the faults.
    public var operatorPromotes = 0
    /// Acknowledged messages not on the final leader's log (asynchronous worlds: a deposed
    /// leader's unreplicated tail).
    public var acknowledgedLostInTakeover = 0
    /// Acknowledged messages found on the final leader's log.
    public var acknowledgedOnFinalLeader = 0

    public init() {}

    public mutating func add(_ o: SimCounters) {
        runs += o.runs
        events += o.events
        powerLosses += o.powerLosses; crashes += o.crashes; disconnects += o.disconnects
        partitions += o.partitions; slowDisks += o.slowDisks; latentErrors += o.latentErrors
        consumerCrashes += o.consumerCrashes
        syncs += o.syncs; recoveries += o.recoveries; recoveryTruncations += o.recoveryTruncations
        recoveryRemovedSegments += o.recoveryRemovedSegments; recoveryDamage += o.recoveryDamage
        recoveryScansSkipped += o.recoveryScansSkipped
        acknowledged += o.acknowledged; failedPuts += o.failedPuts; unknownPuts += o.unknownPuts
        rejectedPuts += o.rejectedPuts; delivered += o.delivered; redelivered += o.redelivered
        lostUnsyncedAcknowledged += o.lostUnsyncedAcknowledged; rotDestroyed += o.rotDestroyed
        damageReports += o.damageReports; consumerMoves += o.consumerMoves
        producerTimeouts += o.producerTimeouts; consumerTimeouts += o.consumerTimeouts
        staleAnswers += o.staleAnswers; segmentRolls += o.segmentRolls; canaryEarlyAcks += o.canaryEarlyAcks
        powerLossesBetweenAppendAndSync += o.powerLossesBetweenAppendAndSync; faultsRightAfterRoll += o.faultsRightAfterRoll
        groupSeeds += o.groupSeeds; groupMembers += o.groupMembers; memberCrashes += o.memberCrashes
        zkExpiries += o.zkExpiries; zkDisconnects += o.zkDisconnects; lateBrokerJoins += o.lateBrokerJoins
        brokerExpiriesDuringRebalance += o.brokerExpiriesDuringRebalance; brokerRegistrations += o.brokerRegistrations
        brokerRestartsWithLiveSession += o.brokerRestartsWithLiveSession
        memberRestartsWithLiveSession += o.memberRestartsWithLiveSession
        groupRebalances += o.groupRebalances; groupRebalanceFailures += o.groupRebalanceFailures
        abortedRebalances += o.abortedRebalances; claimConflicts += o.claimConflicts
        groupSessionExpiries += o.groupSessionExpiries; groupTakeovers += o.groupTakeovers
        groupDelivered += o.groupDelivered; groupRedelivered += o.groupRedelivered
        groupMoves += o.groupMoves; groupBackwardMoves += o.groupBackwardMoves
        excusedOffsetRegressions += o.excusedOffsetRegressions; offsetsStored += o.offsetsStored
        handlerSeeds += o.handlerSeeds; handlerFailures += o.handlerFailures; handOffs += o.handOffs
        handOffFailures += o.handOffFailures; recoverStoreFailures += o.recoverStoreFailures
        recoverRedelivered += o.recoverRedelivered; redeliveryFailures += o.redeliveryFailures
        redeliveredAfterRestart += o.redeliveredAfterRestart
        poisonKept += o.poisonKept; crashesAfterHandOff += o.crashesAfterHandOff; memberPowerLosses += o.memberPowerLosses
        diskWriteErrors += o.diskWriteErrors; diskFullErrors += o.diskFullErrors; diskSyncErrors += o.diskSyncErrors
        brokerLogsFailed += o.brokerLogsFailed; failedLogAnswers += o.failedLogAnswers
        gracefulStopsRequested += o.gracefulStopsRequested; gracefulStops += o.gracefulStops
        restartsAfterDiskFailure += o.restartsAfterDiskFailure
        retentionRuns += o.retentionRuns; retentionRemovedSegments += o.retentionRemovedSegments
        retentionExcused += o.retentionExcused
        orderedSeeds += o.orderedSeeds; orderedSent += o.orderedSent; orderedSpooled += o.orderedSpooled
        orderedReplayed += o.orderedReplayed; orderedRefused += o.orderedRefused; orderedNotAccepted += o.orderedNotAccepted
        orderedSpoolFailures += o.orderedSpoolFailures; orderedCrashes += o.orderedCrashes
        orderedPowerLosses += o.orderedPowerLosses; spoolCanaryDrops += o.spoolCanaryDrops
        routedSeeds += o.routedSeeds; routedSends += o.routedSends; discoveryWaits += o.discoveryWaits
        discoveryTimeouts += o.discoveryTimeouts; backlogRefusals += o.backlogRefusals
        routedFaultSeeds += o.routedFaultSeeds; routedZkExpiries += o.routedZkExpiries; routedZkDisconnects += o.routedZkDisconnects
        publishWaits += o.publishWaits; publishWaitsListed += o.publishWaitsListed; publishWaitsUnlisted += o.publishWaitsUnlisted
        routerShutdowns += o.routerShutdowns; shutdownFailedSends += o.shutdownFailedSends
        manualAckSeeds += o.manualAckSeeds; manualAcks += o.manualAcks; manualRollbacks += o.manualRollbacks
        manualRedelivered += o.manualRedelivered; manualUndecidedAtCrash += o.manualUndecidedAtCrash
        txSeeds += o.txSeeds; txBegun += o.txBegun; txCommitted += o.txCommitted; txRolledBack += o.txRolledBack
        txAbandoned += o.txAbandoned; txUnknown += o.txUnknown; txRefused += o.txRefused; txPrepared += o.txPrepared
        tmCrashes += o.tmCrashes; tmRecoveredFinished += o.tmRecoveredFinished; txBatchesReappended += o.txBatchesReappended
        replicatedSeeds += o.replicatedSeeds; synchronousReplicatedSeeds += o.synchronousReplicatedSeeds; slaves += o.slaves
        slaveCrashes += o.slaveCrashes; slavePowerLosses += o.slavePowerLosses; masterLinkPartitions += o.masterLinkPartitions
        slowSlaveDisks += o.slowSlaveDisks; masterDisksDestroyed += o.masterDisksDestroyed; masterLinksOpened += o.masterLinksOpened
        slaveDisconnectedRefusals += o.slaveDisconnectedRefusals; acknowledgedOnSlaves += o.acknowledgedOnSlaves
        acknowledgedLostWithMaster += o.acknowledgedLostWithMaster; replicaBytesCompared += o.replicaBytesCompared
        copiesHeldByMasterDamage += o.copiesHeldByMasterDamage
        failoverSeeds += o.failoverSeeds; termsLed += o.termsLed; takeovers += o.takeovers; failoverFaults += o.failoverFaults
        operatorPromotes += o.operatorPromotes
        acknowledgedLostInTakeover += o.acknowledgedLostInTakeover; acknowledgedOnFinalLeader += o.acknowledgedOnFinalLeader
    }

    /// `name value` pairs in a fixed order, for reports.
    public var fields: [(String, Int)] {
        [("runs", runs), ("events", events), ("power-losses", powerLosses), ("crashes", crashes), ("disconnects", disconnects),
         ("partitions", partitions), ("slow-disks", slowDisks), ("latent-errors", latentErrors),
         ("consumer-crashes", consumerCrashes), ("syncs", syncs), ("recoveries", recoveries),
         ("recovery-truncations", recoveryTruncations), ("recovery-removed-segments", recoveryRemovedSegments),
         ("recovery-scans-skipped", recoveryScansSkipped),
         ("recovery-damage", recoveryDamage), ("segment-rolls", segmentRolls), ("acknowledged", acknowledged),
         ("failed-puts", failedPuts), ("unknown-puts", unknownPuts), ("rejected-puts", rejectedPuts),
         ("delivered", delivered), ("redelivered", redelivered),
         ("lost-unsynced-acknowledged", lostUnsyncedAcknowledged), ("rot-destroyed", rotDestroyed),
         ("damage-reports", damageReports), ("consumer-moves", consumerMoves),
         ("producer-timeouts", producerTimeouts), ("consumer-timeouts", consumerTimeouts),
         ("stale-answers", staleAnswers), ("canary-early-acks", canaryEarlyAcks),
         ("power-losses-between-append-and-sync", powerLossesBetweenAppendAndSync), ("faults-right-after-roll", faultsRightAfterRoll),
         ("group-seeds", groupSeeds), ("group-members", groupMembers), ("member-crashes", memberCrashes),
         ("zk-expiries", zkExpiries), ("zk-disconnects", zkDisconnects), ("late-broker-joins", lateBrokerJoins),
         ("broker-expiries-during-rebalance", brokerExpiriesDuringRebalance), ("broker-registrations", brokerRegistrations),
         ("broker-restarts-with-live-session", brokerRestartsWithLiveSession),
         ("member-restarts-with-live-session", memberRestartsWithLiveSession),
         ("group-rebalances", groupRebalances), ("group-rebalance-failures", groupRebalanceFailures),
         ("aborted-rebalances", abortedRebalances), ("claim-conflicts", claimConflicts),
         ("group-session-expiries", groupSessionExpiries), ("group-takeovers", groupTakeovers),
         ("group-delivered", groupDelivered), ("group-redelivered", groupRedelivered), ("group-moves", groupMoves),
         ("group-backward-moves", groupBackwardMoves), ("excused-offset-regressions", excusedOffsetRegressions),
         ("offsets-stored", offsetsStored), ("handler-seeds", handlerSeeds), ("handler-failures", handlerFailures),
         ("hand-offs", handOffs), ("hand-off-failures", handOffFailures), ("recover-store-failures", recoverStoreFailures),
         ("recover-redelivered", recoverRedelivered), ("redelivery-failures", redeliveryFailures),
         ("redelivered-after-restart", redeliveredAfterRestart), ("poison-kept", poisonKept),
         ("crashes-after-hand-off", crashesAfterHandOff), ("member-power-losses", memberPowerLosses),
         ("disk-write-errors", diskWriteErrors), ("disk-full-errors", diskFullErrors), ("disk-sync-errors", diskSyncErrors),
         ("broker-logs-failed", brokerLogsFailed), ("failed-log-answers", failedLogAnswers),
         ("graceful-stops-requested", gracefulStopsRequested), ("graceful-stops", gracefulStops),
         ("restarts-after-disk-failure", restartsAfterDiskFailure), ("retention-runs", retentionRuns),
         ("retention-removed-segments", retentionRemovedSegments), ("retention-excused", retentionExcused),
         ("ordered-seeds", orderedSeeds), ("ordered-sent", orderedSent), ("ordered-spooled", orderedSpooled),
         ("ordered-replayed", orderedReplayed), ("ordered-refused", orderedRefused), ("ordered-not-accepted", orderedNotAccepted),
         ("ordered-spool-failures", orderedSpoolFailures), ("ordered-crashes", orderedCrashes),
         ("ordered-power-losses", orderedPowerLosses), ("spool-canary-drops", spoolCanaryDrops),
         ("routed-seeds", routedSeeds), ("routed-sends", routedSends), ("discovery-waits", discoveryWaits),
         ("discovery-timeouts", discoveryTimeouts), ("backlog-refusals", backlogRefusals),
         ("routed-fault-seeds", routedFaultSeeds), ("routed-zk-expiries", routedZkExpiries),
         ("routed-zk-disconnects", routedZkDisconnects), ("publish-waits", publishWaits),
         ("publish-waits-listed", publishWaitsListed), ("publish-waits-unlisted", publishWaitsUnlisted),
         ("router-shutdowns", routerShutdowns), ("shutdown-failed-sends", shutdownFailedSends),
         ("manual-ack-seeds", manualAckSeeds), ("manual-acks", manualAcks), ("manual-rollbacks", manualRollbacks),
         ("manual-redelivered", manualRedelivered), ("manual-undecided-at-crash", manualUndecidedAtCrash),
         ("tx-seeds", txSeeds), ("tx-begun", txBegun), ("tx-committed", txCommitted), ("tx-rolled-back", txRolledBack),
         ("tx-abandoned", txAbandoned), ("tx-unknown", txUnknown), ("tx-refused", txRefused), ("tx-prepared", txPrepared),
         ("tm-crashes", tmCrashes), ("tm-recovered-finished", tmRecoveredFinished),
         ("tx-batches-reappended", txBatchesReappended),
         ("replicated-seeds", replicatedSeeds), ("synchronous-replicated-seeds", synchronousReplicatedSeeds), ("slaves", slaves),
         ("slave-crashes", slaveCrashes), ("slave-power-losses", slavePowerLosses), ("master-link-partitions", masterLinkPartitions),
         ("slow-slave-disks", slowSlaveDisks), ("master-disks-destroyed", masterDisksDestroyed),
         ("master-links-opened", masterLinksOpened), ("slave-disconnected-refusals", slaveDisconnectedRefusals),
         ("acknowledged-on-slaves", acknowledgedOnSlaves), ("acknowledged-lost-with-master", acknowledgedLostWithMaster),
         ("replica-bytes-compared", replicaBytesCompared), ("copies-held-by-master-damage", copiesHeldByMasterDamage),
         ("failover-seeds", failoverSeeds), ("terms-led", termsLed), ("takeovers", takeovers), ("failover-faults", failoverFaults), ("operator-promotes", operatorPromotes),
         ("acknowledged-lost-in-takeover", acknowledgedLostInTakeover), ("acknowledged-on-final-leader", acknowledgedOnFinalLeader)]
    }

    public var report: String {
        fields.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
    }
}
