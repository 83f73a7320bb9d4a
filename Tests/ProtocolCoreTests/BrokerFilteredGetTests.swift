import Testing
@testable import ProtocolCore

/// Server-side filters (reference §5.7) with the §11.1 livelock fixed: the expression forms, and
/// the broker machine answering filtered gets, fed by hand.
@Suite("Server-side filters (reference §5.7, §11.1)")
struct BrokerFilteredGetTests {
    let c1 = ConnectionID(1)
    let now: Int64 = 1_795_000_000_000

    // MARK: Expressions

    @Test func eachFormAcceptsWhatItSays() throws {
        let exact = try AttributeFilter(parsing: "red")
        #expect(exact == .exact("red"))
        #expect(exact.accepts("red") && !exact.accepts("reddish") && !exact.accepts("Red") && !exact.accepts(nil))
        let prefix = try AttributeFilter(parsing: "prefix:abc")
        #expect(prefix.accepts("abc") && prefix.accepts("abcdef") && !prefix.accepts("xabc") && !prefix.accepts(nil))
        let any = try AttributeFilter(parsing: "any:red, green")
        #expect(any == .anyOf(["red", "green"]), "spaces around values are trimmed")
        #expect(any.accepts("red") && any.accepts("green") && !any.accepts("blue") && !any.accepts(nil))
        let not = try AttributeFilter(parsing: "not:red")
        #expect(not == .not(.exact("red")))
        #expect(!not.accepts("red") && not.accepts("blue") && not.accepts(nil), "records without attribute pass a negation")
        #expect(try AttributeFilter(parsing: "not:any:a,b") == .not(.anyOf(["a", "b"])))
        #expect(try AttributeFilter(parsing: "exact:com.example.MyFilter") == .exact("com.example.MyFilter"))
        #expect(try AttributeFilter(parsing: "exact:prefix:x") == .exact("prefix:x"))
        // Values that merely contain dots or colons stay exact attributes.
        #expect(try AttributeFilter(parsing: "order.created") == .exact("order.created"))
        #expect(try AttributeFilter(parsing: "12:30") == .exact("12:30"))
        #expect(try AttributeFilter(parsing: "v1.2") == .exact("v1.2"))
    }

    @Test func invalidExpressionsAreRejected() {
        for text in ["", "prefix:", "exact:", "any:", "any:a,,b", "not:", "regex:a.*", "com.example.MyFilter",
                     "com.taobao.metamorphosis.Filter", "not:com.x.F"] {
            #expect(throws: AttributeFilter.ParseError.self, "\(text)") { try AttributeFilter(parsing: text) }
        }
        let error = #expect(throws: AttributeFilter.ParseError.self) { try AttributeFilter(parsing: "com.x.MyFilter") }
        #expect(error?.message.contains("Java filter class") == true)
        #expect(error?.message.contains("exact:com.x.MyFilter") == true, "the message names the literal form")
    }

    // MARK: Deciding a read

    static func record(_ data: String, attribute: String?, id: Int64 = 1) -> [UInt8] {
        let (flag, payload) = MessagePayload.encode(attribute: attribute, data: Array(data.utf8))
        return Record.encode(msgId: id, flag: flag, payload: payload)
    }

    let red = record("a", attribute: "red")
    let blue = record("reject", attribute: "blue")
    let red2 = record("b", attribute: "red", id: 2)
    let bare = record("plain", attribute: nil)

    @Test func decideDeliversTheAcceptedRunOrSkipsTheRejectedRun() {
        let filter = AttributeFilter.exact("red")
        #expect(FilteredGet.decide(red + red2, filter: filter) == .deliver(count: red.count + red2.count))
        #expect(FilteredGet.decide(red + blue + red2, filter: filter) == .deliver(count: red.count), "stops before the first rejected")
        #expect(FilteredGet.decide(blue + bare + red2, filter: filter) == .skip(bytes: blue.count + bare.count))
        #expect(FilteredGet.decide(blue + bare, filter: filter) == .skip(bytes: blue.count + bare.count), "all rejected")
        // A cut trailing record is neither delivered nor skipped.
        #expect(FilteredGet.decide(red + red2.dropLast(1), filter: filter) == .deliver(count: red.count))
        #expect(FilteredGet.decide(blue + red2.dropLast(1), filter: filter) == .skip(bytes: blue.count))
        // A first record that cannot be judged goes out unchanged, as without a filter.
        let cut = Array(blue.dropLast(2))
        #expect(FilteredGet.decide(cut, filter: filter) == .deliver(count: cut.count))
        #expect(FilteredGet.decide(bare, filter: .not(.exact("red"))) == .deliver(count: bare.count))
    }

    // MARK: The machine

