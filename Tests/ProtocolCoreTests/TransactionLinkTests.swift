import Testing
@testable import ProtocolCore

/// The client's transactional connection fed by hand (reference §4.1, §4.2): frames out, replies
/// by opaque, END unanswered, and a local transaction never carried over a second connection.
@Suite("Transaction link (reference §4.2)")
struct TransactionLinkTests {
    func at(_ ms: Int64) -> Instant { .milliseconds(ms) }
    let session = "10.0.0.1-1700000000000-1"
    let key = "TX:10.0.0.1-1700000000000-1:1"

    func command(_ type: TransactionType, key: String? = nil, timeout: Int32? = nil, qualifier: String? = nil) -> TransactionLink.Request {
        .command(type, key: key ?? self.key, sessionId: session, timeoutSeconds: timeout, uniqueQualifier: qualifier)
    }

    func put(_ data: String = "hello", key: String? = nil) -> TransactionLink.Request {
        .put(topic: "test", partition: 0, flag: 0, payload: bytes(data), transactionKey: key ?? self.key)
    }

    func frames(_ actions: [TransactionLink.Action]) -> [String] {
        actions.compactMap { if case .sendFrame(let f) = $0 { return String(decoding: f.encoded(), as: UTF8.self) } else { return nil } }
    }

    func replies(_ actions: [TransactionLink.Action]) -> [UInt64: TransactionLink.Reply] {
        var out: [UInt64: TransactionLink.Reply] = [:]
        for case .completed(let id, let reply) in actions { out[id] = reply }
        return out
    }

    func answer(_ code: Int32, _ text: String, _ opaque: Int32) -> TransactionLink.Event {
        .frame(.result(ResultResponse(code: code, text: text, opaque: opaque)))
    }

    /// BEGIN (with the timeout, §4.2), a put carrying the key (the 8-token put of §1.4.1) and
    /// COMMIT_ONE_PHASE go out in submission order once connected; answers are matched by opaque.
    @Test func beginPutCommitGoOutInOrderWithTheKey() {
        var link = TransactionLink()
        var actions = link.handle(.submit(id: 1, command(.begin, timeout: 10)), now: at(0))
        #expect(actions.contains(.connect))
        actions = link.handle(.submit(id: 2, put()), now: at(1))
        actions += link.handle(.connected, now: at(2))
        let o = Int32.min
        #expect(frames(actions) == [
            "transaction \(key) \(session) BEGIN 10 \(o)\r\n",
            "put test 0 5 0 907060870 \(key) \(o + 1)\r\nhello",
        ])
        #expect(replies(link.handle(answer(200, "-1 0 -1", o + 1), now: at(3))) == [2: .answered(code: 200, text: "-1 0 -1")])
        #expect(replies(link.handle(answer(200, "", o), now: at(3))) == [1: .answered(code: 200, text: "")])
        actions = link.handle(.submit(id: 3, command(.commitOnePhase)), now: at(4))
        #expect(frames(actions) == ["transaction \(key) \(session) COMMIT_ONE_PHASE \(o + 2)\r\n"])
        #expect(link.openLocalTransactions == 0, "COMMIT ends the local scope")
    }

    /// §4.2: the broker never answers END, so it completes when written and holds no window slot;
    /// XA commands carry the unique qualifier.
    @Test func endIsWrittenWithoutAwaitingAnAnswer() {
        var link = TransactionLink()
        let xid = "XID:1:0a:0b:XAMessageProducer-h"
        _ = link.handle(.submit(id: 1, command(.end, key: xid, qualifier: "XAMessageProducer-h")), now: at(0))
        let actions = link.handle(.connected, now: at(1))
        #expect(frames(actions) == ["transaction \(xid) \(session) END XAMessageProducer-h \(Int32.min)\r\n"])
        #expect(replies(actions) == [1: .written])
        #expect(!actions.contains { if case .scheduleTick = $0 { true } else { false } }, "nothing left to time out")
    }

    /// A local transaction belongs to the connection its BEGIN went out on: after that connection
    /// closed (the broker rolled the transaction back), its later requests are refused here instead
    /// of reaching a broker that no longer knows the key — and a new BEGIN of another key works.
    @Test func requestsOfALocalTransactionNeverCrossToANewConnection() {
        var link = TransactionLink()
        _ = link.handle(.submit(id: 1, command(.begin)), now: at(0))
        _ = link.handle(.connected, now: at(1))
        _ = link.handle(answer(200, "", Int32.min), now: at(2))
        _ = link.handle(.connectionLost, now: at(3))
        var actions = link.handle(.submit(id: 2, put()), now: at(4))
        #expect(actions.contains(.connect))
        actions = link.handle(.submit(id: 3, command(.begin, key: "TX:\(session):2")), now: at(5))
        actions += link.handle(.connected, now: at(6))
        #expect(replies(actions) == [2: .notSent(.scopeLost)])
        #expect(frames(actions) == ["transaction TX:\(session):2 \(session) BEGIN \(Int32.min + 1)\r\n"])
        #expect(replies(link.handle(.submit(id: 4, command(.rollback)), now: at(7))) == [4: .notSent(.scopeLost)])
        #expect(link.openLocalTransactions == 1)
    }

    /// Requests on the wire when the connection closes are lost (their effect unknown); a timed-out
    /// request closes the connection so the broker rolls back what it carried.
    @Test func lostAndTimedOutRequests() {
        var link = TransactionLink(settings: .init(requestTimeoutMs: 100))
        _ = link.handle(.submit(id: 1, command(.begin)), now: at(0))
        _ = link.handle(.connected, now: at(1))
        #expect(replies(link.handle(.connectionLost, now: at(2))) == [1: .lost(.connectionLost)])
        _ = link.handle(.submit(id: 2, command(.begin, key: "TX:\(session):2")), now: at(3))
        _ = link.handle(.connected, now: at(4))
        let actions = link.handle(.tick, now: at(200))
        #expect(replies(actions) == [2: .lost(.timedOut)])
        #expect(actions.contains(.disconnect))
    }

    /// A failed connection attempt fails the queued requests at once (no waiting through back-off).
    @Test func failedConnectFailsQueuedRequests() {
        var link = TransactionLink()
        _ = link.handle(.submit(id: 1, command(.begin)), now: at(0))
        _ = link.handle(.submit(id: 2, put()), now: at(0))
        #expect(replies(link.handle(.connectionLost, now: at(1))) == [1: .notSent(.connectionFailed), 2: .notSent(.connectionFailed)])
    }

    /// Bounds: the queue and the open local transactions; a put must name its partition (-1 is
    /// refused in a transaction, §1.4.1).
    @Test func boundsAndInvalidRequests() {
        var link = TransactionLink(settings: .init(maxQueued: 1, maxOpenLocalTransactions: 1))
        _ = link.handle(.submit(id: 1, command(.begin)), now: at(0))
        #expect(replies(link.handle(.submit(id: 2, put()), now: at(0))) == [2: .notSent(.queueFull)])
        _ = link.handle(.connected, now: at(1))
        let second = link.handle(.submit(id: 3, command(.begin, key: "TX:\(session):2")), now: at(2))
        #expect(replies(second) == [3: .notSent(.tooManyOpen(1))])
        let bad = link.handle(.submit(id: 4, .put(topic: "test", partition: -1, flag: 0, payload: [], transactionKey: key)), now: at(3))
        guard case .notSent(.invalidRequest)? = replies(bad)[4] else {
            Issue.record("partition -1 went out: \(bad)")
            return
        }
    }
}

