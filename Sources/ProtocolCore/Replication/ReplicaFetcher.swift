/// A slave's copying of its master (issue 17, reference §6.1) as a pure machine: for every
/// partition of the master, fetch at the end of what this slave has written, append what comes
/// back (whole records, the master's bytes as they are: same msgId, flag and offsets), and fetch
/// again at once while the sync of those bytes runs — the fetches are pipelined with the syncs, up
/// to `maxUnsyncedBytes` ahead of what is durable. What is durable is reported to the master on its
/// own (`.report`), after each sync that moved it: the master's synchronous answers wait for it
/// (`ReplicaTracker`), so a report never names a byte that is not durable here.
///
/// A partition new to the slave starts at the master's first segment (`offset <topic> <group> <p> 0`
/// answers it, §1.4.3), as the original's slave does. At the master's end the partition waits,
/// backing off up to `maxDelayMs` (the original's `slaveMaxDelayInMills`, 500), unless the master
/// held the fetch (then it fetches again at once).
///
/// Pure: the node (or the simulator) sends the requests, appends, syncs and reports back.
public struct ReplicaFetcher: Sendable {
    public struct Settings: Equatable, Sendable {
        /// Bytes asked for per fetch (grown, up to `maxTransferSize`, for a record larger than it).
        public var fetchBytes: Int
        public var maxTransferSize: Int
        /// Back-off at the master's end, from `minDelayMs` doubling to `maxDelayMs`.
        public var minDelayMs: Int64
        public var maxDelayMs: Int64
        /// Wait after a failed fetch before the next.
        public var retryDelayMs: Int64

        /// Bytes written ahead of what is durable before fetching waits for a sync.
        public var maxUnsyncedBytes: Int

        public init(fetchBytes: Int = 1 << 20, maxTransferSize: Int = 1 << 20, minDelayMs: Int64 = 5, maxDelayMs: Int64 = 500,
                    retryDelayMs: Int64 = 100, maxUnsyncedBytes: Int? = nil) {
            self.maxUnsyncedBytes = maxUnsyncedBytes ?? 4 * fetchBytes
            self.fetchBytes = fetchBytes
            self.maxTransferSize = max(fetchBytes, maxTransferSize)
            self.minDelayMs = minDelayMs
            self.maxDelayMs = max(minDelayMs, maxDelayMs)
            self.retryDelayMs = retryDelayMs
        }
    }

    /// What a fetch or an offset query brought back.
    public enum Answer: Equatable, Sendable {
        /// Bytes starting at the fetched offset (the last record may be cut, §1.4.2).
        case bytes([UInt8])
        /// Nothing beyond the fetched offset yet.
        case atEnd
        /// Nothing yet, after the master held the fetch for a while (it answers as soon as
        /// something comes): fetch again at once, without backing off.
        case atEndAfterWaiting
        /// The master no longer has the fetched offset (retention): its log starts at `minOffset`.
        case belowMinimum(minOffset: Int64)
        /// The master's first offset of the partition (answer to `.queryFirstOffset`).
        case firstOffset(Int64)
        /// The request failed (connection lost, refused, timed out).
        case failed(String)
    }

    public enum Action: Equatable, Sendable {
        /// Ask the master where `partition` starts.
        case queryFirstOffset(TopicPartition)
        /// Create the local log of `partition`, starting at `offset`.
        case createLog(TopicPartition, startingAt: Int64)
        /// Fetch `maxBytes` of `partition` at `offset` from the master.
        case fetch(TopicPartition, offset: Int64, maxBytes: Int)
        /// Append these whole records to `partition`, whose local end is `offset`.
        case append(TopicPartition, offset: Int64, records: [UInt8])
        /// Make `partition` durable up to `upTo`, then report `.durable`.
        case sync(TopicPartition, upTo: Int64)
        /// Tell the master that `partition` is durable here up to `durableEnd`.
        case report(TopicPartition, durableEnd: Int64)
        /// The local log of `partition` must restart at `offset`: the master removed what this
        /// slave has not copied yet (retention ran ahead of a slave that was away).
        case restartLog(TopicPartition, at: Int64)
        /// Feed `.tick` at this time.
        case wakeUp(at: Instant)
    }

