/// The broker's request handling as a pure machine (reference §1.4, §2.8): decoded requests and
/// store completions go in as events, appends, reads and replies come out as actions. The runtime
/// owns connections and partition logs; this owns every rule and every text a client sees.
///
/// Covered so far: `put` (all four forms), `get`, `offset`, `version`, `quit`, `stats` (§9; see
/// BrokerMachine+Stats.swift). `sync` and transactions get the original's answer for a command
/// without a processor (503) until their handlers land (docs/COMPATIBILITY.md, "What is served").
public struct BrokerMachine {
    public struct Settings: Sendable {
        public var brokerId: Int
        /// `meta://<host>:<port>` as it appears in error texts.
        public var brokerURI: String
        /// `serverPort`, printed by `stats` (§9).
        public var port: Int
        public var version: String
        /// Cap of one `get` answer (`maxTransferSize`, §1.4.2).
        public var maxTransferSize: Int32
        /// `get` beyond the max offset answers 301 with the max offset instead of 404 (§1.4.2).
        public var updateConsumerOffsets: Bool
        public var topics: TopicRules
        /// `maxAutoCreatedPartitions`: how many partitions of topics without an exact `[topic=…]`
        /// section (created by puts through a wildcard section, §1.4.1, or found on disk) may
        /// exist; a put that would create one more is refused. Bounds what the wire can make the
        /// broker create (directories, files, memory, znodes).
        public var maxAutoCreatedPartitions: Int
        /// The transaction machine's bounds and timeouts (§4.6).
        public var transactions: TransactionMachine.Settings
        /// A gregor-style synchronous slave (§6.2): `sync` requests of a samsa master are stored
        /// with the master's msgId and answered `<msgId> <partition> <offset>`; else they get the
        /// original's 503 of a broker without the processor.
        public var acceptsSync = false

        public init(brokerId: Int, brokerURI: String, port: Int, version: String, maxTransferSize: Int32,
                    updateConsumerOffsets: Bool, topics: TopicRules,
                    maxAutoCreatedPartitions: Int = Self.defaultMaxAutoCreatedPartitions,
                    transactions: TransactionMachine.Settings = TransactionMachine.Settings()) {
            self.brokerId = brokerId
            self.brokerURI = brokerURI
            self.port = port
            self.version = version
            self.maxTransferSize = maxTransferSize
            self.updateConsumerOffsets = updateConsumerOffsets
            self.topics = topics
            self.maxAutoCreatedPartitions = maxAutoCreatedPartitions
            self.transactions = transactions
        }

        /// The default of `maxAutoCreatedPartitions` (our limit; the original has none).
        public static let defaultMaxAutoCreatedPartitions = 1024
    }

    public enum Event: Equatable, Sendable {
        case request(ConnectionID, Frame)
        /// An append finished: durable under group commit, written otherwise; or failed.
        case appended(token: UInt64, Result<Int64, StoreFailure>)
        case read(token: UInt64, PartitionRead)
        case nearestOffset(token: UInt64, Int64)
        /// The runtime's answer to `.collectStats(token:item:)`.
        case statsCollected(token: UInt64, StatsSnapshot)
        case connectionClosed(ConnectionID)
        /// The partition's log failed a write or a sync (`cause` says which, and why): it refuses
        /// writes until the broker restarts. Sent before the puts caught in the failure are
        /// answered, so their answers say so too.
        case partitionFailed(TopicPartition, cause: String)
        /// An operator closed the partition (reference §1.4: puts and gets answer 403), or opened
        /// it again.
        case partitionClosed(TopicPartition)
        case partitionReopened(TopicPartition)
        /// `reload` (reference §8.4) replaced the topic sections: legality, partition counts,
        /// `stat` and filters follow `rules` from the next request on.
        case topicsChanged(TopicRules)
        /// The outcome of `.persistIdReservation(ms)`. A failure makes the next put ask for a
        /// reservation again; the put that asked for this one must be refused by the caller.
        case idReservationSaved(Int64, succeeded: Bool)
        /// The outcome of `.journalTransactionPut`: where its APPEND_MSG entry went, or why it
        /// could not be written (§4.3).
        /// (`indirect`: a large payload would make every event of the put path larger to copy.)
        indirect case transactionPutJournaled(TransactionPutJournal, Result<TxJournalPosition, StoreFailure>)
    }

