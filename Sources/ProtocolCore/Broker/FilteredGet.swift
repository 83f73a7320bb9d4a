/// What a filtered `get` answers (reference §5.7), shaped so the original client's offset rule
/// cannot livelock (§11.1): that client advances by the bytes it received, so the answer is either
/// a contiguous run of accepted records starting at the requested offset, or a 301 just past a
/// contiguous run of rejected ones. Either way the client lands on a record boundary and moves on.
public enum FilteredGet: Equatable, Sendable {
    /// Send the first `count` bytes of the read.
    case deliver(count: Int)
    /// Answer 301 with `requested offset + bytes`: the start of the next accepted record, or the
    /// end of the whole records read.
    case skip(bytes: Int)

    /// Decides for `bytes` read at the requested offset.
    ///
    /// Whole, checksum-verified records are judged by `filter`; the walk stops at the first record
    /// of the other verdict, at a cut trailing record, or at damage. When the first record cannot
    /// be judged (cut by the read window, or damaged) the bytes go out unchanged, as an unfiltered
    /// `get` would send them: the client grows its fetch size or reports the damage (§5.1).
    public static func decide(_ bytes: [UInt8], filter: AttributeFilter) -> FilteredGet {
        bytes.withUnsafeBytes { buffer in
            var position = 0
            var runAccepted: Bool?
            while case .record(let header, let payloadStart) = Record.parse(buffer, at: position) {
                let end = payloadStart + Int(header.length)
                let payload = bytes[payloadStart..<end]
                // A whole record whose attribute header does not fit counts as having no attribute.
                let attribute = MessagePayload.decode(flag: header.flag, payload: payload)?.attribute
                let accepted = filter.accepts(attribute)
                if let run = runAccepted, run != accepted { break }
                runAccepted = accepted
                position = end
            }
            switch runAccepted {
            case nil: return .deliver(count: bytes.count)
            case true?: return .deliver(count: position)
            case false?: return .skip(bytes: position)
            }
        }
    }
}
