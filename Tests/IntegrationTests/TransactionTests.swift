import Foundation
import MetaQClient
import ProcessHarness
import ProtocolCore
import Runtime
import Testing

/// Transactions against a real `metaq-server --local` (reference §4): the wire, byte for byte, then
/// the Swift API and the `metaq` tool. A broker handles one connection's requests in order, so
/// every check waits for an answer, never for time.
@Suite("Transactions against a real broker (reference §4)", .serialized)
struct TransactionTests {
    static let session = "127.0.0.1-1700000000000-1"

    func withBroker(_ body: (BrokerProcess) async throws -> Void) async throws {
        let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-tx")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try BrokerProcess(directory: directory, config: LocalBrokerTests.config)
        defer { broker.stopHard() }
        try broker.start()
        try await body(broker)
    }

    /// Sends `request` raw and returns the broker's answer re-encoded (a decoded frame encodes to
    /// the bytes it came from), or "none" when nothing came.
    func ask(_ client: RawClient, _ request: String) throws -> String {
        try client.sendAll(Array(request.utf8))
        guard let frame = try client.receive() else { return "none" }
        return String(decoding: frame.encoded(), as: UTF8.self)
    }

    /// `result 500 <len> <op>␍␊<text>` exactly.
    func refusal(_ text: String, _ opaque: Int32) -> String {
        "result 500 \(text.utf8.count) \(opaque)\r\n\(text)"
    }

    /// The bodies of `test`-`partition` as text, in offset order.
    func stored(_ broker: BrokerProcess, partition: Int32 = 0) throws -> [String] {
        try broker.readAll(partition: partition).sorted { $0.key < $1.key }.map { String(decoding: $0.value.data, as: UTF8.self) }
    }