    public enum Action: Equatable, Sendable {
        /// Create the partition's log if needed and append this record.
        case append(token: UInt64, TopicPartition, AppendRecord)
        case read(token: UInt64, TopicPartition, offset: Int64, maxBytes: Int)
        /// Like `.read`, but the runtime answers with the bytes themselves (`PartitionRead.bytes`):
        /// a `get` of a group with a server-side filter (§5.7), which the machine must look into.
        case readBytes(token: UInt64, TopicPartition, offset: Int64, maxBytes: Int)
        case nearestOffset(token: UInt64, TopicPartition, offset: Int64)
        case reply(ConnectionID, ResultResponse)
        /// A put was stored: answer `result 200 … <opaque>` with `<msgId> <partition> <offset>`
        /// (§1.4.1). Its own case so a runtime can encode it from the numbers without building
        /// a body array per put; `PutAnswer.response` is the same answer as a `ResultResponse`.
        case putAnswer(ConnectionID, PutAnswer)
        /// Send `value <count> <opaque>` and the slice read for `token`.
        case sendSlice(ConnectionID, token: UInt64, opaque: Int32)
        /// Send `value <body.count> <opaque>` and `body` (a filtered `get`'s accepted records).
        case sendBytes(ConnectionID, body: [UInt8], opaque: Int32)
        /// Persist this id reservation durably before any append issued after it is acknowledged.
        case persistIdReservation(Int64)
        /// Gather a `StatsSnapshot` and answer with `.statsCollected(token:_:)`; `item` is the
        /// requested `stats` item (nil = system stats) in case the runtime can gather less.
        case collectStats(token: UInt64, item: String?)
        /// `stats config` (§1.4.6): send `result 200 <fileSize> <opaque>␍␊` and then the raw
        /// bytes of `server.ini`.
        case sendConfigFile(ConnectionID, opaque: Int32)
        case close(ConnectionID)
        /// A put inside a transaction was accepted: write `put.entry` to the redo log (the message
        /// becomes visible only at commit), then report `.transactionPutJournaled` (§4.2).
        /// (`indirect`, like every large payload: the enum is as large as its largest inline
        /// payload, and the put path copies actions.)
        indirect case journalTransactionPut(TransactionPutJournal)
        /// What the transaction machine asks of the node besides answers (journal entries,
        /// commits, redo-file references, notices).
        indirect case transaction(TxAction)
    }

    /// A transactional put on its way to the redo log.
    public struct TransactionPutJournal: Equatable, Sendable {
        public var connection: ConnectionID
        public var opaque: Int32
        public var ticket: TxPutTicket
        public var messageId: Int64
        /// The put as the redo log records it: checksum -1 for a put that carried none, as the
        /// original re-encodes old-format puts (§4.3).
        public var put: PutCommand

        /// Its `APPEND_MSG` entry (the node encodes it straight into the journal instead).
        public var entry: TxJournalEntry { .appendMessage(messageId: messageId, putCommand: Frame.put(put).encoded()) }
    }

    /// The numbers of a successful put's answer.
    public struct PutAnswer: Equatable, Sendable {
        public var opaque: Int32
        public var msgId: Int64
        public var partition: Int32
        public var offset: Int64

        public init(opaque: Int32, msgId: Int64, partition: Int32, offset: Int64) {
            self.opaque = opaque
            self.msgId = msgId
            self.partition = partition
            self.offset = offset
        }

        /// Longest body: two Int64 and an Int32 in decimal with two spaces.
        public static let maxBodyBytes = 20 + 1 + 11 + 1 + 20

        /// Writes `<msgId> <partition> <offset>` at `p` (at least `maxBodyBytes`); returns its length.
        public func writeBody(to p: UnsafeMutableRawPointer) -> Int {
            var n = DecimalASCII.write(msgId, at: p)
            p.storeBytes(of: 0x20, toByteOffset: n, as: UInt8.self)
            n += 1
            n += DecimalASCII.write(Int64(partition), at: p + n)
            p.storeBytes(of: 0x20, toByteOffset: n, as: UInt8.self)
            n += 1
            n += DecimalASCII.write(offset, at: p + n)
            return n
        }

        /// The answer as a frame value.
        public var response: ResultResponse {
            let body = [UInt8](unsafeUninitializedCapacity: Self.maxBodyBytes) { buffer, count in
                count = writeBody(to: UnsafeMutableRawPointer(buffer.baseAddress!))
            }
            return ResultResponse(code: StatusCode.success, body: body, opaque: opaque)
        }
    }

    /// One message record to append: the runtime encodes it straight into the log (§1.5).
    public struct AppendRecord: Equatable, Sendable {
        public var msgId: Int64
        public var flag: Int32
        public var payload: [UInt8]
        /// The payload's record checksum when the put carried one that was verified (§1.4.1),
        /// so the store need not compute it again.
        public var verifiedChecksum: Int32?

        public init(msgId: Int64, flag: Int32, payload: [UInt8], verifiedChecksum: Int32? = nil) {
            self.msgId = msgId
            self.flag = flag
            self.payload = payload
            self.verifiedChecksum = verifiedChecksum
        }

