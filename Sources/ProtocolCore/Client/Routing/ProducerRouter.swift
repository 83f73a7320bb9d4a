import DequeModule

/// A producer's routing rules (reference §3.3) as a pure machine: which partitions a topic's send
/// may go to, sends waiting (bounded) for a topic's partitions to be discovered, the discovery
/// timeout, `publish(topic)` waits, and shutdown. The partition selector (an application closure)
/// and the per-broker `ProducerMachine`s stay with the driver: a `.route` says "send this now to one
/// of these partitions". Sends of one topic are routed in the order they arrived, waiting ones
/// before any later one.
public struct ProducerRouter: Sendable {
    /// Sends waiting for a topic's first partition list: never empty while it exists.
    private struct Backlog: Sendable {
        var ids: Deque<UInt64>
        /// When the whole backlog fails (`.discoveryTimedOut`): set by its first send.
        var deadline: Instant
        var timeoutMs: Int64
    }

    private struct Waiter: Sendable {
        var id: UInt64
        var deadline: Instant
    }

    private enum TopicState: Sendable {
        /// The directory was asked; no partition list yet.
        case discovering(backlog: Backlog?, waiters: [Waiter])
        /// The directory's last list, sorted by (broker, partition); possibly empty.
        case listed([BrokerPartition])
    }

    private enum Lifecycle: Sendable {
        case running
        case shutDown
    }

    /// A deliberately broken variant the simulator's checkers must catch (DESIGN.md §6).
    /// Simulation only: production never passes one.
    public enum Canary: Equatable, Sendable {
        /// A shutdown drops the sends and `publish(topic)` waits that wait for discovery instead
        /// of answering them: their callers would wait for ever.
        case forgetWaitingOnShutDown
    }

    /// Simulation only; nil in production.
    public let canary: Canary?
    private var topics: [String: TopicState] = [:]
    private var lifecycle = Lifecycle.running
    /// Sends in all backlogs (checked against the backlogs by `checkInvariants`).
    private var waiting = 0
    public private(set) var counters = Counters()

    public init(canary: Canary? = nil) {
        self.canary = canary
    }

    /// Sends waiting for discovery, over all topics.
    public var waitingSends: Int { waiting }

    public var isShutDown: Bool { if case .shutDown = lifecycle { true } else { false } }

    /// The partitions last listed for `topic`, nil while it is not listed.
    public func partitions(of topic: String) -> [BrokerPartition]? {
        if case .listed(let partitions) = topics[topic] { partitions } else { nil }
    }

