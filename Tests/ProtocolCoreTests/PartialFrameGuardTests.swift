import Testing
@testable import ProtocolCore

private let a = ConnectionID(1), b = ConnectionID(2), c = ConnectionID(3), d = ConnectionID(4)
private let t0 = Instant.milliseconds(1_000)

/// The shared budget for partly received frames (DESIGN.md §8, `maxPartialFrameBytes`).
@Suite("Partial-frame budget")
struct PartialFrameBudgetTests {
    @Test func reservationsUpToTheCapacityAreGranted() {
        var budget = PartialFrameBudget(capacityBytes: 100)
        #expect(budget.reserve(60, for: a) == .granted)
        #expect(budget.reserve(40, for: b) == .granted)
        #expect(budget.reservedBytes == 100)
        #expect(budget.reserve(1, for: c) == .waiting)
        #expect(budget.reservation(of: a) == 60 && budget.reservation(of: c) == nil)
        #expect(budget.isWaiting(c) && budget.waitingCount == 1)
    }

    /// First come, first served: a small frame does not overtake a large one waiting before it.
    @Test func theLineIsFirstComeFirstServed() {
        var budget = PartialFrameBudget(capacityBytes: 100)
        #expect(budget.reserve(90, for: a) == .granted)
        #expect(budget.reserve(50, for: b) == .waiting)
        #expect(budget.reserve(5, for: c) == .waiting, "fits, but b came first")
        #expect(budget.release(a) == [b, c])
        #expect(budget.reservedBytes == 55 && budget.waitingCount == 0)
    }

    @Test func releaseGrantsOnlyWhatFits() {
        var budget = PartialFrameBudget(capacityBytes: 100)
        _ = budget.reserve(50, for: a)
        _ = budget.reserve(50, for: b)
        _ = budget.reserve(60, for: c)
        _ = budget.reserve(10, for: d)
        #expect(budget.release(a) == [], "c needs 60, 50 are free")
        #expect(budget.release(b) == [c, d])
        #expect(budget.reservedBytes == 70)
    }

    /// A connection that closes while in line leaves it; the ones behind it move up.
    @Test func leavingTheLine() {
        var budget = PartialFrameBudget(capacityBytes: 100)
        _ = budget.reserve(100, for: a)
        _ = budget.reserve(80, for: b)
        _ = budget.reserve(20, for: c)
        #expect(budget.release(b) == [])
        #expect(!budget.isWaiting(b) && budget.waitingCount == 1)
        #expect(budget.release(a) == [c])
        #expect(budget.release(d) == [], "nothing to release")
        #expect(budget.release(c) == [] && budget.reservedBytes == 0)
    }

    /// A frame larger than the whole budget still gets through, alone, so it cannot wait forever.
    @Test func anOversizedFrameIsGrantedWhenNothingElseIsReserved() {
        var budget = PartialFrameBudget(capacityBytes: 100)
        _ = budget.reserve(10, for: a)
        #expect(budget.reserve(500, for: b) == .waiting)
        #expect(budget.release(a) == [b])
        #expect(budget.reservedBytes == 500)
        #expect(budget.reserve(1, for: c) == .waiting)
    }
}

/// The partial-frame guard: budget and timeout over connections (DESIGN.md §8).
@Suite("Partial-frame guard")
struct PartialFrameGuardTests {
    func afterRead(_ guard_: inout PartialFrameGuard, _ connection: ConnectionID, completed: Int = 0,
                   _ partial: FrameDecoder.PartialFrame, at now: Instant = t0) -> [PartialFrameGuard.Action] {
        var actions: [PartialFrameGuard.Action] = []
        guard_.afterRead(connection, completedFrames: completed, partial: partial, now: now, into: &actions)
        return actions
    }

    /// Holding a body that does not fit pauses the connection; the frame ahead finishing resumes it.
    @Test func aFrameThatDoesNotFitWaitsUnread() {
        var g = PartialFrameGuard(budgetBytes: 100, timeoutMs: 1000)
        #expect(afterRead(&g, a, .body(length: 80)) == [])
        #expect(afterRead(&g, b, .body(length: 80)) == [.pause(b)])
        #expect(afterRead(&g, b, .body(length: 80)) == [], "bytes already on their way while pausing")
        #expect(afterRead(&g, a, completed: 1, .none) == [.resume(b)])
        #expect(g.budget.reservation(of: b) == 80 && g.budget.reservation(of: a) == nil)
        #expect(afterRead(&g, b, completed: 1, .none) == [])
        #expect(g.budget.reservedBytes == 0 && g.timedConnectionCount == 0)
    }

    /// A frame completed and the next one started in the same read: the next reserves anew, in line.
    @Test func theNextFrameReservesAgain() {
        var g = PartialFrameGuard(budgetBytes: 100, timeoutMs: 1000)
        _ = afterRead(&g, a, .body(length: 60))
        #expect(afterRead(&g, b, .body(length: 60)) == [.pause(b)])
        #expect(afterRead(&g, a, completed: 2, .body(length: 70)) == [.resume(b), .pause(a)])
        #expect(g.budget.reservation(of: b) == 60 && g.budget.isWaiting(a))
    }