    func machine() -> BrokerMachine {
        let rules = TopicRules([.init(pattern: "test", numPartitions: 1, filters: ["g1": .exact("red")]),
                                .init(pattern: "other", numPartitions: 1)])
        let settings = BrokerMachine.Settings(brokerId: 0, brokerURI: "meta://127.0.0.1:8123", port: 8123, version: "v",
                                              maxTransferSize: 1024, updateConsumerOffsets: false, topics: rules)
        return BrokerMachine(settings: settings, partitionsWithData: [TopicPartition("test", 0), TopicPartition("other", 0)],
                             idReservationMs: 0, seed: 1)
    }

    /// Sends a get and answers its read with `bytes`; the machine's answer.
    func get(_ broker: inout BrokerMachine, topic: String = "test", group: String, offset: Int64, bytes: [UInt8]) -> [BrokerMachine.Action] {
        let get = GetCommand(topic: topic, group: group, partition: 0, offset: offset, maxSize: 4096, opaque: 7)
        let actions = broker.handle(.request(c1, .get(get)), nowMs: now)
        switch actions.first {
        case .readBytes(let token, let target, let at, let maxBytes)?:
            #expect(target == TopicPartition(topic, 0) && at == offset && maxBytes == 1024)
            return broker.handle(.read(token: token, .bytes(bytes)), nowMs: now)
        case .read(let token, _, _, _)?:
            return broker.handle(.read(token: token, .slice(count: bytes.count)), nowMs: now)
        default:
            Issue.record("no read: \(actions)")
            return []
        }
    }

    func moved(_ offset: Int64) -> [BrokerMachine.Action] {
        [.reply(c1, ResultResponse(code: StatusCode.moved, text: "\(offset)", opaque: 7))]
    }

    @Test func acceptedRunIsSentAsBytes() {
        var broker = machine()
        #expect(get(&broker, group: "g1", offset: 0, bytes: red + red2) == [.sendBytes(c1, body: red + red2, opaque: 7)])
    }

    /// §11.1: records `a`(red, 0), `reject`(blue), `b`(red): the first answer holds only `a`, the
    /// next (at `a`'s end, where the original client goes) is 301 past `reject`, then `b`.
    @Test func mixedRunsLeadTheOriginalClientForward() {
        var broker = machine()
        let all = red + blue + red2
        #expect(get(&broker, group: "g1", offset: 0, bytes: all) == [.sendBytes(c1, body: red, opaque: 7)])
        let afterRed = Int64(red.count)
        #expect(get(&broker, group: "g1", offset: afterRed, bytes: blue + red2) == moved(afterRed + Int64(blue.count)))
        let atB = afterRed + Int64(blue.count)
        #expect(get(&broker, group: "g1", offset: atB, bytes: red2) == [.sendBytes(c1, body: red2, opaque: 7)])
        #expect(broker.statsCounters.cmdOffset == 1, "a filter 301 counts as cmd_offset like any other (§9)")
    }

    @Test func allRejectedMovesToTheEndOfTheRead() {
        var broker = machine()
        #expect(get(&broker, group: "g1", offset: 100, bytes: blue + bare) == moved(100 + Int64(blue.count + bare.count)))
    }

    @Test func recordsWithoutAttributeNeverMatchAPositiveFilter() {
        var broker = machine()
        #expect(get(&broker, group: "g1", offset: 0, bytes: bare + red) == moved(Int64(bare.count)))
    }

    @Test func otherGroupsAndTopicsKeepTheSlicePath() {
        var broker = machine()
        let unfiltered = get(&broker, group: "g2", offset: 0, bytes: red + blue)
        guard case .sendSlice(c1, _, 7)? = unfiltered.first, unfiltered.count == 1 else {
            Issue.record("g2 is not filtered: \(unfiltered)"); return
        }
        let otherTopic = get(&broker, topic: "other", group: "g1", offset: 0, bytes: blue)
        guard case .sendSlice? = otherTopic.first else { Issue.record("filters are per topic: \(otherTopic)"); return }
    }

    @Test func readOutcomesOtherThanBytesAnswerAsUnfiltered() {
        var broker = machine()
        let get = GetCommand(topic: "test", group: "g1", partition: 0, offset: 5, maxSize: 10, opaque: 7)
        guard case .readBytes(let token, _, _, _)? = broker.handle(.request(c1, .get(get)), nowMs: now).first else {
            Issue.record("no readBytes"); return
        }
        #expect(broker.handle(.read(token: token, .atOrBeyondEnd(maxOffset: 5)), nowMs: now)
                == [.reply(c1, ResultResponse(code: StatusCode.notFound, text: "Could not find message at position 5", opaque: 7))])
        guard case .readBytes(let second, _, _, _)? = broker.handle(.request(c1, .get(get)), nowMs: now).first else { return }
        let failed = broker.handle(.read(token: second, .failed("disk on fire")), nowMs: now)
        guard case .reply(_, let response)? = failed.first else { Issue.record("\(failed)"); return }
        #expect(response.code == StatusCode.internalServerError
                && response.text.hasSuffix("[partition 'test-0'] failed.Detail:disk on fire"))
    }
}