    public mutating func handle(_ event: Event, now: Instant) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .send(let id, let topic, let wait):
            send(id, topic, wait, now, &actions)
        case .partitionsChanged(let topic, let targets):
            listed(topic, targets.map(\.partition).sorted(), &actions)
        case .awaitTopic(let waiter, let topic, let timeoutMs):
            awaitTopic(waiter, topic, timeoutMs, now, &actions)
        case .tick:
            tick(now, &actions)
        case .shutDown:
            shutDown(&actions)
        }
        assert(checkInvariants())
        return actions
    }

    private mutating func send(_ id: UInt64, _ topic: String, _ wait: Wait, _ now: Instant, _ actions: inout [Action]) {
        guard case .running = lifecycle else {
            actions.append(.fail(id: id, topic: topic, .shutDown(wasWaiting: false)))
            return
        }
        switch topics[topic] {
        case .listed(let partitions):
            route(id, topic, partitions, &actions)
        case .discovering(var backlog, let waiters):
            guard (backlog?.ids.count ?? 0) < wait.maxBacklog else {
                counters.backlogRefusals += 1
                actions.append(.fail(id: id, topic: topic, .backlogFull(bound: wait.maxBacklog)))
                return
            }
            topics[topic] = nil  // keep the deque uniquely referenced while appending
            if backlog == nil {
                backlog = Backlog(ids: [], deadline: now.adding(milliseconds: wait.timeoutMs), timeoutMs: wait.timeoutMs)
                actions.append(.scheduleTick(at: backlog!.deadline))
            }
            backlog!.ids.append(id)
            waiting += 1
            counters.discoveryWaits += 1
            topics[topic] = .discovering(backlog: backlog, waiters: waiters)
        case nil:
            actions.append(.publish(topic: topic))
            guard wait.maxBacklog > 0 else {
                topics[topic] = .discovering(backlog: nil, waiters: [])
                counters.backlogRefusals += 1
                actions.append(.fail(id: id, topic: topic, .backlogFull(bound: wait.maxBacklog)))
                return
            }
            let deadline = now.adding(milliseconds: wait.timeoutMs)
            topics[topic] = .discovering(backlog: Backlog(ids: [id], deadline: deadline, timeoutMs: wait.timeoutMs), waiters: [])
            waiting += 1
            counters.discoveryWaits += 1
            actions.append(.scheduleTick(at: deadline))
        }
    }

    private mutating func route(_ id: UInt64, _ topic: String, _ partitions: [BrokerPartition], _ actions: inout [Action]) {
        if partitions.isEmpty {
            actions.append(.fail(id: id, topic: topic, .noPartition))
        } else {
            counters.routed += 1
            actions.append(.route(id: id, topic: topic, partitions: partitions))
        }
    }

    private mutating func listed(_ topic: String, _ partitions: [BrokerPartition], _ actions: inout [Action]) {
        let before = topics[topic]
        topics[topic] = .listed(partitions)
        guard case .discovering(let backlog, let waiters) = before else { return }
        for id in backlog?.ids ?? [] {
            waiting -= 1
            // A shut-down router has no backlog: these are running sends.
            route(id, topic, partitions, &actions)
        }
        for waiter in waiters { actions.append(.topicWaitEnded(waiter: waiter.id, topic: topic)) }
    }

    private mutating func awaitTopic(_ waiter: UInt64, _ topic: String, _ timeoutMs: Int64, _ now: Instant,
                                     _ actions: inout [Action]) {
        guard case .running = lifecycle else {
            actions.append(.topicWaitEnded(waiter: waiter, topic: topic))
            return
        }
        let deadline = now.adding(milliseconds: timeoutMs)
        switch topics[topic] {
        case .listed:
            actions.append(.topicWaitEnded(waiter: waiter, topic: topic))
            return
        case .discovering(let backlog, var waiters):
            waiters.append(Waiter(id: waiter, deadline: deadline))
            topics[topic] = .discovering(backlog: backlog, waiters: waiters)
        case nil:
            actions.append(.publish(topic: topic))
            topics[topic] = .discovering(backlog: nil, waiters: [Waiter(id: waiter, deadline: deadline)])
        }
        actions.append(.scheduleTick(at: deadline))
    }

    private mutating func tick(_ now: Instant, _ actions: inout [Action]) {
        for topic in topics.keys.sorted() {
            guard case .discovering(var backlog, var waiters) = topics[topic] else { continue }
            if let due = backlog, due.deadline <= now {
                for id in due.ids {
                    waiting -= 1
                    counters.discoveryTimeouts += 1
                    actions.append(.fail(id: id, topic: topic, .discoveryTimedOut(ms: due.timeoutMs)))
                }
                backlog = nil
            }
            if waiters.contains(where: { $0.deadline <= now }) {
                for waiter in waiters where waiter.deadline <= now {
                    actions.append(.topicWaitEnded(waiter: waiter.id, topic: topic))
                }
                waiters.removeAll { $0.deadline <= now }
            }
            topics[topic] = .discovering(backlog: backlog, waiters: waiters)
        }
    }

    private mutating func shutDown(_ actions: inout [Action]) {
        guard case .running = lifecycle else { return }
        lifecycle = .shutDown
        for topic in topics.keys.sorted() {
            guard case .discovering(let backlog, let waiters) = topics[topic] else { continue }
            for id in backlog?.ids ?? [] {
                waiting -= 1
                if canary != .forgetWaitingOnShutDown { actions.append(.fail(id: id, topic: topic, .shutDown(wasWaiting: true))) }
            }
            if canary != .forgetWaitingOnShutDown {
                for waiter in waiters { actions.append(.topicWaitEnded(waiter: waiter.id, topic: topic)) }
            }
            topics[topic] = .discovering(backlog: nil, waiters: [])
        }
    }

    /// The backlog count matches the backlogs; nothing waits once shut down; no backlog is empty.
    private func checkInvariants() -> Bool {
        var total = 0
        for state in topics.values {
            guard case .discovering(let backlog, let waiters) = state else { continue }
            if let backlog {
                guard !backlog.ids.isEmpty else { return false }
                total += backlog.ids.count
            }
            if isShutDown, backlog != nil || !waiters.isEmpty { return false }
        }
        return total == waiting && waiting >= 0
    }
}
