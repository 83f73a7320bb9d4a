extension StringProtocol {
    /// The text without leading and trailing whitespace (configuration values, numbers in an
    /// answer's body).
    public var trimmedOfWhitespace: SubSequence {
        guard let start = firstIndex(where: { !$0.isWhitespace }) else { return self[endIndex...] }
        return self[start...lastIndex(where: { !$0.isWhitespace })!]
    }
}