        /// The record's bytes as they will be stored.
        public var encoded: [UInt8] { Record.encode(msgId: msgId, flag: flag, payload: payload) }
    }

    /// Why the store could not take an append.
    public struct StoreFailure: Error, Equatable, Sendable {
        public var message: String
        public init(_ message: String) { self.message = message }
    }

    enum Pending: Equatable {
        /// `stat`: the topic's realtime statistics are collected (looked up once, at the put).
        case put(ConnectionID, opaque: Int32, msgId: Int64, TopicPartition, payloadBytes: Int64, stat: Bool)
        /// `filter`: the group's server-side filter (§5.7), when the get was read as bytes.
        case get(ConnectionID, opaque: Int32, offset: Int64, TopicPartition, filter: AttributeFilter?)
        case offset(ConnectionID, opaque: Int32)
        case stats(ConnectionID, opaque: Int32, StatsItem)
    }

    /// Fixed but for `topics`, which `.topicsChanged` replaces (reload, §8.4).
    public internal(set) var settings: Settings
    var ids: MessageIdGenerator
    var random: SplitMix64
    /// Partitions that have a log (on disk at start, or created by a put); a `get` elsewhere is 404.
    public internal(set) var partitionsWithData: Set<TopicPartition>
    /// Partitions an operator closed (`.partitionClosed`): puts and gets to them answer 403.
    public internal(set) var closedPartitions: Set<TopicPartition> = []
    /// Partitions whose log failed; puts to them are refused (BrokerMachine+FailedPartitions.swift).
    public internal(set) var failedPartitions: [TopicPartition: PartitionFailure] = [:]
    /// Partitions of topics without an exact section (`TopicRules.hasExactSection`): those with
    /// data, and those a put was accepted for (counted from the put, so concurrent first puts
    /// cannot overshoot `maxAutoCreatedPartitions`). Only grows: a refused or failed creation
    /// keeps its place, so the distinct partitions the wire can ask for stay bounded.
    public internal(set) var autoCreatedPartitions: Set<TopicPartition>
    /// Open, prepared and heuristically completed transactions (§4).
    public internal(set) var transactions: TransactionMachine
    /// The topic of the last accepted put and its section: consecutive puts of one topic skip
    /// the name check and the section search (forgotten when `.topicsChanged` replaces them).
    var lastAcceptedTopic: (name: String, rule: TopicRules.Rule)?
    /// Partitions recent puts were stored in (each known to be in `partitionsWithData`, which
    /// only grows): checked without hashing the name.
    var recentStoredPartitions = RecentPartitions<Void>()
    var pending: [UInt64: Pending] = [:]
    /// Puts whose connection closed before their append completed: no answer is owed any more,
    /// but a completed one still gives its partition data.
    var orphanedPuts: [UInt64: TopicPartition] = [:]
    var nextToken: UInt64 = 1
    /// Request counters printed by system `stats` (§9).
    public internal(set) var statsCounters = StatsCounters()
    /// `stats realtime` and the `topic_realtime_*` lines (§9), for topics with `stat=true`.
    public internal(set) var realtime = RealtimeStats(startedMs: 0)
    var realtimeStarted = false
    /// The time of the event being handled.
    var clockMs: Int64 = 0

    /// - Parameter transactions: the transactions replayed from the redo log at start-up (§4.5);
    ///   none when nil.
    public init(settings: Settings, partitionsWithData: Set<TopicPartition>, idReservationMs: Int64, seed: UInt64,
                transactions: TransactionMachine? = nil) {
        self.settings = settings
        self.partitionsWithData = partitionsWithData
        autoCreatedPartitions = partitionsWithData.filter { !settings.topics.hasExactSection($0.topic) }
        self.ids = MessageIdGenerator(workerId: settings.brokerId, persistedReservationMs: idReservationMs)
        self.random = SplitMix64(seed: seed)
        self.transactions = transactions ?? TransactionMachine(settings: settings.transactions)
    }

    /// Requests and completions waiting for their other half.
    public var pendingCount: Int { pending.count }

    /// Handles one event at wall-clock time `nowMs` (message ids take their time from it).
    public mutating func handle(_ event: Event, nowMs: Int64) -> [Action] {
        var actions: [Action] = []
        handle(event, nowMs: nowMs, into: &actions)
        return actions
    }

