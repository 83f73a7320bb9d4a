import BrokerCore
import ProtocolCore
import Testing

/// Every request and answer of the put path is copied through arrays of these enums, and an enum
/// is as large as its largest inline payload: one large case (a transaction's journal entry, a
/// commit plan) added without `indirect` made every put copy several times more bytes — a 13 %
/// memmove share of the broker's CPU before it was found. This pins their size, so such a
/// change is a test failure rather than a benchmark mystery.
@Suite("Put-path values stay small")
struct HotPathLayoutTests {
    @Test func theEnumsOfThePutPathStaySmall() {
        let sizes: [(String, Int, Int)] = [
            ("BrokerMachine.Action", MemoryLayout<BrokerMachine.Action>.size, 64),
            ("BrokerMachine.Event", MemoryLayout<BrokerMachine.Event>.size, 96),
            ("BrokerNode.Action", MemoryLayout<BrokerNode.Action>.size, 64),
            ("Frame", MemoryLayout<Frame>.size, 96),
        ]
        for (name, size, limit) in sizes {
            print("\(name): \(size) bytes")
            #expect(size <= limit, "\(name) is \(size) bytes: make its large cases indirect")
        }
    }
}
