// Quartz cron expressions for the retention scheduler (`deleteWhen`, default `0 0 6,18 * * ?`).
// Pure: no clock, no time zones. The caller supplies "now" as local wall-clock seconds.

import ProtocolCore

/// A parsed Quartz cron expression: `seconds minutes hours day-of-month month day-of-week [year]`.
///
/// Supported in every field: `*`, single values, lists `a,b,c`, ranges `a-b`, and steps `*/n`, `a/n`
/// (from `a` to the field's maximum) and `a-b/n`. Months accept `JAN`-`DEC`, days of the week accept
/// `SUN`-`SAT` (1 = Sunday, 7 = Saturday), both case-insensitive. `?` ("no specific value") is allowed
/// only in day-of-month and day-of-week. The Quartz specials `L`, `W`, `LW` and `#` are rejected.
///
/// Day selection: at most one of day-of-month / day-of-week may be specific (anything other than `*`
/// or `?`); the specific one governs, and with neither specific every day matches. Quartz itself
/// insists on exactly one `?`; accepting `* *` as "every day" is a deliberate leniency.
///
/// Time is `Int64` seconds since 1970-01-01 00:00:00 on the *local wall clock*: the runtime adds the
/// local UTC offset to the Unix time before calling ``nextFire(after:)`` and subtracts it from the
/// result. Keeping time zones out of here keeps the type pure and deterministic.
public struct CronExpression: Equatable, Sendable, CustomStringConvertible {
    let text: String
    // One bit per allowed value, bit index = value (so day-of-month uses bits 1...31, month 1...12,
    // day-of-week 1...7). Bitsets make "next allowed value >= v" a mask plus trailingZeroBitCount.
    let seconds: UInt64
    let minutes: UInt64
    let hours: UInt64
    let daysOfMonth: UInt64
    let months: UInt64
    let daysOfWeek: UInt64
    /// Bit index = year - 1970 (130 years need three words); nil when the year field is omitted.
    let years: [UInt64]?

    /// Parses a 6- or 7-field Quartz expression; throws a ``CronParseError`` naming the bad field.
    public init(parsing text: String) throws(CronParseError) {
        let fields = text.split(whereSeparator: { $0.isWhitespace }).map(String.init)
        guard fields.count == 6 || fields.count == 7 else {
            throw CronParseError(expression: text, field: nil, message: "expected 6 or 7 whitespace-separated "
                + "fields 'seconds minutes hours day-of-month month day-of-week [year]', found \(fields.count)")
        }
        seconds = try Field.seconds.parse(fields[0], expression: text)[0]
        minutes = try Field.minutes.parse(fields[1], expression: text)[0]
        hours = try Field.hours.parse(fields[2], expression: text)[0]
        daysOfMonth = try Field.dayOfMonth.parse(fields[3], expression: text)[0]
        months = try Field.month.parse(fields[4], expression: text)[0]
        daysOfWeek = try Field.dayOfWeek.parse(fields[5], expression: text)[0]
        years = fields.count == 7 ? try Field.year.parse(fields[6], expression: text) : nil
        let unrestricted: Set<String> = ["*", "?"]
        guard unrestricted.contains(fields[3]) || unrestricted.contains(fields[5]) else {
            throw CronParseError(expression: text, field: Field.dayOfWeek.name, message: "day-of-month '\(fields[3])' "
                + "and day-of-week '\(fields[5])' are both specific; expected '?' in one of them "
                + "(e.g. '0 0 6 ? * MON-FRI' or '0 0 6 1 * ?')")
        }
        self.text = text
    }

    /// The original expression text.
    public var description: String { text }

    /// Years searched past the start year when there is no year field. Eight, not five, so a Feb 29
    /// schedule still fires across a skipped century leap day (2096-02-29 is followed by 2104-02-29).
    static let searchYears: Int64 = 8
    /// Inputs are limited to years 0001...9999 so the calendar arithmetic can never overflow.
    static let earliestInput = GregorianCalendar.daysFromCivil(year: 1, month: 1, day: 1) * 86_400
    static let latestInput = GregorianCalendar.daysFromCivil(year: 9999, month: 12, day: 31) * 86_400 + 86_399

