/// The broker machine's own request counters for `stats` (reference §9). They count from the
/// machine's start and are never reset (`stats reset` resets only the realtime statistics).
public struct StatsCounters: Equatable, Sendable {
    /// Every put attempt, failures included.
    public var cmdPut: Int64 = 0
    public var cmdGet: Int64 = 0
    /// `offset` commands plus 301 answers to gets.
    public var cmdOffset: Int64 = 0
    /// 404 answers to gets.
    public var getMiss: Int64 = 0
    /// Put answers other than 200.
    public var putFailed: Int64 = 0
    /// Transaction counters: stay 0 until transactions are implemented (§4).
    public var txBegin: Int64 = 0
    public var txXaBegin: Int64 = 0
    public var txCommit: Int64 = 0
    public var txRollback: Int64 = 0

    public init() {}
}
