import Testing
@testable import ProtocolCore

/// The redelivery rounds of the recover stores (reference §5.2, MetaQ #111), fed by hand.
@Suite("Recover rounds (reference §5.2)")
struct RecoverRoundsTests {
    struct Item: RecoverRoundItem, Equatable {
        var topic: String
        var msgId: Int64
    }

    typealias Rounds = RecoverRounds<Item>

    static let a = Item(topic: "t", msgId: 1)
    static let b = Item(topic: "t", msgId: 2)
    static let c = Item(topic: "u", msgId: 3)

    static func at(_ ms: Int64) -> Instant { Instant(nanoseconds: ms * 1_000_000) }

    static func ticks(_ actions: [Rounds.Action]) -> [Instant] {
        actions.compactMap { if case .scheduleTick(let at) = $0 { at } else { nil } }
    }

    /// The first round waits at most 5 s, later ones the interval; a tick before the deadline
    /// asks again instead of starting a round (or losing the wake-up).
    @Test func schedulesRoundsAndIgnoresEarlyTicks() {
        var rounds = Rounds(settings: .init(intervalMs: 10_000))
        var cache: MessageIdCache? = nil
        #expect(Self.ticks(rounds.handle(.start, now: Self.at(0), cache: &cache)) == [Self.at(5_000)])
        #expect(Self.ticks(rounds.handle(.tick, now: Self.at(4_999), cache: &cache)) == [Self.at(5_000)])
        #expect(!rounds.inRound)
        let actions = rounds.handle(.tick, now: Self.at(5_000), cache: &cache)
        guard case .list? = actions.first else { Issue.record("expected .list, got \(actions)"); return }
        #expect(rounds.inRound && rounds.counters.rounds == 1)
        #expect(rounds.handle(.tick, now: Self.at(5_001), cache: &cache).isEmpty, "no second round while one runs")
        #expect(Self.ticks(rounds.handle(.listed([]), now: Self.at(5_002), cache: &cache)) == [Self.at(15_002)])
    }

    /// Handled messages are remembered and removed; a failing one stays (it is neither removed
    /// nor remembered) and the next round is scheduled from the round's end.
    @Test func failuresStayForTheNextRound() {
        var rounds = Rounds(settings: .init(intervalMs: 100))
        var cache: MessageIdCache? = MessageIdCache(capacity: 8)
        _ = rounds.handle(.start, now: Self.at(0), cache: &cache)
        _ = rounds.handle(.tick, now: Self.at(100), cache: &cache)
        let deliver = rounds.handle(.listed([Self.a, Self.b, Self.c]), now: Self.at(101), cache: &cache)
        guard case .deliver(let items)? = deliver.first else { Issue.record("expected .deliver, got \(deliver)"); return }
        #expect(items == [Self.a, Self.b, Self.c])
        let end = rounds.handle(.roundEnded(handled: [Self.a, Self.c]), now: Self.at(150), cache: &cache)
        guard case .remove(let removed)? = end.first else { Issue.record("expected .remove, got \(end)"); return }
        #expect(removed == [Self.a, Self.c])
        #expect(Self.ticks(end) == [Self.at(250)])
        #expect(cache!.idsByRecency == [3, 1], "the failed message is not remembered")
        #expect(rounds.counters.redelivered == 2 && rounds.counters.failures == 1)
    }

    /// A message the group handled meanwhile (in the dedup cache) is removed without the handler.
    @Test func handledBeforeIsRemovedUnhandled() {
        var rounds = Rounds(settings: .init(intervalMs: 100))
        var cache: MessageIdCache? = MessageIdCache(capacity: 8)
        cache!.insert(2)
        _ = rounds.handle(.start, now: Self.at(0), cache: &cache)
        _ = rounds.handle(.tick, now: Self.at(100), cache: &cache)
        let actions = rounds.handle(.listed([Self.a, Self.b]), now: Self.at(100), cache: &cache)
        #expect(actions.count == 2)
        if case .remove(let seen) = actions[0] { #expect(seen == [Self.b]) } else { Issue.record("\(actions)") }
        if case .deliver(let pending) = actions[1] { #expect(pending == [Self.a]) } else { Issue.record("\(actions)") }
        #expect(rounds.counters.handledBefore == 1)
    }

    /// Only the round's own answers count: a late `.listed` or `.roundEnded`, or anything after
    /// `.stop`, does nothing.
    @Test func staleAnswersAndStopAreIgnored() {
        var rounds = Rounds(settings: .init(intervalMs: 100))
        var cache: MessageIdCache? = nil
        _ = rounds.handle(.start, now: Self.at(0), cache: &cache)
        #expect(rounds.handle(.listed([Self.a]), now: Self.at(1), cache: &cache).isEmpty)
        #expect(rounds.handle(.roundEnded(handled: [Self.a]), now: Self.at(2), cache: &cache).isEmpty)
        _ = rounds.handle(.tick, now: Self.at(100), cache: &cache)
        #expect(rounds.handle(.stop, now: Self.at(101), cache: &cache).isEmpty)
        #expect(rounds.handle(.listed([Self.a]), now: Self.at(102), cache: &cache).isEmpty)
        #expect(rounds.handle(.tick, now: Self.at(500), cache: &cache).isEmpty)
        #expect(!rounds.inRound)
    }
}
