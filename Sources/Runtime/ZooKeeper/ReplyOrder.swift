import ProtocolCore

/// Hands replies out in the order their requests were submitted, whatever order they are
/// resolved in.
///
/// ZooKeeper answers one session's requests in order, but a request can also fail before it
/// reaches the C library (no live handle, an expired handle's `ZINVALIDSTATE`) while earlier
/// requests are still queued there. Such a reply waits here behind the earlier ones, so the
/// promise of `CoordinationEvent.reply` ("in submission order") holds for every reply.
/// Not thread-safe: its owner guards it.
struct ReplyOrder<Destination: Sendable>: Sendable {
    private struct Slot: Sendable {
        let destination: Destination
        var reply: CoordinationReply?
    }

    /// Slots from `head` on are outstanding; the ones before it were handed out and are
    /// dropped in batches (`compact`) so that each operation stays O(1) amortised.
    private var slots: [Slot] = []
    private var head = 0
    /// The sequence number of `slots[head]`.
    private var firstSequence: UInt64 = 0

    /// The number of requests whose reply has not been handed out yet.
    var outstandingCount: Int { slots.count - head }

    /// Registers the next request; its replies go to `destination`. Returns its sequence number.
    mutating func enqueue(_ destination: Destination) -> UInt64 {
        slots.append(Slot(destination: destination, reply: nil))
        return firstSequence + UInt64(slots.count - head - 1)
    }

    /// Records the reply of request `sequence` and returns the replies now due, oldest first.
    /// A second reply for one request, or one for an unknown request, is ignored: each request
    /// gets exactly one.
    mutating func resolve(_ sequence: UInt64, _ reply: CoordinationReply) -> [(Destination, CoordinationReply)] {
        guard sequence >= firstSequence, sequence - firstSequence < UInt64(slots.count - head) else { return [] }
        let index = head + Int(sequence - firstSequence)
        guard slots[index].reply == nil else { return [] }
        slots[index].reply = reply
        var due: [(Destination, CoordinationReply)] = []
        while head < slots.count, let ready = slots[head].reply {
            due.append((slots[head].destination, ready))
            head += 1
            firstSequence += 1
        }
        compact()
        return due
    }

    /// Forgets every outstanding request and returns the destinations that had no reply yet,
    /// oldest first (at close, to answer callers that are waiting).
    mutating func removeAll() -> [Destination] {
        let waiting = slots[head...].filter { $0.reply == nil }.map(\.destination)
        firstSequence += UInt64(slots.count - head)
        slots = []
        head = 0
        return waiting
    }

    private mutating func compact() {
        if head == slots.count {
            slots.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= slots.count {
            slots.removeFirst(head)
            head = 0
        }
    }
}
