import ProtocolCore
import StoreCore

/// Failover in the node (docs/REPLICATION.md): what the election's decisions do to a broker —
/// leading (accepting puts, answering its followers with the term's history), following (a
/// slave of the new master, after cutting off what that master's history does not have) and
/// being fenced (accepting nothing).
///
/// The history a follower needs is short: a leader of term L tells its followers, with the
/// partitions, the term its own logs were consistent with before L (`previous`) and each
/// partition's end when L began (`term_start`). A follower whose logs are consistent with L has
/// nothing to cut; one consistent with `previous` (the deposed master, or a slave of it) shares
/// the leader's bytes up to `term_start` and cuts what it has beyond; any other (several terms
/// behind) copies the partition again from the leader's first offset.
extension BrokerNode {
    /// The term this node accepts puts in (nil: it accepts none by the election's word, or takes
    /// part in none). Read-only, for drivers and checkers.
    public var currentLeadingTerm: Int64? { leadingTerm }
    /// The term this node's logs are consistent with (`<dataPath>/replication-term`). Read-only.
    public var logsConsistentTerm: Int64? { consistentTerm }
    /// Each partition's end when the term this node leads (or led last) began. Read-only, for
    /// checkers.
    public var termStartEnds: [TopicPartition: Int64] { termStarts }
    /// What the election may rely on (rule 10 of `BrokerElection`): the consistent term, nil while
    /// a partition is copied again (the logs lack what they had) or with no replication-term file.
    public var electionLogsTerm: Int64? { logsCopying ? nil : consistentTerm }

    func leadershipChanged(_ leadership: Leadership, _ clock: NodeClock, _ actions: inout [Action]) {
        guard phase == .running else { return }
        elected = true
        leadRetry = nil
        switch leadership {
        case .leading(let term):
            guard leadingTerm != term else { return }
            if let replica {
                if let number = replica.linkNumber { actions.append(.closeMasterLink(link: number)) }
                self.replica = nil
            }
            // Leading a term again after a lost connection (rule 7 of the election): its history
            // is the one handed out before — re-deriving it would name this term its own
            // previous one and its present ends its start, and a follower one term behind would
            // keep a tail the term never had (the sweep's seed 287: a slave copied twice).
            if historyTerm != term {
                previousTerm = consistentTerm
                termStarts = [:]
                for partition in stores.partitions { termStarts[partition] = stores.log(partition)?.writtenOffset ?? 0 }
                historyTerm = term
            }
            // The term is on disk before any put of it: a leader whose replication-term file
            // still said an older term (or none) would, after a restart, take its own term's
            // bytes for that term's and keep them under a later leader's history (the failover
            // sweep's seed 12476: a first leader's fsync failed, it answered puts in term 1 with
            // no file, and rejoining term 7 as a broker of no term it kept a record the new
            // leader's log held other bytes in place of). Not leading yet: try again later.
            guard saveConsistentTerm(term, &actions) else {
                stepDown(because: "cannot persist the replication term \(term)", clock, &actions)
                leadRetry = (term, clock.now.adding(milliseconds: Self.leadRetryMs))
                armReplicationTimer(clock, &actions)
                return
            }
            leadingTerm = term
            fencedReason = nil
            // The election starts a term with no slave known in sync: tell it who is.
            actions.append(.publishInSync(replicas.tracker.inSync))
            actions.append(.notice(.replication("leading broker \(config.brokerId) in term \(term) "
                + "(logs consistent with term \(previousTerm.map(String.init) ?? "none") before)")))
        case .following(let uri):
            stepDown(because: "following master \(uri)", clock, &actions)
            if replica == nil {
                let id = config.replication.slave?.slaveId ?? config.replication.rejoinSlaveId ?? 1023
                let settings = config.replication.slave ?? ReplicationConfig.Slave(slaveId: id)
                replica = ReplicaState(settings: settings, maxTransferSize: config.maxTransferSize)
            }
            masterAddressChanged(uri, clock, &actions)
        case .fenced(let reason):
            stepDown(because: reason, clock, &actions)
            if let replica {
                dropMasterLink(replica, clock, &actions, reason: reason)
                replica.masterURI = nil
            }
        }
        armReplicationTimer(clock, &actions)
    }

    /// `stats promote` / `stats promote-force` (`metaq admin promote`): asks the election to make
    /// this broker the master of its id. Without `force` the election goes ahead only for a slave
    /// in the in-sync set.
    func promoteRequested(force: Bool, opaque: Int32, _ actions: inout [Action]) -> ResultResponse {
        guard elected else {
            return ResultResponse(code: StatusCode.internalServerError,
                                  text: "broker \(settings.brokerURI) takes no part in an election: set failover=true in [replication] "
                                      + "and run in cluster mode", opaque: opaque)
        }
        if leadingTerm != nil {
            return ResultResponse(code: StatusCode.success, text: "broker \(settings.brokerURI) already leads term \(leadingTerm!)",
                                  opaque: opaque)
        }
        actions.append(.notice(.replication("an operator asked this broker to take over\(force ? " (forced)" : "")")))
        actions.append(.promote(force: force))
        return ResultResponse(code: StatusCode.success, text: "promote requested: broker \(settings.brokerURI) claims the next term"
            + (force ? "" : " if it is in sync") + "; watch its log or `metaq-server slave-status`", opaque: opaque)
    }

    /// Stops accepting puts: those waiting for their slaves are refused (stored here, not
    /// confirmed), held fetches answered.
    func stepDown(because reason: String, _ clock: NodeClock, _ actions: inout [Action]) {
        if leadingTerm != nil {
            actions.append(.notice(.replication("no longer leading term \(leadingTerm!): \(reason)")))
        }
        leadingTerm = nil
        fencedReason = reason
        let replication = replicas
        for partition in replication.parked.keys.sorted() { releaseParked(partition, clock, &actions) { _ in true } }
        releaseHellos(clock, &actions)
        for token in replication.tracker.removeAllWaiting() {
            failReplicationWait(token, "broker \(settings.brokerURI) stopped leading before its slaves confirmed the message "
                + "(\(reason))", clock, &actions)
        }
    }

