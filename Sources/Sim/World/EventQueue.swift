import ProtocolCore

/// The simulator's future: events ordered by virtual time, ties broken by the order they were
/// scheduled in, so a run never depends on anything but its seed. A binary heap.
struct EventQueue<Event> {
    private struct Entry {
        var at: Int64
        var seq: UInt64
        var event: Event
        func before(_ other: Entry) -> Bool { at != other.at ? at < other.at : seq < other.seq }
    }

    private var heap: [Entry] = []
    private var nextSeq: UInt64 = 0

    var count: Int { heap.count }
    var isEmpty: Bool { heap.isEmpty }

    mutating func schedule(_ event: Event, at nanoseconds: Int64) {
        heap.append(Entry(at: nanoseconds, seq: nextSeq, event: event))
        nextSeq += 1
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].before(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// The earliest event and its time.
    mutating func pop() -> (at: Int64, event: Event)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var first = parent
            if left < heap.count && heap[left].before(heap[first]) { first = left }
            if right < heap.count && heap[right].before(heap[first]) { first = right }
            if first == parent { break }
            heap.swapAt(parent, first)
            parent = first
        }
        return (top.at, top.event)
    }
}

/// The run's trace: every event folds into a 64-bit FNV-1a fingerprint (two runs of one seed
/// must agree on it), and the text lines are kept only when asked for (`--trace`).
public final class SimTrace {
    public private(set) var fingerprint: UInt64 = 0xcbf2_9ce4_8422_2325
    public private(set) var lines: [String]?
    let limit: Int

    init(keepLines: Bool, limit: Int = 200_000) {
        lines = keepLines ? [] : nil
        self.limit = limit
    }

    var keepsLines: Bool { lines != nil }

    func fold(_ value: UInt64) {
        var v = value
        for _ in 0..<8 {
            fingerprint ^= v & 0xFF
            fingerprint &*= 0x100_0000_01b3
            v >>= 8
        }
    }

    func fold(_ text: String) {
        for byte in text.utf8 {
            fingerprint ^= UInt64(byte)
            fingerprint &*= 0x100_0000_01b3
        }
    }

    /// A detail of the current event for `--trace` only (not folded: the event already was).
    func note(_ nowNs: Int64, _ text: @autoclosure () -> String) {
        if lines != nil, lines!.count < limit {
            let ms = nowNs / 1_000_000, us = (nowNs / 1000) % 1000
            lines!.append("\(ms).\(String(repeating: "0", count: 3 - String(us).count))\(us)ms \(text())")
        }
    }

    /// Records one event: folded always, kept as text when tracing. `text` is built lazily.
    func record(_ nowNs: Int64, _ code: UInt64, _ a: Int64 = 0, _ b: Int64 = 0, _ text: @autoclosure () -> String = "") {
        fold(UInt64(bitPattern: nowNs))
        fold(code)
        fold(UInt64(bitPattern: a))
        fold(UInt64(bitPattern: b))
        note(nowNs, text())
    }
}
