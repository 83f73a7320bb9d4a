// Integer expressions in server.ini values. MetaQ hands numeric values to Aviator (reference §8,
// "General rules"), so operators write `maxSegmentSize=1024*1024*1024`; this is the integer subset
// of that language that a config needs, evaluated without Aviator's silent Long wrap-around.

/// Evaluates the integer arithmetic MetaQ accepts in numeric config values.
///
/// Grammar (whitespace allowed between tokens):
///
///     expression := term (("+" | "-") term)*
///     term       := unary (("*" | "/" | "%") unary)*
///     unary      := "-" unary | primary
///     primary    := digits | "(" expression ")"
///
/// Arithmetic is on `Int64`, like Aviator's `Long`, with Java's integer rules: `/` truncates toward
/// zero and `%` takes the sign of the dividend. Unlike Aviator, overflow and division by zero are
/// errors rather than a wrapped number or an exception trace, and nesting is bounded so a hostile
/// file cannot exhaust the stack.
enum ConfigExpression {
    /// Parentheses (and unary minus signs) nested deeper than this are rejected.
    static let maxDepth = 64

    static func evaluate(_ text: String) throws(ConfigExpressionError) -> Int64 {
        var parser = Parser(scalars: Array(text.unicodeScalars))
        parser.skipSpaces()
        guard !parser.atEnd else { throw ConfigExpressionError("empty expression") }
        let value = try parser.parseExpression()
        parser.skipSpaces()
        if let scalar = parser.peek {
            throw ConfigExpressionError("unexpected '\(scalar)' at column \(parser.column)")
        }
        return value
    }

    private struct Parser {
        let scalars: [Unicode.Scalar]
        var index = 0
        var depth = 0

        var atEnd: Bool { index == scalars.count }
        var peek: Unicode.Scalar? { atEnd ? nil : scalars[index] }
        /// 1-based, as an editor shows it.
        var column: Int { index + 1 }

        mutating func skipSpaces() {
            while let s = peek, s == " " || s == "\t" { index += 1 }
        }

        /// Consumes and returns the next operator if it is one of `operators`.
        mutating func take(_ operators: String) -> Unicode.Scalar? {
            skipSpaces()
            guard let s = peek, operators.unicodeScalars.contains(s) else { return nil }
            index += 1
            return s
        }

        mutating func parseExpression() throws(ConfigExpressionError) -> Int64 {
            var value = try parseTerm()
            while let op = take("+-") {
                let rhs = try parseTerm()
                let (result, overflow) = op == "+" ? value.addingReportingOverflow(rhs)
                                                   : value.subtractingReportingOverflow(rhs)
                guard !overflow else { throw .overflow(value, op, rhs) }
                value = result
            }
            return value
        }

        mutating func parseTerm() throws(ConfigExpressionError) -> Int64 {
            var value = try parseUnary()
            while let op = take("*/%") {
                let rhs = try parseUnary()
                if op != "*" && rhs == 0 { throw ConfigExpressionError("division by zero in \(value) \(op) 0") }
                let (result, overflow) = switch op {
                case "*": value.multipliedReportingOverflow(by: rhs)
                case "/": value.dividedReportingOverflow(by: rhs)
                default: value.remainderReportingOverflow(dividingBy: rhs)
                }
                guard !overflow else { throw .overflow(value, op, rhs) }
                value = result
            }
            return value
        }

        mutating func parseUnary() throws(ConfigExpressionError) -> Int64 {
            guard take("-") != nil else { return try parsePrimary() }
            try enterNesting()
            defer { depth -= 1 }
            let operand = try parseUnary()
            let (result, overflow) = Int64(0).subtractingReportingOverflow(operand)
            guard !overflow else { throw ConfigExpressionError("-(\(operand)) does not fit in a 64-bit integer") }
            return result
        }

        mutating func parsePrimary() throws(ConfigExpressionError) -> Int64 {
            skipSpaces()
            guard let s = peek else { throw ConfigExpressionError("expected a number at the end") }
            if s == "(" {
                index += 1
                try enterNesting()
                defer { depth -= 1 }
                let value = try parseExpression()
                guard take(")") != nil else {
                    throw ConfigExpressionError("expected ')' at column \(column)")
                }
                return value
            }
            return try parseLiteral()
        }

        mutating func parseLiteral() throws(ConfigExpressionError) -> Int64 {
            let start = index
            var value: Int64 = 0
            while let s = peek, let digit = s.decimalDigit {
                let (shifted, o1) = value.multipliedReportingOverflow(by: 10)
                let (next, o2) = shifted.addingReportingOverflow(digit)
                guard !o1, !o2 else {
                    throw ConfigExpressionError("number at column \(start + 1) does not fit in a 64-bit integer")
                }
                value = next
                index += 1
            }
            guard index > start else {
                let found = peek.map { "'\($0)'" } ?? "the end"
                throw ConfigExpressionError("expected a number at column \(column), found \(found)")
            }
            return value
        }

        mutating func enterNesting() throws(ConfigExpressionError) {
            depth += 1
            guard depth <= ConfigExpression.maxDepth else {
                throw ConfigExpressionError("nested deeper than \(ConfigExpression.maxDepth) levels")
            }
        }
    }
}

/// Why a numeric config value is not a valid integer expression.
struct ConfigExpressionError: Error, Equatable, Sendable {
    let message: String

    init(_ message: String) { self.message = message }

    static func overflow(_ lhs: Int64, _ op: Unicode.Scalar, _ rhs: Int64) -> ConfigExpressionError {
        ConfigExpressionError("\(lhs) \(op) \(rhs) overflows a 64-bit integer")
    }
}

extension Unicode.Scalar {
    /// The value of an ASCII digit; nil for anything else (other scripts' digits included).
    fileprivate var decimalDigit: Int64? {
        ("0"..."9").contains(self) ? Int64(value - 48) : nil
    }
}
