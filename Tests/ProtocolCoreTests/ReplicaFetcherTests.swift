import ProtocolCore
import Testing

/// A slave's copying of its master (issue 17, reference §6.1) fed by hand: where a new partition
/// starts, fetches pipelined with syncs, durable ends reported, whole records only, back-off at the
/// end, failures.
@Suite("Replica fetcher")
struct ReplicaFetcherTests {
    let p0 = TopicPartition("t", 0)
    let p1 = TopicPartition("t", 1)
    func at(_ ms: Int64) -> Instant { Instant(nanoseconds: ms * 1_000_000) }
    let settings = ReplicaFetcher.Settings(fetchBytes: 64, maxTransferSize: 256, minDelayMs: 5, maxDelayMs: 20, retryDelayMs: 50)

    func records(_ ids: ClosedRange<Int64>, size: Int = 5) -> [UInt8] {
        ids.flatMap { Record.encode(msgId: $0, flag: 0, payload: [UInt8](repeating: UInt8($0), count: size)) }
    }

    @Test func aNewPartitionStartsAtTheMastersFirstSegmentAndAnExistingOneAtItsEnd() {
        var fetcher = ReplicaFetcher(settings: settings)
        let actions = fetcher.master(partitions: [p1, p0], localEnds: [p1: 75], now: at(0))
        #expect(actions == [.queryFirstOffset(p0), .fetch(p1, offset: 75, maxBytes: 64), .report(p1, durableEnd: 75)],
                "the master learns where the existing copy ends")
        #expect(fetcher.answered(p0, .firstOffset(1_000), now: at(1)) == [.createLog(p0, startingAt: 1_000),
                                                                          .report(p0, durableEnd: 1_000),
                                                                          .fetch(p0, offset: 1_000, maxBytes: 64)])
        #expect(fetcher.checkInvariants().isEmpty)
    }

    /// The next fetch — at the new written end — goes while the appended records are synced; the
    /// master hears the durable end only once the sync made it so.
    @Test func fetchesArePipelinedWithSyncsAndOnlyDurableEndsAreReported() {
        var fetcher = ReplicaFetcher(settings: settings)
        _ = fetcher.master(partitions: [p0], localEnds: [p0: 0], now: at(0))
        let two = records(1...2)
        let cut = two + Array(records(3...3).prefix(10))
        #expect(fetcher.answered(p0, .bytes(cut), now: at(1)) == [.append(p0, offset: 0, records: two), .sync(p0, upTo: 50),
                                                                  .fetch(p0, offset: 50, maxBytes: 64)],
                "the cut third record is left for the next fetch, which goes at once")
        #expect(fetcher.durableEnd(p0) == 0 && fetcher.writtenEnd(p0) == 50)
        #expect(fetcher.answered(p0, .bytes(records(3...3)), now: at(2)) == [.append(p0, offset: 50, records: records(3...3)),
                                                                           .sync(p0, upTo: 75), .fetch(p0, offset: 75, maxBytes: 64)])
        #expect(fetcher.durable(p0, end: 50, now: at(3)) == [.report(p0, durableEnd: 50)])
        #expect(fetcher.durable(p0, end: 50, now: at(3)).isEmpty, "reported once")
        #expect(fetcher.durable(p0, end: 75, now: at(4)) == [.report(p0, durableEnd: 75)])
        #expect(fetcher.durableEnd(p0) == 75 && fetcher.checkInvariants().isEmpty)
    }

    /// Fetching waits once `maxUnsyncedBytes` are written and not durable.
    @Test func unsyncedBytesAreBounded() {
        var fetcher = ReplicaFetcher(settings: .init(fetchBytes: 64, maxTransferSize: 256, maxUnsyncedBytes: 60))
        _ = fetcher.master(partitions: [p0], localEnds: [p0: 0], now: at(0))
        #expect(fetcher.answered(p0, .bytes(records(1...2)), now: at(1)) == [.append(p0, offset: 0, records: records(1...2)),
                                                                           .sync(p0, upTo: 50), .fetch(p0, offset: 50, maxBytes: 64)])
        #expect(fetcher.answered(p0, .bytes(records(3...3)), now: at(2)) == [.append(p0, offset: 50, records: records(3...3)),
                                                                           .sync(p0, upTo: 75)], "75 unsynced ≥ 60: no fetch")
        #expect(fetcher.tick(now: at(3)).isEmpty)
        #expect(fetcher.durable(p0, end: 50, now: at(4)) == [.report(p0, durableEnd: 50), .fetch(p0, offset: 75, maxBytes: 64)])
        #expect(fetcher.checkInvariants().isEmpty)
    }

    /// The failover sweep's seed 1379: with two fetches of a partition in flight, the late
    /// answer (to the fetch at 0) came once the first one's records were durable and the fetch at
    /// their end was out — and was stored there, the same bytes a second time. An answer is taken
    /// only for the offset in flight.
    @Test func anAnswerToAFetchAtAnotherOffsetIsIgnored() {
        var fetcher = ReplicaFetcher(settings: settings)
        _ = fetcher.master(partitions: [p0], localEnds: [p0: 0], now: at(0))
        let two = records(1...2)
        #expect(fetcher.answered(p0, .bytes(two), fetchedAt: 0, now: at(1)) == [.append(p0, offset: 0, records: two),
                                                                                .sync(p0, upTo: 50),
                                                                                .fetch(p0, offset: 50, maxBytes: 64)])
        #expect(fetcher.answered(p0, .bytes(two), fetchedAt: 0, now: at(2)).isEmpty, "a late answer to the fetch at 0")
        #expect(fetcher.answered(p0, .atEnd, fetchedAt: 0, now: at(2)).isEmpty)
        #expect(fetcher.durable(p0, end: 50, now: at(3)) == [.report(p0, durableEnd: 50)])
        let next = records(3...3)
        #expect(fetcher.answered(p0, .bytes(next), fetchedAt: 50, now: at(4)) == [.append(p0, offset: 50, records: next),
                                                                                 .sync(p0, upTo: 75),
                                                                                 .fetch(p0, offset: 75, maxBytes: 64)])
        #expect(fetcher.checkInvariants().isEmpty)
    }

    /// A new link's fetcher starts from the logs as they are: when the last link's bytes are
    /// written and not yet durable, it reports only the durable end and fetches after the written
    /// one (fetching at the durable end would bring bytes the log cannot take at that offset).
    @Test func aNewFetcherReportsTheDurableEndAndFetchesAfterTheWrittenOne() {
        var fetcher = ReplicaFetcher(settings: settings)
        #expect(fetcher.master(partitions: [p0], localEnds: [p0: 25], writtenEnds: [p0: 50], now: at(0))
                == [.fetch(p0, offset: 50, maxBytes: 64), .report(p0, durableEnd: 25)])
        #expect(fetcher.durableEnd(p0) == 25 && fetcher.writtenEnd(p0) == 50)
        #expect(fetcher.durable(p0, end: 50, now: at(1)) == [.report(p0, durableEnd: 50)])
        #expect(fetcher.checkInvariants().isEmpty)
    }

    @Test func aRecordLargerThanTheFetchAsksForMoreUpToTheTransferLimit() {
        var fetcher = ReplicaFetcher(settings: settings)
        _ = fetcher.master(partitions: [p0], localEnds: [p0: 0], now: at(0))
        let big = records(1...1, size: 100)
        #expect(fetcher.answered(p0, .bytes(Array(big.prefix(64))), now: at(1)) == [.fetch(p0, offset: 0, maxBytes: 128)])
        #expect(fetcher.answered(p0, .bytes(big), now: at(2)) == [.append(p0, offset: 0, records: big), .sync(p0, upTo: 120),
                                                                  .fetch(p0, offset: 120, maxBytes: 64)])
    }

    @Test func atTheEndItBacksOffAndAfterAFailureItRetries() {
        var fetcher = ReplicaFetcher(settings: settings)
        _ = fetcher.master(partitions: [p0], localEnds: [p0: 0], now: at(0))
        #expect(fetcher.answered(p0, .atEnd, now: at(1)) == [.wakeUp(at: at(6))])
        #expect(fetcher.tick(now: at(5)) == [.wakeUp(at: at(6))], "no fetch yet; the wake-up asked again")
        #expect(fetcher.tick(now: at(6)) == [.fetch(p0, offset: 0, maxBytes: 64)])
        #expect(fetcher.answered(p0, .atEnd, now: at(7)) == [.wakeUp(at: at(17))], "doubled")
        _ = fetcher.tick(now: at(17))
        #expect(fetcher.answered(p0, .atEnd, now: at(18)) == [.wakeUp(at: at(38))], "capped at maxDelayMs")
        _ = fetcher.tick(now: at(38))
        #expect(fetcher.answered(p0, .failed("connection lost"), now: at(40)) == [.wakeUp(at: at(90))])
        #expect(fetcher.tick(now: at(90)) == [.fetch(p0, offset: 0, maxBytes: 64)])
        #expect(fetcher.connectionLost(now: at(91)) == [.wakeUp(at: at(141))])
        #expect(fetcher.tick(now: at(141)) == [.fetch(p0, offset: 0, maxBytes: 64)])
    }

    /// An append that stored nothing (a record failed its checksum) leaves no sync to wait for:
    /// that partition is fetched again after the retry delay, and the others go on meanwhile.
    @Test func anAppendThatFailedIsFetchedAgainWithoutStoppingTheOthers() {
        var fetcher = ReplicaFetcher(settings: settings)
        _ = fetcher.master(partitions: [p0, p1], localEnds: [p0: 0, p1: 0], now: at(0))
        #expect(fetcher.answered(p0, .bytes(records(1...1)), now: at(1)) == [.append(p0, offset: 0, records: records(1...1)),
                                                                           .sync(p0, upTo: 25), .fetch(p0, offset: 25, maxBytes: 64)])
        #expect(fetcher.appendFailed(p0, logEnd: 0, now: at(2)) == [.wakeUp(at: at(52))])
        #expect(fetcher.answered(p0, .bytes(records(2...2)), now: at(2)).isEmpty, "the fetch sent before is answered into the void")
        #expect(fetcher.answered(p1, .bytes(records(7...7)), now: at(3)) == [.append(p1, offset: 0, records: records(7...7)),
                                                                           .sync(p1, upTo: 25), .fetch(p1, offset: 25, maxBytes: 64)])
        #expect(fetcher.tick(now: at(52)) == [.fetch(p0, offset: 0, maxBytes: 64)], "at the log's end")
        #expect(fetcher.checkInvariants().isEmpty)
    }

    /// A driver keeps one timer, the earliest wake-up asked for, and drops later ones: when it
    /// fires, the tick asks again for the earliest wake-up still ahead, so no waiting partition is
    /// forgotten (the failover sweep's seed 27376: a follower never fetched two partitions again
    /// after finding its leader's end, and never converged).
    @Test func aTickAsksAgainForTheWakeUpOfPartitionsStillWaiting() {
        var fetcher = ReplicaFetcher(settings: settings)
        _ = fetcher.master(partitions: [p0, p1], localEnds: [p0: 0, p1: 0], now: at(0))
        #expect(fetcher.answered(p0, .atEnd, now: at(1)) == [.wakeUp(at: at(6))])
        #expect(fetcher.answered(p1, .atEnd, now: at(3)) == [.wakeUp(at: at(8))], "a driver keeping one timer drops this")
        #expect(fetcher.tick(now: at(6)) == [.fetch(p0, offset: 0, maxBytes: 64), .wakeUp(at: at(8))])
        #expect(fetcher.tick(now: at(8)) == [.fetch(p1, offset: 0, maxBytes: 64)])
        #expect(fetcher.checkInvariants().isEmpty)
    }

    /// The master's retention removed what this slave has not copied: the local log restarts there.
    @Test func aSlaveBehindTheMastersRetentionRestartsItsLog() {
        var fetcher = ReplicaFetcher(settings: settings)
        _ = fetcher.master(partitions: [p0], localEnds: [p0: 100], now: at(0))
        #expect(fetcher.answered(p0, .belowMinimum(minOffset: 4_096), now: at(1)) == [.restartLog(p0, at: 4_096),
                                                                                      .report(p0, durableEnd: 4_096),
                                                                                      .fetch(p0, offset: 4_096, maxBytes: 64)])
    }

    @Test func aFailedFirstOffsetQueryIsAskedAgainLater() {
        var fetcher = ReplicaFetcher(settings: settings)
        _ = fetcher.master(partitions: [p0], localEnds: [:], now: at(0))
        #expect(fetcher.answered(p0, .failed("refused"), now: at(1)) == [.wakeUp(at: at(51))])
        #expect(fetcher.tick(now: at(50)) == [.wakeUp(at: at(51))], "not asked yet; the wake-up asked again")
        #expect(fetcher.tick(now: at(51)) == [.queryFirstOffset(p0)])
        #expect(fetcher.master(partitions: [], localEnds: [:], now: at(52)).isEmpty)
        #expect(fetcher.durableEnd(p0) == nil, "a partition the master no longer has is forgotten")
    }
}

extension ReplicaFetcherTests {
    @Test func aFailedAppendIsFetchedAgainAfterTheRetryDelay() {
        var fetcher = ReplicaFetcher(settings: .init(fetchBytes: 100, retryDelayMs: 100))
        let p = TopicPartition("t", 0)
        let now = Instant(nanoseconds: 0)
        _ = fetcher.master(partitions: [p], localEnds: [p: 0], now: now)
        let record = Record.encode(msgId: 1, flag: 0, payload: [1, 2, 3])
        let appended = fetcher.answered(p, .bytes(record), now: now)
        #expect(appended.contains(.sync(p, upTo: Int64(record.count))))
        #expect(fetcher.appendFailed(p, logEnd: 0, now: now) == [.wakeUp(at: now.adding(milliseconds: 100))])
        #expect(fetcher.tick(now: now.adding(milliseconds: 99)) == [.wakeUp(at: now.adding(milliseconds: 100))])
        #expect(fetcher.tick(now: now.adding(milliseconds: 100)) == [.fetch(p, offset: 0, maxBytes: 100)], "at the durable end, again")
        #expect(fetcher.checkInvariants().isEmpty)
    }
}
