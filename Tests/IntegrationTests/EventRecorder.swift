import Foundation
import ProtocolCore
import Synchronization

/// Collects what a coordination session sends to its sink, for assertions.
final class EventRecorder: Sendable {
    /// Guards the recorded events; the session's delivery queue appends, the test reads.
    private let events = Mutex<[CoordinationEvent]>([])

    /// The sink to hand to the session.
    var sink: @Sendable (CoordinationEvent) -> Void {
        { [self] event in events.withLock { $0.append(event) } }
    }

    var all: [CoordinationEvent] { events.withLock { $0 } }

    var sessionStates: [SessionState] {
        all.compactMap { if case .session(let state) = $0 { state } else { nil } }
    }

    var watches: [WatchEvent] {
        all.compactMap { if case .watch(let watch) = $0 { watch } else { nil } }
    }

    var replies: [(tag: UInt64, reply: CoordinationReply)] {
        all.compactMap { if case .reply(let tag, let reply) = $0 { (tag, reply) } else { nil } }
    }

    func reply(tag: UInt64) -> CoordinationReply? {
        replies.first { $0.tag == tag }?.reply
    }

    /// Waits until `condition` holds (polling), at most `timeoutMs`; whether it holds.
    @discardableResult
    func wait(timeoutMs: Int = 15_000, until condition: (EventRecorder) -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        while Date() < deadline {
            if condition(self) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition(self)
    }

    /// Waits for the reply to `tag`.
    func waitForReply(tag: UInt64, timeoutMs: Int = 15_000) async -> CoordinationReply? {
        await wait(timeoutMs: timeoutMs) { $0.reply(tag: tag) != nil }
        return reply(tag: tag)
    }
}