    /// §4.2/§1.4.1: BEGIN `result 200 0`, a put in the transaction `<msgId> 0 -1` and not readable,
    /// COMMIT `result 200 0` and then readable with the put's msgId; a rolled-back transaction is
    /// never readable and its key is gone afterwards.
    @Test func localCommitIsVisibleOnlyAfterCommitAndRollbackNever() async throws {
        try await withBroker { broker in
            let client = try RawClient(port: broker.port)
            let k1 = "TX:\(Self.session):1"
            #expect(try ask(client, "transaction \(k1) \(Self.session) BEGIN 10 -100\r\n") == "result 200 0 -100\r\n")
            let put = try ask(client, "put test 0 5 0 907060870 \(k1) -99\r\nhello")
            let fields = put.split(separator: "\r\n").last?.split(separator: " ") ?? []
            #expect(put.hasPrefix("result 200 ") && fields.count == 3 && fields[1] == "0" && fields[2] == "-1", "\(put)")
            #expect(try stored(broker).isEmpty, "nothing is visible before COMMIT")
            #expect(try ask(client, "transaction \(k1) \(Self.session) COMMIT_ONE_PHASE -98\r\n") == "result 200 0 -98\r\n")
            let visible = try broker.readAll(partition: 0)
            #expect(visible.values.map { String(decoding: $0.data, as: UTF8.self) } == ["hello"])
            #expect(visible.values.first.map { "\($0.id)" } == fields.first.map(String.init), "stored with the msgId the put answered")

            let k2 = "TX:\(Self.session):2"
            #expect(try ask(client, "transaction \(k2) \(Self.session) BEGIN -97\r\n") == "result 200 0 -97\r\n")
            #expect(try ask(client, "put test 0 5 0 -1 \(k2) -96\r\nworld").hasPrefix("result 200 "))
            #expect(try ask(client, "transaction \(k2) \(Self.session) ROLLBACK -95\r\n") == "result 200 0 -95\r\n")
            #expect(try ask(client, "transaction \(k2) \(Self.session) COMMIT_ONE_PHASE -94\r\n")
                    == refusal("Local transaction '\(k2)' has not been started.", -94))
            #expect(try stored(broker) == ["hello"], "the rolled-back message never appears")
        }
    }

    /// Every row of §4.2's table, with the exact texts.
    @Test func everyRowOfTheWireTableAnswersAsTheReferenceSays() async throws {
        try await withBroker { broker in
            let client = try RawClient(port: broker.port)
            let s = Self.session
            // END: no answer — the next frame is the answer to the version sent after it.
            try client.sendAll(Array("transaction TX:\(s):50 \(s) END -1\r\nversion -2\r\n".utf8))
            #expect(try client.receive()?.opaque == -2, "END is not answered")

            let local = "TX:\(s):3"
            #expect(try ask(client, "transaction \(local) \(s) BEGIN -3\r\n") == "result 200 0 -3\r\n")
            #expect(try ask(client, "transaction \(local) \(s) PREPARE -4\r\n")
                    == refusal("XAException:code=-3,msg=Prepare not implemented on Local Transactions.", -4))
            #expect(try ask(client, "put test -1 5 0 907060870 \(local) -5\r\nhello")
                    == refusal("Invalid partition for transaction command:-1", -5))
            #expect(try ask(client, "put test 0 5 0 907060870 TX:\(s):77 -6\r\nhello")
                    == refusal("Local transaction 'TX:\(s):77' has not been started.", -6))
            #expect(try ask(client, "transaction TX:\(s):99 \(s) COMMIT_ONE_PHASE -7\r\n")
                    == refusal("Local transaction 'TX:\(s):99' has not been started.", -7))
            let unknownXA = "XID:1:ff:01:XAMessageProducer-it"
            #expect(try ask(client, "transaction \(unknownXA) \(s) COMMIT_TWO_PHASE XAMessageProducer-it -8\r\n")
                    == refusal("XAException:code=-4,msg=XA transaction '\(unknownXA)' has not been started.", -8))

            // XA without work: PREPARE votes read-only (3) and finishes it.
            let idle = "XID:1:0a:01:XAMessageProducer-it"
            #expect(try ask(client, "transaction \(idle) \(s) BEGIN XAMessageProducer-it -9\r\n") == "result 200 0 -9\r\n")
            #expect(try ask(client, "transaction \(idle) \(s) PREPARE XAMessageProducer-it -10\r\n") == "result 200 1 -10\r\n3")

            // XA with work: two-phase commit before prepare is a protocol error; PREPARE votes 0.
            let busy = "XID:1:0b:01:XAMessageProducer-it"
            #expect(try ask(client, "transaction \(busy) \(s) BEGIN XAMessageProducer-it -11\r\n") == "result 200 0 -11\r\n")
            #expect(try ask(client, "put test 1 5 0 907060870 \(busy) -12\r\nhello").hasSuffix(" 1 -1"))
            try client.sendAll(Array("transaction \(busy) \(s) END XAMessageProducer-it -13\r\n".utf8))
            #expect(try ask(client, "transaction \(busy) \(s) COMMIT_TWO_PHASE XAMessageProducer-it -14\r\n")
                    == refusal("XAException:code=-6,msg=Cannot do 2 phase commit if the transaction has not been prepared.", -14))
            #expect(try ask(client, "transaction \(busy) \(s) PREPARE XAMessageProducer-it -15\r\n") == "result 200 1 -15\r\n0")

            // RECOVER: the prepared keys of the resource asked for (all without one), joined by CRLF.
            #expect(try ask(client, "transaction null \(s) RECOVER XAMessageProducer-it -16\r\n")
                    == "result 200 \(busy.utf8.count) -16\r\n\(busy)")
            #expect(try ask(client, "transaction null \(s) RECOVER XAMessageProducer-other -17\r\n") == "result 200 0 -17\r\n")
            #expect(try ask(client, "transaction \(busy) \(s) FORGET XAMessageProducer-it -18\r\n") == "result 200 0 -18\r\n")
            #expect(try ask(client, "transaction \(busy) \(s) ROLLBACK XAMessageProducer-it -19\r\n") == "result 200 0 -19\r\n")
            #expect(try ask(client, "transaction null \(s) RECOVER -20\r\n") == "result 200 0 -20\r\n")
            #expect(try stored(broker, partition: 1).isEmpty)
        }
    }

    /// §4.5: a prepared XA transaction survives SIGKILL; after the restart RECOVER lists it (also
    /// `metaq tx list`), its messages stay invisible, and a COMMIT from a new connection (here
    /// `metaq tx commit`) makes them visible.
    @Test func preparedXATransactionSurvivesSIGKILLAndCommitsAfterRecover() async throws {
        try await withBroker { first in
            let s = Self.session
            let xid = "XID:7:c0ffee:02:XAMessageProducer-it"
            do {
                let client = try RawClient(port: first.port)
                #expect(try ask(client, "transaction \(xid) \(s) BEGIN XAMessageProducer-it -1\r\n") == "result 200 0 -1\r\n")
                #expect(try ask(client, "put test 0 3 0 -1 \(xid) -2\r\none").hasSuffix(" 0 -1"))
                #expect(try ask(client, "put test 0 3 0 -1 \(xid) -3\r\ntwo").hasSuffix(" 0 -1"))
                try client.sendAll(Array("transaction \(xid) \(s) END XAMessageProducer-it -4\r\n".utf8))
                #expect(try ask(client, "transaction \(xid) \(s) PREPARE XAMessageProducer-it -5\r\n") == "result 200 1 -5\r\n0")
            }
            first.stopHard()
            let broker = try BrokerProcess(directory: first.directory, config: LocalBrokerTests.config, port: first.port)
            defer { broker.stopHard() }
            try broker.start()
            let client = try RawClient(port: broker.port)
            #expect(try ask(client, "transaction null \(s) RECOVER XAMessageProducer-it -6\r\n")
                    == "result 200 \(xid.utf8.count) -6\r\n\(xid)")
            #expect(try stored(broker).isEmpty, "prepared is not committed")

            let listed = try broker.tool(["tx", "list"])
            #expect(listed.status == 0 && listed.output == "\(xid)\n", "\(listed)")
            let committed = try broker.tool(["tx", "commit", xid])
            #expect(committed.status == 0 && committed.output == "committed \(xid)\n", "\(committed)")
            #expect(try stored(broker) == ["one", "two"])
            #expect(try ask(client, "transaction null \(s) RECOVER -7\r\n") == "result 200 0 -7\r\n")
            let again = try broker.tool(["tx", "rollback", xid])
            #expect(again.status == 1, "a finished transaction is unknown to the broker")
        }
    }

    /// The Swift API (§4.1): keys `TX:<sessionId>:<n>` from 1; commit when the body returns, the
    /// messages then visible; rollback when it throws, the error rethrown and nothing visible.
    @Test func producerTransactionCommitsOnReturnAndRollsBackOnThrow() async throws {
        let env = try DirectBroker("metaq-tx-api", config: DirectBroker.onePartition)
        defer { env.stop() }
        let producer = env.client.producer()
        let session = producer.sessionId
        #expect(session.split(separator: "-").count == 3, "<localIP>-<startTimeMillis>-<seq>: \(session)")
        // The timeout travels on BEGIN; 60 s (the broker's cap) because a busy CI machine once took
        // more than 10 s between two sends and the broker rightly rolled the transaction back.
        let (key, results) = try await producer.transaction(timeout: .seconds(60)) { tx in
            (tx.id, [try await tx.send(topic: "test", data: Array("a".utf8)), try await tx.send(topic: "test", data: Array("b".utf8))])
        }
        #expect(key == "TX:\(session):1")
        #expect(results.allSatisfy { $0.partition.partition == 0 && $0.transactionId == key })
        #expect(try stored(env.broker) == ["a", "b"])

        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await producer.transaction { tx in
                #expect(tx.id == "TX:\(session):2")
                try await tx.send(topic: "test", data: Array("c".utf8))
                throw Abort()
            }
        }
        // A later transaction on the same connection is committed: the rollback was answered
        // before it, so "c" is certainly not stored.
        _ = try await producer.transaction { tx in try await tx.send(topic: "test", data: Array("d".utf8)) }
        #expect(try stored(env.broker) == ["a", "b", "d"])
        await env.client.shutdown()
    }

    /// The XA resource (§4.2, §4.5): start, send, end, prepare; the broker is SIGKILLed and
    /// restarted; `recover()` lists the branch and `commit(_:onePhase: false)` makes its messages
    /// visible. Unknown branches come back as XA errors with the broker's code.
    @Test func xaResourcePrepareAndCommitAcrossABrokerRestart() async throws {
        let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-tx-xa")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try BrokerProcess(directory: directory, config: DirectBroker.onePartition)
        defer { first.stopHard() }
        try first.start()
        let client = try MetaQClient(servers: ["meta://127.0.0.1:\(first.port)"], logger: DirectBroker.silent)
        let producer = client.producer()
        let xa = try await producer.xaResource(uniqueQualifier: "XAMessageProducer-it")
        let xid = Xid(formatId: 1, globalTransactionId: [0xab, 0xcd], branchQualifier: [0x01])
        try await xa.start(xid)
        try await xa.send(topic: "test", data: Array("x".utf8))
        try await xa.send(topic: "test", data: Array("y".utf8))
        await #expect(throws: XAError.self) { try await xa.prepare(xid) }  // still associated: end first
        try await xa.end(xid)
        #expect(try await xa.prepare(xid) == .ok)

        first.stopHard()
        let broker = try BrokerProcess(directory: directory, config: DirectBroker.onePartition, port: first.port)
        defer { broker.stopHard() }
        try broker.start()
        #expect(try await xa.recover() == [xid])
        #expect(try stored(broker).isEmpty)
        try await xa.commit(xid, onePhase: false)
        #expect(try stored(broker) == ["x", "y"])
        #expect(try await xa.recover() == [])
        do {
            try await xa.commit(xid, onePhase: false)
            Issue.record("a committed branch committed again")
        } catch {
            #expect(error.code == XAError.noSuchTransaction, "\(error)")
        }
        await client.shutdown()
    }

    /// `metaq produce --transaction-size 2`: two transactions, each reported when committed;
    /// `metaq bench produce --transaction-size` counts committed messages.
    @Test func toolProducesInTransactionsAndBenchCountsCommittedMessages() async throws {
        try await withBroker { broker in
            let produced = try broker.tool(["produce", "test", "--transaction-size", "2", "--partition", "1", "a", "b", "c"])
            let lines = produced.output.split(separator: "\n").map(String.init)
            #expect(produced.status == 0 && lines.count == 5, "\(produced)")
            #expect(lines.filter { $0.hasSuffix(" 1 -1") }.count == 3)
            #expect(lines.filter { $0.hasPrefix("committed TX:") }.map { $0.split(separator: " ").last! } == ["messages", "messages"])
            #expect(lines[2].hasSuffix(":1: 2 messages") && lines[4].hasSuffix(":2: 1 messages"))
            #expect(try stored(broker, partition: 1) == ["a", "b", "c"])

            let bench = try broker.tool(["bench", "produce", "--transaction-size", "10", "--count", "60", "--connections", "2",
                                         "--message-size", "8", "--partitions", "1"])
            #expect(bench.status == 0 && bench.output.contains("produce: 60 msgs"), "\(bench.output)")
            #expect(try broker.readAll(partition: 0).count == 60)
        }
    }
}
