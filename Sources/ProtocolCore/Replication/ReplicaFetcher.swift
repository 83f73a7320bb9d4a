/// A slave's copying of its master (issue 17, reference §6.1) as a pure machine: for every
/// partition of the master, fetch at the end of what this slave has made durable, append what
/// comes back (whole records, the master's bytes as they are: same msgId, flag and offsets), make
/// it durable, fetch again. Because a fetch at X is sent only once everything below X is durable
/// here, the master may read X as this slave's durable position (`ReplicaTracker`).
///
/// A partition new to the slave starts at the master's first segment (`offset <topic> <group> <p> 0`
/// answers it, §1.4.3), as the original's slave does. At the master's end the partition waits,
/// backing off up to `maxDelayMs` (the original's `slaveMaxDelayInMills`, 500).
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

        public init(fetchBytes: Int = 1 << 20, maxTransferSize: Int = 1 << 20, minDelayMs: Int64 = 5, maxDelayMs: Int64 = 500,
                    retryDelayMs: Int64 = 100) {
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
        /// Appended up to `upTo`; waiting for it to be durable.
        case syncing(upTo: Int64)
        /// Nothing in flight: fetch at the durable end at `at` (or now).
        case waiting(until: Instant)
    }

    struct Partition: Sendable {
        var phase: Phase
        /// Everything below this is durable here.
        var durableEnd: Int64
        var fetchBytes: Int
        var delayMs: Int64
    }

    public let settings: Settings
    var partitions: [TopicPartition: Partition] = [:]

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    /// The durable end this slave has of `partition` (what its fetches tell the master).
    public func durableEnd(_ partition: TopicPartition) -> Int64? { partitions[partition]?.durableEnd }

    /// The master's partitions (from ZooKeeper) and the ends of the local logs that exist (after
    /// recovery: durable). New partitions are located at the master's first offset; dropped ones
    /// are forgotten. `now`: when fetching may begin.
    public mutating func master(partitions masterPartitions: [TopicPartition], localEnds: [TopicPartition: Int64],
                                now: Instant) -> [Action] {
        var actions: [Action] = []
        let wanted = Set(masterPartitions)
        for partition in partitions.keys.sorted() where !wanted.contains(partition) { partitions[partition] = nil }
        for partition in masterPartitions.sorted() where partitions[partition] == nil {
            if let end = localEnds[partition] {
                partitions[partition] = Partition(phase: .waiting(until: now), durableEnd: end, fetchBytes: settings.fetchBytes,
                                                  delayMs: settings.minDelayMs)
                actions += fetchIfDue(partition, now)
            } else {
                partitions[partition] = Partition(phase: .locating, durableEnd: 0, fetchBytes: settings.fetchBytes,
                                                  delayMs: settings.minDelayMs)
                actions.append(.queryFirstOffset(partition))
            }
        }
        return actions
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
            state.phase = .waiting(until: now)
            partitions[partition] = state
            actions.append(.createLog(partition, startingAt: offset))
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
                state.phase = .syncing(upTo: offset + Int64(whole))
                state.delayMs = settings.minDelayMs
                state.fetchBytes = settings.fetchBytes
                partitions[partition] = state
                actions.append(.append(partition, offset: offset, records: Array(bytes[..<whole])))
                actions.append(.sync(partition, upTo: offset + Int64(whole)))
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
            state.phase = .waiting(until: now)
            partitions[partition] = state
            actions.append(.restartLog(partition, at: minOffset))
            actions += fetchIfDue(partition, now)
        case (.fetching, .failed), (.fetching, .firstOffset):
            let at = now.adding(milliseconds: settings.retryDelayMs)
            state.phase = .waiting(until: at)
            partitions[partition] = state
            actions.append(.wakeUp(at: at))
        case (.syncing, _), (.waiting, _), (.locateAgain, _):
            break  // a late answer to a request this machine no longer waits for
        }
        return actions
    }

    /// `partition` is durable up to `end` here: the next fetch may go.
    public mutating func durable(_ partition: TopicPartition, end: Int64, now: Instant) -> [Action] {
        guard var state = partitions[partition] else { return [] }
        state.durableEnd = max(state.durableEnd, end)
        if case .syncing(let upTo) = state.phase, end >= upTo { state.phase = .waiting(until: now) }
        partitions[partition] = state
        return fetchIfDue(partition, now)
    }

    /// The append of what the last fetch brought failed (records that fail their checksum, a log
    /// that refuses them): nothing of it is kept; fetch again at the durable end after the retry
    /// delay.
    public mutating func appendFailed(_ partition: TopicPartition, now: Instant) -> [Action] {
        guard var state = partitions[partition], case .syncing = state.phase else { return [] }
        let at = now.adding(milliseconds: settings.retryDelayMs)
        state.phase = .waiting(until: at)
        partitions[partition] = state
        return [.wakeUp(at: at)]
    }

    /// The connection to the master is gone: what was in flight is asked again after the retry delay.
    public mutating func connectionLost(now: Instant) -> [Action] {
        let at = now.adding(milliseconds: settings.retryDelayMs)
        var wake = false
        for partition in partitions.keys.sorted() {
            switch partitions[partition]!.phase {
            case .fetching:
                partitions[partition]!.phase = .waiting(until: at)
                wake = true
            case .locating:
                partitions[partition]!.phase = .locateAgain(until: at)
                wake = true
            case .locateAgain, .syncing, .waiting: break
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
            case .locating, .fetching, .syncing: continue
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
        state.phase = .fetching(offset: state.durableEnd)
        partitions[partition] = state
        return [.fetch(partition, offset: state.durableEnd, maxBytes: state.fetchBytes)]
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

    /// Invariants: never a fetch beyond the durable end (a fetch position is what the master
    /// takes as this slave's durable one).
    public func checkInvariants() -> [String] {
        var problems: [String] = []
        for (partition, state) in partitions.sorted(by: { $0.key < $1.key }) {
            if case .fetching(let offset) = state.phase, offset > state.durableEnd {
                problems.append("\(partition): a fetch at \(offset) beyond the durable end \(state.durableEnd)")
            }
        }
        return problems
    }
}
