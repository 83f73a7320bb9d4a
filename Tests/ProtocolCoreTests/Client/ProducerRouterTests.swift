import Testing
@testable import ProtocolCore

/// The producer's routing rules (reference §3.3), fed by hand: discovery backlog and its bound,
/// the discovery timeout, release in arrival order, `publish()` waits, shutdown.
@Suite("Producer router (reference §3.3)")
struct ProducerRouterTests {
    static func at(_ ms: Int64) -> Instant { Instant(nanoseconds: ms * 1_000_000) }
    static let wait = ProducerRouter.Wait(maxBacklog: 3, timeoutMs: 5_000)
    static let p0 = BrokerPartition(brokerId: 0, partition: 0)
    static let p1 = BrokerPartition(brokerId: 1, partition: 0)
    static let targets = [PublishDirectory.Target(partition: p1, uri: "meta://b:8123"),
                          PublishDirectory.Target(partition: p0, uri: "meta://a:8123")]

    static func send(_ router: inout ProducerRouter, _ id: UInt64, _ topic: String = "t",
                     wait: ProducerRouter.Wait = wait, at ms: Int64 = 0) -> [ProducerRouter.Action] {
        router.handle(.send(id: id, topic: topic, wait: wait), now: at(ms))
    }

    /// The first send of an unknown topic publishes it and waits with a deadline; later ones only wait.
    @Test func firstSendPublishesAndWaits() {
        var router = ProducerRouter()
        #expect(Self.send(&router, 1) == [.publish(topic: "t"), .scheduleTick(at: Self.at(5_000))])
        #expect(Self.send(&router, 2, at: 100) == [])
        #expect(router.waitingSends == 2)
        #expect(router.counters.discoveryWaits == 2)
    }