    enum Phase: Equatable, Sendable {
        /// Waiting for the master's first offset.
        case locating
        /// The first-offset query failed: ask again at `until`.
        case locateAgain(until: Instant)
        /// A fetch at `offset` is in flight.
        case fetching(offset: Int64)
        /// `maxUnsyncedBytes` are written and not durable: waiting for a sync.
        case throttled
        /// Nothing in flight: fetch at the written end at `at` (or now).
        case waiting(until: Instant)
    }

    struct Partition: Sendable {
        var phase: Phase
        /// Everything below this is durable here.
        var durableEnd: Int64
        /// Everything below this is appended here (durable or not).
        var writtenEnd: Int64
        /// The durable end last reported to the master on this connection (-1: none yet).
        var reportedEnd: Int64 = -1
        var fetchBytes: Int
        var delayMs: Int64

        init(phase: Phase, end: Int64, fetchBytes: Int, delayMs: Int64) {
            self.phase = phase
            durableEnd = end
            writtenEnd = end
            self.fetchBytes = fetchBytes
            self.delayMs = delayMs
        }
    }

    public let settings: Settings
    var partitions: [TopicPartition: Partition] = [:]

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    /// The durable end this slave has of `partition` (what its reports tell the master).
    public func durableEnd(_ partition: TopicPartition) -> Int64? { partitions[partition]?.durableEnd }

    /// The end of what this slave has appended of `partition`.
    public func writtenEnd(_ partition: TopicPartition) -> Int64? { partitions[partition]?.writtenEnd }

    /// The master's partitions (from ZooKeeper) and the durable ends of the local logs that exist;
    /// `writtenEnds`: where those logs end with what is not durable yet (a fetcher started on a
    /// new link while the last link's bytes are still being synced), fetched from there. New
    /// partitions are located at the master's first offset; dropped ones are forgotten. Every
    /// durable end the master was not told on this connection is reported. `now`: when fetching
    /// may begin.
    public mutating func master(partitions masterPartitions: [TopicPartition], localEnds: [TopicPartition: Int64],
                                writtenEnds: [TopicPartition: Int64] = [:], now: Instant) -> [Action] {
        var actions: [Action] = []
        let wanted = Set(masterPartitions)
        for partition in partitions.keys.sorted() where !wanted.contains(partition) { partitions[partition] = nil }
        for partition in masterPartitions.sorted() {
            if partitions[partition] == nil {
                if let end = localEnds[partition] {
                    var state = Partition(phase: .waiting(until: now), end: end, fetchBytes: settings.fetchBytes,
                                          delayMs: settings.minDelayMs)
                    state.writtenEnd = max(end, writtenEnds[partition] ?? end)
                    if state.writtenEnd - end >= Int64(settings.maxUnsyncedBytes) { state.phase = .throttled }
                    partitions[partition] = state
                    actions += fetchIfDue(partition, now)
                } else {
                    partitions[partition] = Partition(phase: .locating, end: 0, fetchBytes: settings.fetchBytes,
                                                      delayMs: settings.minDelayMs)
                    actions.append(.queryFirstOffset(partition))
                    continue
                }
            }
            actions += reportIfNew(partition)
        }
        return actions
    }

    /// A `.report` could not be sent (no connection): the next connection is told.
    public mutating func reportNotSent(_ partition: TopicPartition) {
        partitions[partition]?.reportedEnd = -1
    }

    /// `.report` of the durable end of `partition` when the master has not been told it.
    mutating func reportIfNew(_ partition: TopicPartition) -> [Action] {
        guard let state = partitions[partition], state.durableEnd > state.reportedEnd else { return [] }
        if case .locating = state.phase { return [] }
        if case .locateAgain = state.phase { return [] }
        partitions[partition]!.reportedEnd = state.durableEnd
        return [.report(partition, durableEnd: state.durableEnd)]
    }

