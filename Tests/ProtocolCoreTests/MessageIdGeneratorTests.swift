import Testing
@testable import ProtocolCore

@Suite("Message ids (reference §2.1, §11.2)")
struct MessageIdGeneratorTests {
    let now: Int64 = 1_795_000_000_000

    @Test func layoutMatchesMetaQ() {
        var ids = MessageIdGenerator(workerId: 7, persistedReservationMs: 0)
        let issue = ids.next(nowMs: now)
        let parts = MessageIdGenerator.decompose(issue.id)
        #expect(parts.timestampMs == now)
        #expect(parts.workerId == 7)
        #expect(parts.sequence == 0)
        #expect(issue.id == ((now - 1_303_895_660_503) << 22) | (7 << 12))
        #expect(issue.id > 0)
    }

    @Test func sequenceWithinAMillisecondThenBorrowsTheNext() {
        var ids = MessageIdGenerator(workerId: 1, persistedReservationMs: 0)
        var seen = Set<Int64>()
        var last = Int64.min
        for _ in 0..<10_000 {
            let id = ids.next(nowMs: now).id
            #expect(id > last)
            last = id
            seen.insert(id)
        }
        #expect(seen.count == 10_000)
        #expect(MessageIdGenerator.decompose(last).timestampMs == now + 2)
    }

    /// The original repeats ids after a restart (§11.2). Here a restart with the clock set back
    /// still issues ids above everything the earlier run issued.
    @Test func uniqueAcrossRestartsEvenWhenTheClockGoesBack() {
        var first = MessageIdGenerator(workerId: 0, persistedReservationMs: 0, reservationWindowMs: 1000)
        var persisted: Int64 = 0
        var maxIssued = Int64.min
        for step in 0..<5000 {
            let issue = first.next(nowMs: now + Int64(step / 10))
            if let r = issue.reservationToPersistMs { persisted = r }
            maxIssued = max(maxIssued, issue.id)
        }
        #expect(persisted >= MessageIdGenerator.decompose(maxIssued).timestampMs)
        var second = MessageIdGenerator(workerId: 0, persistedReservationMs: persisted, reservationWindowMs: 1000)
        let afterRestart = second.next(nowMs: now - 3_600_000)
        #expect(afterRestart.id > maxIssued)
        #expect(afterRestart.reservationToPersistMs != nil)
    }

    @Test func reservationIsRequestedOncePerWindow() {
        var ids = MessageIdGenerator(workerId: 0, persistedReservationMs: 0, reservationWindowMs: 1000)
        var requests = 0
        for ms in 0..<5000 where ids.next(nowMs: now + Int64(ms)).reservationToPersistMs != nil { requests += 1 }
        #expect(requests == 5)
    }

    /// A reservation that could not be persisted is asked for again by the next id, and only a
    /// persisted one counts as durable (a restart starts above the durable one).
    @Test func aFailedReservationIsAskedForAgain() {
        var ids = MessageIdGenerator(workerId: 1, persistedReservationMs: 0, reservationWindowMs: 1000)
        let first = ids.next(nowMs: 1_795_000_000_000)
        let asked = try! #require(first.reservationToPersistMs)
        ids.reservationFailed(asked)
        #expect(ids.durableUntilMs == 0)
        let second = ids.next(nowMs: 1_795_000_000_000)
        #expect(second.reservationToPersistMs != nil, "the next id asks for a reservation again")
        ids.reservationPersisted(second.reservationToPersistMs!)
        #expect(ids.durableUntilMs == second.reservationToPersistMs)
        #expect(ids.next(nowMs: 1_795_000_000_001).reservationToPersistMs == nil, "covered now")
    }
}
