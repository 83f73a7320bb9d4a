/// The broker's realtime statistics (reference §9, `stats realtime` and `stats <topic>`): per
/// topic with `stat=true`, a count and a summed value for puts, gets, offsets, get misses, failed
/// puts and message sizes, since the last reset — every 30 minutes, and on `stats reset`.
///
/// A pure value: the machine records into it with the time of the event and prints it.
public struct RealtimeStats: Equatable, Sendable {
    /// One statistic: how many events, and the sum of their values (1 per event, except
    /// `messageSize`, whose value is the payload bytes).
    public struct Sample: Equatable, Sendable {
        public var count: Int64 = 0
        public var value: Int64 = 0

        mutating func add(_ v: Int64) {
            count += 1
            value += v
        }

        static func + (a: Sample, b: Sample) -> Sample { Sample(count: a.count + b.count, value: a.value + b.value) }
    }

    public enum Kind: Int, CaseIterable, Sendable {
        case put, get, offset, getMiss, putFailed, messageSize

        /// The key after `realtime_` / `topic_realtime_` (§9).
        var key: String {
            switch self {
            case .put: return "put"
            case .get: return "get"
            case .offset: return "offset"
            case .getMiss: return "get_miss"
            case .putFailed: return "put_failed"
            case .messageSize: return "message_size"
            }
        }
    }

    /// The original resets its realtime statistics every 30 minutes.
    public static let intervalMs: Int64 = 30 * 60 * 1000

    /// Topic names come from the wire: with a `stat=true` wildcard section every `get` of a new
    /// name would add an entry until the next reset. Beyond this many topics per interval, events
    /// of topics not counted yet are dropped (`droppedEvents`), so the table stays bounded.
    public static let maxTopics = 4096

    public private(set) var startedMs: Int64
    /// Slot of each counted topic in `samples`.
    private var slots: [String: Int] = [:]
    /// Samples by slot, each indexed by `Kind.rawValue`.
    private var samples: [[Sample]] = []
    /// The topic of the last event and its slot: puts of one topic follow each other, and
    /// comparing a name is far cheaper than hashing it twice per put (the stats are on the put
    /// path of every `stat=true` topic).
    private var lastTopic = ""
    private var lastSlot = -1
    /// Events not counted since the last reset because `maxTopics` topics were counted already.
    public private(set) var droppedEvents: Int64 = 0

    public init(startedMs: Int64) { self.startedMs = startedMs }

    /// Samples by topic, indexed by `Kind.rawValue`.
    var topics: [String: [Sample]] { slots.mapValues { samples[$0] } }

    public static func == (a: RealtimeStats, b: RealtimeStats) -> Bool {
        a.startedMs == b.startedMs && a.droppedEvents == b.droppedEvents && a.topics == b.topics
    }

    /// Counts one event of `kind` for `topic` (the caller checks the topic's `stat` flag).
    public mutating func record(_ kind: Kind, topic: String, value: Int64 = 1, nowMs: Int64) {
        rollIfDue(nowMs: nowMs)
        guard let slot = slot(of: topic) else { return }
        samples[slot][kind.rawValue].add(value)
    }

    /// A stored put: `put` once and `messageSize` by its payload bytes, with one lookup.
    public mutating func recordPut(topic: String, bytes: Int64, nowMs: Int64) {
        rollIfDue(nowMs: nowMs)
        guard let slot = slot(of: topic) else { return }
        samples[slot][Kind.put.rawValue].add(1)
        samples[slot][Kind.messageSize.rawValue].add(bytes)
    }

    /// The topic's slot, made on its first event; nil (and the event dropped) beyond `maxTopics`.
    private mutating func slot(of topic: String) -> Int? {
        if lastSlot >= 0, topic == lastTopic { return lastSlot }
        let slot: Int
        if let known = slots[topic] {
            slot = known
        } else {
            guard samples.count < Self.maxTopics else {
                droppedEvents += 1
                return nil
            }
            slot = samples.count
            slots[topic] = slot
            samples.append(Array(repeating: Sample(), count: Kind.allCases.count))
        }
        lastTopic = topic
        lastSlot = slot
        return slot
    }

    /// `stats reset`, and the 30-minute roll.
    public mutating func reset(nowMs: Int64) {
        slots.removeAll()
        samples.removeAll()
        lastTopic = ""
        lastSlot = -1
        droppedEvents = 0
        startedMs = nowMs
    }

    mutating func rollIfDue(nowMs: Int64) {
        if nowMs - startedMs >= Self.intervalMs { reset(nowMs: nowMs) }
    }

    /// All topics together; nil when nothing of that kind was recorded.
    public func total(_ kind: Kind) -> Sample? {
        let counted = samples.map { $0[kind.rawValue] }.filter { $0.count > 0 }
        return counted.isEmpty ? nil : counted.reduce(Sample(), +)
    }

    public func sample(_ kind: Kind, topic: String) -> Sample? {
        guard let slot = slots[topic], case let sample = samples[slot][kind.rawValue], sample.count > 0 else {
            return nil
        }
        return sample
    }

    /// `Count=<c>,Value=<v>,Value/Count=<v/c>,Count/Duration=<c/s>,Duration=<s>` (§9), with
    /// `invalid` for a zero divisor.
    public func describe(_ sample: Sample, nowMs: Int64) -> String {
        let seconds = max(0, nowMs - startedMs) / 1000
        func ratio(_ a: Int64, _ b: Int64) -> String { b == 0 ? "invalid" : Self.format(Double(a) / Double(b)) }
        return "Count=\(sample.count),Value=\(sample.value),Value/Count=\(ratio(sample.value, sample.count)),"
            + "Count/Duration=\(ratio(sample.count, seconds)),Duration=\(seconds)"
    }

    /// Java's `DecimalFormat("#.##")`: at most two decimals, half-even, no trailing zeros.
    static func format(_ x: Double) -> String {
        let hundredths = Int64((x * 100).rounded(.toNearestOrEven))
        let whole = hundredths / 100
        let fraction = hundredths % 100
        if fraction == 0 { return "\(whole)" }
        if fraction % 10 == 0 { return "\(whole).\(fraction / 10)" }
        return "\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