    /// The master answered a request about `partition`; `fetchedAt`: the offset the answered
    /// fetch asked for, when it is a fetch's answer. An answer to a fetch at another offset than
    /// the one in flight is a late one (two fetches of a partition were in flight, or the copy was
    /// cut since): its bytes belong at the offset it asked for, not at this fetch's, and it is
    /// ignored (the failover sweep's seed 1379: a slave stored the same 563 bytes twice, at 1563
    /// and at 2126).
    public mutating func answered(_ partition: TopicPartition, _ answer: Answer, fetchedAt: Int64? = nil,
                                  now: Instant) -> [Action] {
        guard var state = partitions[partition] else { return [] }
        if let fetchedAt, case .fetching(let offset) = state.phase, offset != fetchedAt { return [] }
        var actions: [Action] = []
        switch (state.phase, answer) {
        case (.locating, .firstOffset(let offset)):
            state.durableEnd = offset
            state.writtenEnd = offset
            state.phase = .waiting(until: now)
            partitions[partition] = state
            actions.append(.createLog(partition, startingAt: offset))
            actions += reportIfNew(partition)
            actions += fetchIfDue(partition, now)
        case (.locating, _):
            let at = now.adding(milliseconds: settings.retryDelayMs)
            state.phase = .locateAgain(until: at)
            partitions[partition] = state
            actions.append(.wakeUp(at: at))
        case (.fetching(let offset), .bytes(let bytes)):
            let whole = Self.wholeRecords(bytes)
            if whole == 0 {
                // A record larger than what was asked for: ask for more (bounded).
                state.fetchBytes = min(settings.maxTransferSize, state.fetchBytes * 2)
                state.phase = .waiting(until: now)
                partitions[partition] = state
                actions += fetchIfDue(partition, now)
            } else {
                let end = offset + Int64(whole)
                state.writtenEnd = end
                state.delayMs = settings.minDelayMs
                state.fetchBytes = settings.fetchBytes
                state.phase = end - state.durableEnd >= Int64(settings.maxUnsyncedBytes) ? .throttled : .waiting(until: now)
                partitions[partition] = state
                actions.append(.append(partition, offset: offset, records: Array(bytes[..<whole])))
                actions.append(.sync(partition, upTo: end))
                // The next fetch goes while that sync runs (pipelined).
                actions += fetchIfDue(partition, now)
            }
        case (.fetching, .atEnd):
            let delay = state.delayMs
            state.delayMs = min(settings.maxDelayMs, state.delayMs * 2)
            let at = now.adding(milliseconds: delay)
            state.phase = .waiting(until: at)
            partitions[partition] = state
            actions.append(.wakeUp(at: at))
        case (.fetching, .atEndAfterWaiting):
            state.delayMs = settings.minDelayMs
            state.phase = .waiting(until: now)
            partitions[partition] = state
            actions += fetchIfDue(partition, now)
        case (.fetching, .belowMinimum(let minOffset)):
            state.durableEnd = minOffset
            state.writtenEnd = minOffset
            state.reportedEnd = -1
            state.phase = .waiting(until: now)
            partitions[partition] = state
            actions.append(.restartLog(partition, at: minOffset))
            actions += reportIfNew(partition)
            actions += fetchIfDue(partition, now)
        case (.fetching, .failed), (.fetching, .firstOffset):
            let at = now.adding(milliseconds: settings.retryDelayMs)
            state.phase = .waiting(until: at)
            partitions[partition] = state
            actions.append(.wakeUp(at: at))
        case (.throttled, _), (.waiting, _), (.locateAgain, _):
            break  // a late answer to a request this machine no longer waits for
        }
        return actions
    }

    /// `partition` is durable up to `end` here: the master is told, and a fetch held back by
    /// `maxUnsyncedBytes` may go.
    public mutating func durable(_ partition: TopicPartition, end: Int64, now: Instant) -> [Action] {
        guard var state = partitions[partition] else { return [] }
        state.durableEnd = max(state.durableEnd, min(end, state.writtenEnd))
        if state.phase == .throttled, state.writtenEnd - state.durableEnd < Int64(settings.maxUnsyncedBytes) {
            state.phase = .waiting(until: now)
        }
        partitions[partition] = state
        return reportIfNew(partition) + fetchIfDue(partition, now)
    }

    /// Appending what a fetch of `partition` brought failed (a record failed its checksum, the
    /// copy's end moved): nothing of it was stored; the log ends at `logEnd`. The partition is
    /// fetched again there after the retry delay (a fetch already sent is answered into the void).
    public mutating func appendFailed(_ partition: TopicPartition, logEnd: Int64, now: Instant) -> [Action] {
        guard var state = partitions[partition] else { return [] }
        switch state.phase {
        case .locating, .locateAgain: return []
        case .fetching, .throttled, .waiting: break
        }
        let at = now.adding(milliseconds: settings.retryDelayMs)
        state.writtenEnd = max(state.durableEnd, logEnd)
        state.phase = .waiting(until: at)
        partitions[partition] = state
        return [.wakeUp(at: at)]
    }

