/// Retention (reference §2.7): expired segments are deleted or archived, oldest first.
extension PartitionLog {
    /// What retention did with one segment.
    public struct RetentionOutcome: Equatable, Sendable {
        public var segmentStart: Int64
        public var path: String
        public var action: DeletePolicy.Action
    }

    /// Removes the segments older than the policy's age at wall-clock time `nowMs`; for a size
    /// policy, the oldest segments as long as the log without the segment still holds at least
    /// `maxBytes` (Kafka's `retention.bytes` rule: a partition keeps at least the bound when it has
    /// that much, and exceeds it by less than one segment plus the active one).
    ///
    /// Never touches the active (last) segment or a segment with unsynced bytes, and only takes a
    /// prefix of the log, so the remaining segments stay contiguous. MetaQ judges age by the
    /// file's modification time; so does this.
    public func applyRetention(_ policy: DeletePolicy, nowMs: Int64,
                               archiver: any SegmentArchiver = RenamingArchiver()) throws(LogError) -> [RetentionOutcome] {
        try requireOpen()
        var outcomes: [RetentionOutcome] = []
        while segments.count > 1 {
            let oldest = segments[0]
            guard oldest.end <= syncedEnd else { break }
            if let maxBytes = policy.maxBytes {
                let total = segments[segments.count - 1].end - oldest.start
                guard total - oldest.size >= maxBytes else { break }
                try remove(oldest, action: policy.action, archiver: archiver)
                segments.removeFirst()
                outcomes.append(RetentionOutcome(segmentStart: oldest.start, path: oldest.path, action: policy.action))
                continue
            }
            let modified: Int64
            do { modified = try storage.modificationTimeMs(oldest.path) } catch {
                throw .storage(Self.storageError(error, path: oldest.path))
            }
            guard nowMs - modified > policy.maxAgeMs else { break }
            try remove(oldest, action: policy.action, archiver: archiver)
            segments.removeFirst()
            outcomes.append(RetentionOutcome(segmentStart: oldest.start, path: oldest.path, action: policy.action))
        }
        if !outcomes.isEmpty {
            let remaining = damagedRanges.filter { $0.upperBound > minOffset }
            do {
                if remaining != damagedRanges {
                    try DamageRegistry.save(remaining, storage: storage, directory: directory)
                    damagedRanges = remaining
                }
                try storage.syncDirectory(directory)
            } catch {
                throw .storage(Self.storageError(error, path: directory))
            }
        }
        return outcomes
    }

    /// A sealed segment is closed already, or is closed once the sync that still holds it ends
    /// (`sealedAwaitingClose`): removing or renaming it meanwhile is harmless to that sync.
    private func remove(_ segment: Segment, action: DeletePolicy.Action,
                        archiver: any SegmentArchiver) throws(LogError) {
        do {
            switch action {
            case .delete: try storage.remove(segment.path)
            case .archive(let compress): try archiver.archive(segmentPath: segment.path, compress: compress, storage: storage)
            }
        } catch {
            throw .storage(Self.storageError(error, path: segment.path))
        }
    }
}
