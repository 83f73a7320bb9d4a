import ProtocolCore
import Sim

/// Drives a SimZooKeeper by hand on a virtual clock: deliveries run in time order, ties in the
/// order they were scheduled (as the simulator's event queue does).
final class ZKHarness {
    private struct Pending {
        var at: Int64
        var seq: Int
        var run: () -> Void
    }

    private(set) var nowNs: Int64 = 0
    private var pending: [Pending] = []
    private var seq = 0
    /// Every event of every session, with its time: what determinism is judged on.
    private(set) var journal: [String] = []
    private(set) var zk: SimZooKeeper!

    init(latencyNs: Int64 = 1_000_000) {
        zk = SimZooKeeper(latencyNs: latencyNs) { [unowned self] delayNs, deliver in
            pending.append(Pending(at: nowNs + delayNs, seq: seq, run: deliver))
            seq += 1
        }
    }

    var now: Instant { Instant(nanoseconds: nowNs) }

    func open(_ name: String, timeoutMs: Int64 = 4_000) -> ZKClient {
        let client = ZKClient(name: name)
        client.session = zk.openSession(timeoutMs: timeoutMs) { [weak self, weak client] event in
            guard let self, let client else { return }
            client.events.append(event)
            client.times.append(nowNs)
            journal.append("\(nowNs) \(name) \(event)")
        }
        run()
        return client
    }

    /// Runs every delivery due by `nanoseconds` (all of them when nil), then sets the clock there.
    func run(untilNs nanoseconds: Int64? = nil) {
        while let index = nextIndex(), nanoseconds.map({ pending[index].at <= $0 }) ?? true {
            let next = pending.remove(at: index)
            nowNs = max(nowNs, next.at)
            next.run()
        }
        if let nanoseconds { nowNs = max(nowNs, nanoseconds) }
    }

    private func nextIndex() -> Int? {
        pending.indices.min { (pending[$0].at, pending[$0].seq) < (pending[$1].at, pending[$1].seq) }
    }

    /// Submits `request`, runs every delivery, and answers the reply.
    func ask(_ client: ZKClient, _ request: CoordinationRequest) -> CoordinationReply? {
        let tag = client.send(request)
        run()
        return client.reply(tag)
    }
}

/// One session and everything it heard.
final class ZKClient {
    let name: String
    var session: SimZKSession!
    var events: [CoordinationEvent] = []
    /// When each event arrived (virtual nanoseconds).
    var times: [Int64] = []
    private var nextTag: UInt64 = 1

    init(name: String) { self.name = name }

    func send(_ request: CoordinationRequest) -> UInt64 {
        let tag = nextTag
        nextTag += 1
        session.submit(request, tag: tag)
        return tag
    }

    func reply(_ tag: UInt64) -> CoordinationReply? {
        for case .reply(let t, let reply) in events where t == tag { return reply }
        return nil
    }

    var watchEvents: [WatchEvent] { events.compactMap { if case .watch(let w) = $0 { w } else { nil } } }
    var states: [SessionState] { events.compactMap { if case .session(let s) = $0 { s } else { nil } } }
}