    /// The connection to the master is gone: what was in flight is asked again after the retry
    /// delay, and the next connection is told every durable end again.
    public mutating func connectionLost(now: Instant) -> [Action] {
        let at = now.adding(milliseconds: settings.retryDelayMs)
        var wake = false
        for partition in partitions.keys.sorted() {
            partitions[partition]!.reportedEnd = -1
            switch partitions[partition]!.phase {
            case .fetching:
                partitions[partition]!.phase = .waiting(until: at)
                wake = true
            case .locating:
                partitions[partition]!.phase = .locateAgain(until: at)
                wake = true
            case .locateAgain, .throttled, .waiting: break
            }
        }
        return wake ? [.wakeUp(at: at)] : []
    }

    /// Time passes: waiting partitions whose time came fetch (located ones ask again), and the
    /// earliest wake-up still ahead is asked for again. A driver keeps one timer — the earliest
    /// `wakeUp` — and drops the later ones; when it fires, the partitions whose time has not come
    /// would otherwise wait for an answer that never comes (the failover sweep's seed 27376: a
    /// follower's t0-0 and t0-1 found their leader's end 1 ms after another partition had asked
    /// to be woken, and were never fetched again).
    public mutating func tick(now: Instant) -> [Action] {
        var actions: [Action] = []
        for partition in partitions.keys.sorted() { actions += fetchIfDue(partition, now) }
        if let next = nextWakeUp(after: now) { actions.append(.wakeUp(at: next)) }
        return actions
    }

    /// The earliest time after `now` a partition waits for (to fetch, or to locate again).
    func nextWakeUp(after now: Instant) -> Instant? {
        var earliest: Instant?
        for state in partitions.values {
            let until: Instant
            switch state.phase {
            case .waiting(let at), .locateAgain(let at): until = at
            case .locating, .fetching, .throttled: continue
            }
            if until > now, earliest.map({ until < $0 }) ?? true { earliest = until }
        }
        return earliest
    }

    mutating func fetchIfDue(_ partition: TopicPartition, _ now: Instant) -> [Action] {
        if case .locateAgain(let until)? = partitions[partition]?.phase, until <= now {
            partitions[partition]!.phase = .locating
            return [.queryFirstOffset(partition)]
        }
        guard var state = partitions[partition], case .waiting(let until) = state.phase, until <= now else { return [] }
        state.phase = .fetching(offset: state.writtenEnd)
        partitions[partition] = state
        return [.fetch(partition, offset: state.writtenEnd, maxBytes: state.fetchBytes)]
    }

    /// Bytes of the whole records at the start of `bytes` (headers' lengths only; the log checks
    /// every checksum when it appends them).
    static func wholeRecords(_ bytes: [UInt8]) -> Int {
        var position = 0
        while bytes.count - position >= Record.headerSize {
            let length = Int(Int32(bigEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: position, as: Int32.self) }))
            guard length >= 0, bytes.count - position - Record.headerSize >= length else { break }
            position += Record.headerSize + length
        }
        return position
    }

    /// Invariants: never a report beyond the durable end (the master answers synchronous puts on
    /// it); durable ≤ written; a fetch at the written end; the unsynced bytes bounded.
    public func checkInvariants() -> [String] {
        var problems: [String] = []
        for (partition, state) in partitions.sorted(by: { $0.key < $1.key }) {
            if state.reportedEnd > state.durableEnd {
                problems.append("\(partition): reported \(state.reportedEnd) beyond the durable end \(state.durableEnd)")
            }
            if state.durableEnd > state.writtenEnd {
                problems.append("\(partition): durable end \(state.durableEnd) beyond the written end \(state.writtenEnd)")
            }
            if case .fetching(let offset) = state.phase, offset != state.writtenEnd {
                problems.append("\(partition): a fetch at \(offset), the written end is \(state.writtenEnd)")
            }
            if state.writtenEnd - state.durableEnd > Int64(settings.maxUnsyncedBytes + settings.maxTransferSize) {
                problems.append("\(partition): \(state.writtenEnd - state.durableEnd) bytes written and not durable")
            }
        }
        return problems
    }
}