/// The pure rules of a local transaction on the client (§4.1).
@Suite("Local transaction rules (reference §4.1)")
struct LocalTransactionStateTests {
    /// Keys `TX:<sessionId>:<n>` with n from 1 per session, wrapping to 1 past Int32.max.
    @Test func keysAreNumberedFromOne() {
        var session = TransactionSession(localIP: "10.0.0.1", startTimeMs: 1_700_000_000_000, sequence: 3)
        let first = session.nextLocal().key
        let second = session.nextLocal().key
        #expect(first == "TX:10.0.0.1-1700000000000-3:1")
        #expect(second == "TX:10.0.0.1-1700000000000-3:2")
    }

    /// The first send binds the broker and needs BEGIN; later sends choose only among that
    /// broker's partitions, and a topic it does not hold is refused with a clear text.
    @Test func theFirstSendBindsTheBroker() throws {
        var tx = LocalTransactionState(id: .local(sessionId: "s", number: 1))
        let all = [BrokerPartition(brokerId: 0, partition: 0), BrokerPartition(brokerId: 1, partition: 0), BrokerPartition(brokerId: 1, partition: 1)]
        let name: (Int) -> String = { "b\($0)" }
        let before = try tx.candidates(topic: "t", all, brokerName: name).get()
        #expect(before == all)
        let needsBegin = tx.bind(all[2])
        #expect(needsBegin)
        let after = try tx.candidates(topic: "t", all, brokerName: name).get()
        #expect(after == [all[1], all[2]])
        let again = tx.bind(all[1])
        #expect(!again, "BEGIN only once")
        guard case .failure(let refusal) = tx.candidates(topic: "u", [all[0]], brokerName: { "b\($0)" }) else {
            Issue.record("a topic without a partition on the bound broker was accepted")
            return
        }
        #expect(refusal.description.contains("bound to broker b1"))
        let broker = tx.finish()
        #expect(broker == 1)
        #expect(tx.state == .finished)
    }

    /// Nothing sent: nothing to commit or roll back on the wire.
    @Test func anUnboundTransactionFinishesWithoutABroker() {
        var tx = LocalTransactionState(id: .local(sessionId: "s", number: 1))
        let broker = tx.finish()
        #expect(broker == nil)
    }

    /// The Java client reads XA errors with `code=(-?\d+),msg=(.*)` (§4.2).
    @Test func xaExceptionTextsAreParsed() {
        #expect(parseXAExceptionText("XAException:code=-3,msg=Prepare not implemented on Local Transactions.")! ==
                (-3, "Prepare not implemented on Local Transactions."))
        #expect(parseXAExceptionText("XAException:code=104,msg=a,b") ?? (0, "") == (104, "a,b"))
        #expect(parseXAExceptionText("Local transaction 'TX:s:1' has not been started.") == nil)
        #expect(parseXAExceptionText("XAException:code=x,msg=y") == nil)
    }
}