    /// The lines a leader adds to its answer to a slave's hello: its term and the term its logs
    /// were consistent with before (`term <L> previous <P|none>`).
    func termLine() -> String? {
        guard let term = leadingTerm else { return nil }
        return "term \(term) previous \(previousTerm.map(String.init) ?? "none")"
    }

    /// A follower read its leader's history in a hello answer: cut what the leader does not
    /// have, then remember the term. Returns false when the copy cannot be made consistent now
    /// (a failed cut; the hello is asked again later).
    func adoptHistory(term: Int64, previous: Int64?, starts: [TopicPartition: (min: Int64, termStart: Int64)],
                      _ replica: ReplicaState, _ clock: NodeClock, _ actions: inout [Action]) -> Bool {
        guard consistentTerm != term else { return true }
        // No term on either side: a plain master and slave that now take part in an election (their
        // copies are one history). A follower without a term under a leader with one knows nothing
        // of where its bytes came from: it copies again.
        let oneTermBehind = consistentTerm == previous
        var cut: Int64 = 0
        for partition in stores.partitions {
            guard let log = stores.log(partition), syncing[partition] == nil else {
                if stores.log(partition) != nil { return false }  // not while its sync runs
                continue
            }
            let end = log.writtenOffset
            // A partition the leader does not have began after its history: none of our bytes
            // came from it, and its own puts will write other bytes at the same offsets once it
            // creates the partition — cut all of it (the sweep's seed 204: a deposed master kept
            // a partition its successor had never copied, and the copies differed from offset 0).
            let history = starts[partition] ?? (min: 0, termStart: 0)
            if oneTermBehind && end <= history.termStart { continue }
            do {
                // Cut, across segments if need be: re-creating would discard what may be the
                // only other copy of acknowledged puts (the sweep's seed 16891).
                if oneTermBehind, history.termStart >= log.minOffset, log.stagedByteCount == 0 {
                    try log.truncate(to: history.termStart)
                    cut += end - history.termStart
                    actions.append(.notice(.replicationProblem("cut \(end - history.termStart) byte(s) of \(partition) beyond "
                        + "\(history.termStart), where term \(term) began: they were never copied by its leader")))
                } else {
                    // Copied again: say so durably first, so this broker never takes over with a
                    // half copy (the sweep's seeds 4341, 2971), not even after a restart.
                    if !logsCopying {
                        guard markCopying(true, &actions) else { return false }
                        replica.atEnd = []
                    }
                    if lastLog?.partition == partition { lastLog = nil }
                    dirtyLogs.removeAll { $0.partition == partition }
                    _ = try stores.recreate(partition, startingAt: history.min, now: clock.now)
                    cut += end - log.minOffset
                    replica.logRestarts += 1
                    actions.append(.notice(.replicationProblem("copying \(partition) again from \(history.min): this broker's "
                        + "logs follow term \(consistentTerm.map(String.init) ?? "none"), too far behind term \(term)")))
                }
            } catch {
                actions.append(.notice(.replicationProblem("cannot make \(partition) consistent with term \(term): \(error)")))
                return false
            }
        }
        replica.bytesCut += cut
        // The fetcher starts over from the logs as they are now, and what the old one asked is
        // forgotten: an answer to a fetch sent before this hello (the fetcher wakes on a new link
        // before the hello is answered) carries the bytes at the offset it asked for, and the new
        // fetcher would take them for the bytes at the end of the cut or re-created copy (the
        // failover sweep's seed 4438: a slave re-created t0-0 at 0, then stored there the bytes
        // its fetch at 133 brought).
        replica.fetcher = ReplicaFetcher(settings: replica.fetcher.settings)
        replica.pending = replica.pending.filter {
            if case .partitions = $0.value.request { return true }
            return false
        }
        saveConsistentTerm(term, &actions)
        return true
    }

    /// Records that the logs follow `term`; false when the file could not be written (the logs
    /// are taken to follow it in this process all the same).
    @discardableResult
    func saveConsistentTerm(_ term: Int64, _ actions: inout [Action]) -> Bool {
        consistentTerm = term
        var saved = true
        do {
            try ReplicationTermFile.save(term, storage: storage, dataPath: stores.defaultDataPath)
        } catch {
            saved = false
            actions.append(.notice(.replicationProblem("cannot persist the replication term \(term): \(error)")))
        }
        actions.append(.logsConsistent(term: electionLogsTerm))
        return saved
    }

    /// How long a leader that could not persist its term waits before trying again.
    static let leadRetryMs: Int64 = 1000

    /// The replication timer fired: a term not yet led for want of its file is tried again.
    func retryLeading(_ clock: NodeClock, _ actions: inout [Action]) {
        guard let retry = leadRetry, retry.at <= clock.now else { return }
        leadershipChanged(.leading(term: retry.term), clock, &actions)
    }

    /// Persists whether partitions are being copied again; false when it cannot be written (the
    /// copy must not start then).
    func markCopying(_ copying: Bool, _ actions: inout [Action]) -> Bool {
        do {
            try ReplicationTermFile.saveCopying(copying, storage: storage, dataPath: stores.defaultDataPath)
        } catch {
            actions.append(.notice(.replicationProblem("cannot persist that the logs are \(copying ? "" : "no longer ")being copied again: \(error)")))
            return false
        }
        logsCopying = copying
        actions.append(.logsConsistent(term: electionLogsTerm))
        return true
    }
}
