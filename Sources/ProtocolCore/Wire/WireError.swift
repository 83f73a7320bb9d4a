/// A frame that cannot be decoded, with what MetaQ does about it (reference §1.1).
public struct WireError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// The first character (or token) names no command (`bogus command␍␊`).
        case unknownCommand
        /// A known command with the wrong token count or a token that is not a number.
        case malformedLine
        /// No CR LF within the line limit.
        case lineTooLong
        /// The declared body length exceeds the configured limit; nothing of that size is allocated.
        case bodyTooLarge
        case negativeBodyLength
    }

    /// What the peer gets.
    public enum Disposition: Equatable, Sendable {
        /// MetaQ's codec raises an exception and gecko closes the connection without a reply.
        case closeConnection
        /// Answer `result <code> …` with this text and keep the connection.
        case reply(code: Int32, text: String)
    }

    public var kind: Kind
    public var message: String
    public var disposition: Disposition

    public init(_ kind: Kind, _ message: String, disposition: Disposition = .closeConnection) {
        self.kind = kind
        self.message = message
        self.disposition = disposition
    }

    public var description: String { message }
}