    /// Waiting sends are routed in arrival order when the partitions arrive (sorted), before any later send.
    @Test func releasesBacklogInOrder() {
        var router = ProducerRouter()
        _ = Self.send(&router, 1)
        _ = Self.send(&router, 2)
        _ = Self.send(&router, 3, "u")
        let sorted = [Self.p0, Self.p1]
        #expect(router.handle(.partitionsChanged(topic: "t", Self.targets), now: Self.at(10))
            == [.route(id: 1, topic: "t", partitions: sorted), .route(id: 2, topic: "t", partitions: sorted)])
        #expect(Self.send(&router, 4, at: 20) == [.route(id: 4, topic: "t", partitions: sorted)])
        #expect(router.waitingSends == 1)  // "u" still waits
        #expect(router.counters.routed == 3)
        // The backlog's deadline passing later fails nothing of "t".
        #expect(router.handle(.tick, now: Self.at(5_000)) == [.fail(id: 3, topic: "u", .discoveryTimedOut(ms: 5_000))])
    }

    /// The bound: `maxBacklog` sends wait, the next is refused (and counted); a later send after the
    /// backlog ends waits again.
    @Test func backlogBound() {
        var router = ProducerRouter()
        for id in UInt64(1)...3 { _ = Self.send(&router, id) }
        #expect(router.waitingSends == 3)
        #expect(Self.send(&router, 4) == [.fail(id: 4, topic: "t", .backlogFull(bound: 3))])
        #expect(router.waitingSends == 3)
        #expect(router.counters.backlogRefusals == 1)
        // A bound of 0 refuses at once but still publishes the topic.
        #expect(Self.send(&router, 5, "u", wait: .init(maxBacklog: 0, timeoutMs: 10))
            == [.publish(topic: "u"), .fail(id: 5, topic: "u", .backlogFull(bound: 0))])
    }

    /// At the deadline the whole backlog fails in order; not a millisecond before. The next send
    /// waits again with a new deadline (the topic is not published twice).
    @Test func discoveryTimeout() {
        var router = ProducerRouter()
        _ = Self.send(&router, 1)
        _ = Self.send(&router, 2, at: 4_000)
        #expect(router.handle(.tick, now: Self.at(4_999)) == [])
        #expect(router.handle(.tick, now: Self.at(5_000))
            == [.fail(id: 1, topic: "t", .discoveryTimedOut(ms: 5_000)), .fail(id: 2, topic: "t", .discoveryTimedOut(ms: 5_000))])
        #expect(router.waitingSends == 0)
        #expect(router.counters.discoveryTimeouts == 2)
        #expect(Self.send(&router, 3, at: 6_000) == [.scheduleTick(at: Self.at(11_000))])
    }

    /// A listed topic with no partition fails sends at once, waiting ones included; it does not wait.
    @Test func emptyListingFails() {
        var router = ProducerRouter()
        _ = Self.send(&router, 1)
        #expect(router.handle(.partitionsChanged(topic: "t", []), now: Self.at(1)) == [.fail(id: 1, topic: "t", .noPartition)])
        #expect(Self.send(&router, 2) == [.fail(id: 2, topic: "t", .noPartition)])
        #expect(router.counters.routed == 0)
    }

    /// `publish()` waits end when the topic is listed, at their own deadline, or at once if listed.
    @Test func topicWaiters() {
        var router = ProducerRouter()
        #expect(router.handle(.awaitTopic(waiter: 1, topic: "t", timeoutMs: 100), now: Self.at(0))
            == [.publish(topic: "t"), .scheduleTick(at: Self.at(100))])
        #expect(router.handle(.awaitTopic(waiter: 2, topic: "t", timeoutMs: 1_000), now: Self.at(0)) == [.scheduleTick(at: Self.at(1_000))])
        #expect(router.handle(.tick, now: Self.at(100)) == [.topicWaitEnded(waiter: 1, topic: "t")])
        #expect(router.handle(.partitionsChanged(topic: "t", Self.targets), now: Self.at(200)) == [.topicWaitEnded(waiter: 2, topic: "t")])
        #expect(router.handle(.awaitTopic(waiter: 3, topic: "t", timeoutMs: 100), now: Self.at(300)) == [.topicWaitEnded(waiter: 3, topic: "t")])
        #expect(router.handle(.tick, now: Self.at(1_000)) == [])
    }

    /// Shutdown fails every waiting send (in topic, then arrival order) and ends every wait; later
    /// sends fail at once; a later listing routes nothing.
    @Test func shutDownFailsBacklog() {
        var router = ProducerRouter()
        _ = Self.send(&router, 1, "u")
        _ = Self.send(&router, 2, "t")
        _ = Self.send(&router, 3, "u")
        _ = router.handle(.awaitTopic(waiter: 9, topic: "t", timeoutMs: 100), now: Self.at(0))
        #expect(router.handle(.shutDown, now: Self.at(1)) == [
            .fail(id: 2, topic: "t", .shutDown(wasWaiting: true)), .topicWaitEnded(waiter: 9, topic: "t"),
            .fail(id: 1, topic: "u", .shutDown(wasWaiting: true)), .fail(id: 3, topic: "u", .shutDown(wasWaiting: true))])
        #expect(router.waitingSends == 0 && router.isShutDown)
        #expect(Self.send(&router, 4) == [.fail(id: 4, topic: "t", .shutDown(wasWaiting: false))])
        #expect(router.handle(.partitionsChanged(topic: "t", Self.targets), now: Self.at(2)) == [])
        #expect(router.handle(.tick, now: Self.at(10_000)) == [])
        #expect(router.handle(.awaitTopic(waiter: 10, topic: "v", timeoutMs: 1), now: Self.at(3)) == [.topicWaitEnded(waiter: 10, topic: "v")])
    }

    /// A topic the directory reports without a send asking (another path published it) routes at once.
    @Test func listingWithoutAsking() {
        var router = ProducerRouter()
        #expect(router.handle(.partitionsChanged(topic: "t", Self.targets), now: Self.at(0)) == [])
        #expect(router.partitions(of: "t") == [Self.p0, Self.p1])
        #expect(Self.send(&router, 1) == [.route(id: 1, topic: "t", partitions: [Self.p0, Self.p1])])
    }
}