    /// `handle(_:nowMs:)` appending to the caller's array, so a runtime can reuse one buffer for
    /// every event (no allocation per request on the hot path).
    public mutating func handle(_ event: Event, nowMs: Int64, into actions: inout [Action]) {
        clockMs = nowMs
        if !realtimeStarted {
            realtime.reset(nowMs: nowMs)
            realtimeStarted = true
        }
        switch event {
        case .request(let connection, .put(let put)): handlePut(put, from: connection, nowMs: nowMs, into: &actions)
        case .request(let connection, .sync(let sync)) where settings.acceptsSync:
            handlePut(PutCommand(topic: sync.topic, partition: sync.partition, flag: sync.flag, checksum: sync.checksum,
                                 body: sync.body, opaque: sync.opaque),
                      from: connection, nowMs: nowMs, messageId: sync.msgId, into: &actions)
        case .request(let connection, .get(let get)): handleGet(get, from: connection, into: &actions)
        case .appended(let token, let result): completePut(token, result, into: &actions)
        case .read(let token, let read): completeGet(token, read, into: &actions)
        case .transactionPutJournaled(let journal, let result): completeTransactionPut(journal, result, into: &actions)
        default: actions.append(contentsOf: handleOther(event, nowMs: nowMs))
        }
    }

    private mutating func handleOther(_ event: Event, nowMs: Int64) -> [Action] {
        switch event {
        case .request(let connection, let frame): return handleRequest(frame, from: connection, nowMs: nowMs)
        case .appended, .read: return []
        case .nearestOffset(let token, let offset): return completeOffset(token, offset)
        case .statsCollected(let token, let snapshot): return completeStats(token, snapshot)
        case .partitionFailed(let partition, let cause):
            recordFailure(partition, cause: cause)
            return []
        case .idReservationSaved(let ms, let succeeded):
            if succeeded { ids.reservationPersisted(ms) } else { ids.reservationFailed(ms) }
            return []
        case .transactionPutJournaled: return []  // handled in `handle(_:nowMs:into:)`
        case .partitionClosed(let partition):
            closedPartitions.insert(partition)
            return []
        case .partitionReopened(let partition):
            closedPartitions.remove(partition)
            return []
        case .topicsChanged(let rules):
            settings.topics = rules
            lastAcceptedTopic = nil
            return []
        case .connectionClosed(let connection):
            // Answers still owed to a closed connection are dropped; the stores finish regardless
            // (and a stored put makes its partition readable, answered or not).
            for (token, entry) in pending.sorted(by: { $0.key < $1.key }) where entry.connection == connection {
                if case .put(_, _, _, let target, _, _) = entry { orphanedPuts[token] = target }
                pending[token] = nil
            }
            // Unlike the original (§4.6, §11.5), the connection's local transactions end with it.
            return transactionActions(transactions.connectionClosed(connection))
        }
    }

    private mutating func handleRequest(_ frame: Frame, from connection: ConnectionID, nowMs: Int64) -> [Action] {
        switch frame {
        case .put, .get: return []  // handled in `handle(_:nowMs:into:)`
        case .offset(let command): return handleOffset(command, from: connection)
        case .version(let command):
            return [.reply(connection, ResultResponse(code: StatusCode.success, text: settings.version,
                                                      opaque: command.responseOpaque))]
        case .quit: return [.close(connection)]
        case .stats(let command): return handleStats(command, from: connection)
        case .transaction:
            // Handled by the node (`transactionCommand`), which has the monotonic clock timeouts
            // need; a machine driven without one answers as a broker without the processor.
            fallthrough
        case .sync:
            // gecko answers a decodable request without a registered processor with 503 and this
            // text (§1.1; verified for `sync` on a broker that is not a slave).
            let text = "未注册请求处理器，请求处理器类为com.taobao.metamorphosis.network.\(Self.commandClass(frame))"
            return [.reply(connection, ResultResponse(code: StatusCode.serviceUnavailable, text: text,
                                                      opaque: frame.opaque ?? defaultResponseOpaque))]
        case .result, .value:
            // Responses are not requests: a broker has nothing to match them with and drops them.
            return []
        }
    }

    /// Counts a realtime statistic when `topic` has `stat=true` (§9).
    mutating func recordRealtime(_ kind: RealtimeStats.Kind, _ topic: String, value: Int64 = 1) {
        guard settings.topics.collectsStats(topic) else { return }
        realtime.record(kind, topic: topic, value: value, nowMs: clockMs)
    }

    mutating func token(for entry: Pending) -> UInt64 {
        let token = nextToken
        nextToken += 1
        pending[token] = entry
        return token
    }

    static func commandClass(_ frame: Frame) -> String {
        switch frame {
        case .stats: return "StatsCommand"
        case .transaction: return "TransactionCommand"
        default: return "SyncCommand"
        }
    }
}

extension BrokerMachine.Pending {
    var connection: ConnectionID {
        switch self {
        case .put(let c, _, _, _, _, _), .get(let c, _, _, _, _), .offset(let c, _), .stats(let c, _, _): return c
        }
    }
}