    /// The first fire time strictly after `localSeconds` (seconds since epoch, local wall clock), or nil
    /// if there is none within 8 years (without a year field) or within the year field's range.
    /// Also nil for inputs outside the years 0001...9999.
    public func nextFire(after localSeconds: Int64) -> Int64? {
        guard localSeconds >= Self.earliestInput, localSeconds <= Self.latestInput else { return nil }
        var c = Cursor(localSeconds + 1)
        let lastYear = years == nil ? c.year + Self.searchYears : Int64(Field.year.range.upperBound)
        // Each pass either returns or moves the cursor forward to the next candidate for the first
        // field that failed (resetting the finer fields), so the loop skips whole years, months,
        // days, hours and minutes rather than ticking seconds. Overflows (month 13, day 32, hour 24)
        // simply find no allowed value and carry into the coarser field on the next pass.
        while c.year <= lastYear {
            guard let year = nextYear(from: c.year) else { return nil }
            if year != c.year { c.startYear(year); continue }
            guard let month = Self.next(in: months, from: c.month) else { c.startYear(year + 1); continue }
            if month != c.month { c.startMonth(month) }
            guard let day = nextDay(year: year, month: month, from: c.day) else { c.startMonth(month + 1); continue }
            if day != c.day { c.startDay(day) }
            guard let hour = Self.next(in: hours, from: c.hour) else { c.startDay(day + 1); continue }
            if hour != c.hour { c.startHour(hour) }
            guard let minute = Self.next(in: minutes, from: c.minute) else { c.startHour(hour + 1); continue }
            if minute != c.minute { c.startMinute(minute) }
            guard let second = Self.next(in: seconds, from: c.second) else { c.startMinute(minute + 1); continue }
            c.second = second
            return c.localSeconds
        }
        return nil
    }

    /// Smallest set bit at index >= `value`, i.e. the next allowed value of a field.
    static func next(in bits: UInt64, from value: Int) -> Int? {
        guard value < 64 else { return nil }
        let candidates = bits & (~UInt64(0) << UInt64(value))
        return candidates == 0 ? nil : candidates.trailingZeroBitCount
    }

    private func nextYear(from year: Int64) -> Int64? {
        guard let years else { return year }
        let first = Int64(Field.year.range.lowerBound)
        var candidate = max(year, first)
        while candidate <= Int64(Field.year.range.upperBound) {
            let bit = Int(candidate - first)
            if years[bit / 64] & (1 << UInt64(bit % 64)) != 0 { return candidate }
            candidate += 1
        }
        return nil
    }

    /// The first day >= `from` in the month allowed by both day fields (one of them is always
    /// all-ones, so the AND is exactly "the specific field governs").
    private func nextDay(year: Int64, month: Int, from: Int) -> Int? {
        let length = GregorianCalendar.daysInMonth(year: year, month: month)
        guard from <= length else { return nil }
        var weekday = Self.weekday(days: GregorianCalendar.daysFromCivil(year: year, month: month, day: from))
        for day in from...length {
            if daysOfMonth & (1 << UInt64(day)) != 0, daysOfWeek & (1 << UInt64(weekday)) != 0 { return day }
            weekday = weekday % 7 + 1
        }
        return nil
    }
}

// MARK: - Search cursor

extension CronExpression {
    /// A broken-down local time being advanced by `nextFire`. The `start*` methods move to the
    /// beginning of a unit, because once a coarser field moves forward every finer field restarts.
    struct Cursor {
        var year: Int64
        var month = 1, day = 1, hour = 0, minute = 0, second = 0

        init(_ localSeconds: Int64) {
            let days = GregorianCalendar.floorDiv(localSeconds, 86_400)
            let secondOfDay = Int(localSeconds - days * 86_400)
            (year, month, day) = GregorianCalendar.civilFromDays(days)
            (hour, minute, second) = (secondOfDay / 3600, secondOfDay / 60 % 60, secondOfDay % 60)
        }

        mutating func startYear(_ y: Int64) { year = y; startMonth(1) }
        mutating func startMonth(_ m: Int) { month = m; startDay(1) }
        mutating func startDay(_ d: Int) { day = d; startHour(0) }
        mutating func startHour(_ h: Int) { hour = h; startMinute(0) }
        mutating func startMinute(_ m: Int) { minute = m; second = 0 }

        var localSeconds: Int64 {
            GregorianCalendar.daysFromCivil(year: year, month: month, day: day) * 86_400
                + Int64(hour * 3600 + minute * 60 + second)
        }
    }
}

// MARK: - Weekdays

extension CronExpression {
    /// Quartz numbering: 1 = Sunday ... 7 = Saturday. Day 0 (1970-01-01) was a Thursday (5).
    static func weekday(days: Int64) -> Int {
        Int(days - GregorianCalendar.floorDiv(days, 7) * 7 + 4) % 7 + 1
    }
}

// MARK: - Field parsing

extension CronExpression {
    struct Field: Sendable {
        let name: String
        let range: ClosedRange<Int>
        /// `names[i]` spells the value `range.lowerBound + i`.
        let names: [String]
        let allowsQuestionMark: Bool
        /// Bit index = value - bitOffset; only the year field needs an offset to fit its 130 values.
        var bitOffset = 0