    /// A paused connection whose frame completes from bytes already read leaves the line and reads on.
    @Test func aPausedFrameThatCompletesResumes() {
        var g = PartialFrameGuard(budgetBytes: 100, timeoutMs: 1000)
        _ = afterRead(&g, a, .body(length: 100))
        _ = afterRead(&g, b, .body(length: 10))
        #expect(afterRead(&g, b, completed: 1, .line) == [.resume(b)])
        #expect(!g.budget.isWaiting(b) && g.timedConnectionCount == 2)
    }

    @Test func closingReleasesTheBudget() {
        var g = PartialFrameGuard(budgetBytes: 100, timeoutMs: 1000)
        _ = afterRead(&g, a, .body(length: 100))
        _ = afterRead(&g, b, .body(length: 50))
        _ = afterRead(&g, c, .body(length: 50))
        var actions: [PartialFrameGuard.Action] = []
        g.closed(b, now: t0, into: &actions)
        #expect(actions == [], "b only waited")
        g.closed(a, now: t0, into: &actions)
        #expect(actions == [.resume(c)])
        #expect(g.budget.reservedBytes == 50)
    }

    /// Timeouts: a connection in the middle of a frame that sends nothing for `timeoutMs` is
    /// closed; each byte restarts its clock; one between frames is never timed out.
    @Test func aConnectionSilentMidFrameIsClosed() {
        var g = PartialFrameGuard(budgetBytes: 100, timeoutMs: 1000)
        _ = afterRead(&g, a, .line, at: t0)
        _ = afterRead(&g, b, .body(length: 10), at: t0)
        _ = afterRead(&g, c, .body(length: 10), at: t0)
        _ = afterRead(&g, c, completed: 1, .none, at: t0)
        #expect(g.nextDeadline() == t0.adding(milliseconds: 1000))
        _ = afterRead(&g, b, .body(length: 10), at: t0.adding(milliseconds: 600))
        var actions: [PartialFrameGuard.Action] = []
        g.expire(now: t0.adding(milliseconds: 999), into: &actions)
        #expect(actions == [])
        g.expire(now: t0.adding(milliseconds: 1000), into: &actions)
        #expect(actions == [.close(a)])
        #expect(g.nextDeadline() == t0.adding(milliseconds: 1600))
        g.expire(now: t0.adding(milliseconds: 5000), into: &actions)
        #expect(actions == [.close(a), .close(b)])
        #expect(g.nextDeadline() == nil, "c is between frames: never timed out")
    }

    /// A connection waiting for budget is not timed out; its clock starts when it is read again.
    @Test func aPausedConnectionIsNotTimedOut() {
        var g = PartialFrameGuard(budgetBytes: 100, timeoutMs: 1000)
        _ = afterRead(&g, a, .body(length: 100), at: t0)
        _ = afterRead(&g, b, .body(length: 100), at: t0)
        var actions: [PartialFrameGuard.Action] = []
        g.expire(now: t0.adding(milliseconds: 1000), into: &actions)
        #expect(actions == [.close(a)])
        actions = []
        g.closed(a, now: t0.adding(milliseconds: 1001), into: &actions)
        #expect(actions == [.resume(b)])
        #expect(g.nextDeadline() == t0.adding(milliseconds: 2001))
    }
}

/// The decoder's view of a partial frame, which the guard is fed with.
@Suite("Frame decoder: partial frames")
struct FrameDecoderPartialFrameTests {
    @Test func partialFrameKinds() throws {
        var decoder = FrameDecoder()
        #expect(decoder.partialFrame == .none)
        decoder.feed(bytes("put t 0 5 0 1"))
        #expect(try decoder.next() == nil)
        #expect(decoder.partialFrame == .line)
        decoder.feed(bytes("\r\n"))
        #expect(try decoder.next() == nil)
        #expect(decoder.partialFrame == .body(length: 5), "header read, no body byte yet")
        decoder.feed(bytes("hel"))
        #expect(try decoder.next() == nil)
        #expect(decoder.partialFrame == .body(length: 5))
        decoder.feed(bytes("lo"))
        #expect(try decoder.next() != nil)
        #expect(decoder.partialFrame == .none)
    }
}

/// Refusals logged once per episode (accept failures, the connection limit).
@Suite("Refusal episodes")
struct RefusalEpisodeTests {
    @Test func anEpisodeStartsAtTheFirstRefusalAndEndsAtTheFirstSuccess() {
        var episode = RefusalEpisode()
        #expect(episode.succeeded() == nil)
        #expect(episode.refused() == true)
        #expect(episode.refused() == false)
        #expect(episode.refused() == false)
        #expect(episode.isActive)
        #expect(episode.succeeded() == 3)
        #expect(episode.succeeded() == nil && !episode.isActive)
        #expect(episode.refused() == true, "a new episode")
    }
}