        static let seconds = Field(name: "seconds", range: 0...59, names: [], allowsQuestionMark: false)
        static let minutes = Field(name: "minutes", range: 0...59, names: [], allowsQuestionMark: false)
        static let hours = Field(name: "hours", range: 0...23, names: [], allowsQuestionMark: false)
        static let dayOfMonth = Field(name: "day-of-month", range: 1...31, names: [], allowsQuestionMark: true)
        static let month = Field(name: "month", range: 1...12, names: [
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ], allowsQuestionMark: false)
        static let dayOfWeek = Field(name: "day-of-week", range: 1...7,
                                     names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], allowsQuestionMark: true)
        static let year = Field(name: "year", range: 1970...2099, names: [], allowsQuestionMark: false, bitOffset: 1970)

        var expectedForm: String {
            var values = "\(range.lowerBound)-\(range.upperBound)"
            if let first = names.first, let last = names.last { values += " or \(first)-\(last)" }
            return "expected '*'\(allowsQuestionMark ? ", '?'" : ""), a value in \(values), a list 'a,b,c', "
                + "a range 'a-b', or a step '*/n', 'a/n', 'a-b/n'"
        }

        func failure(_ problem: String, _ expression: String) -> CronParseError {
            CronParseError(expression: expression, field: name, message: "\(name): \(problem); \(expectedForm)")
        }

        /// The field's bitset, as words of 64 bits (one word except for the year).
        func parse(_ token: String, expression: String) throws(CronParseError) -> [UInt64] {
            var words = [UInt64](repeating: 0, count: (range.upperBound - bitOffset) / 64 + 1)
            var token = token
            if token == "?" {
                guard allowsQuestionMark else { throw failure("'?' is only allowed in day-of-month and day-of-week", expression) }
                token = "*"
            }
            if token.contains("#") {
                throw failure("the Quartz special '#' (nth weekday of the month) is not supported", expression)
            }
            for item in token.split(separator: ",", omittingEmptySubsequences: false) {
                guard !item.isEmpty else { throw failure("empty list item in '\(token)'", expression) }
                let (low, high, step) = try parseItem(item, expression: expression)
                for value in stride(from: low, through: high, by: step) {
                    let bit = value - bitOffset
                    words[bit / 64] |= 1 << UInt64(bit % 64)
                }
            }
            return words
        }

        /// One list item: `*`, `v`, `a-b`, each optionally followed by `/step`.
        private func parseItem(_ item: Substring, expression: String) throws(CronParseError) -> (Int, Int, Int) {
            let parts = item.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { throw failure("'\(item)' has more than one '/'", expression) }
            var step = 1
            if parts.count == 2 {
                guard let n = CronExpression.number(parts[1]), n >= 1, n <= range.count else {
                    throw failure("step '\(parts[1])' in '\(item)' must be a whole number 1-\(range.count)", expression)
                }
                step = n
            }
            if parts[0] == "*" { return (range.lowerBound, range.upperBound, step) }
            let ends = parts[0].split(separator: "-", omittingEmptySubsequences: false)
            guard ends.count <= 2 else { throw failure("'\(item)' is not a valid range", expression) }
            let low = try value(ends[0], in: item, expression: expression)
            // Quartz reads `a/n` as "from a to the maximum, every n".
            guard ends.count == 2 else { return (low, parts.count == 2 ? range.upperBound : low, step) }
            let high = try value(ends[1], in: item, expression: expression)
            guard low <= high else { throw failure("range '\(parts[0])' is reversed (\(low) > \(high))", expression) }
            return (low, high, step)
        }

        private func value(_ token: Substring, in item: Substring, expression: String) throws(CronParseError) -> Int {
            if let n = CronExpression.number(token) {
                guard range.contains(n) else {
                    throw failure("value \(n) is out of range \(range.lowerBound)-\(range.upperBound)", expression)
                }
                return n
            }
            let upper = token.uppercased()
            if let index = names.firstIndex(of: upper) { return range.lowerBound + index }
            if token.isEmpty { throw failure("'\(item)' is missing a value", expression) }
            if allowsQuestionMark, upper.contains("L") || upper.contains("W") {
                throw failure("the Quartz specials 'L', 'W' and 'LW' are not supported (got '\(token)')", expression)
            }
            throw failure("'\(token)' is not a valid value", expression)
        }
    }

    /// A plain unsigned decimal (no sign, at most 9 digits so it cannot overflow); nil otherwise.
    static func number(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 9, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(text)
    }
}

/// Why a cron expression was rejected.
public struct CronParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The whole expression as given.
    public let expression: String
    /// The offending field (`"seconds"`, `"minutes"`, `"hours"`, `"day-of-month"`, `"month"`,
    /// `"day-of-week"`, `"year"`), or nil when the expression as a whole is malformed.
    public let field: String?
    /// What is wrong and the expected form; starts with the field name when there is one.
    public let message: String

    public var description: String { "invalid cron expression '\(expression)': \(message)" }
}
