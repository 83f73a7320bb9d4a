import ProtocolCore
import Testing
@testable import StoreCore

// Expected epoch seconds were computed independently with `date -u -d '<date>' +%s` (tests treat the
// local wall clock as UTC, which is exactly what the runtime's offset-adding produces).
@Suite struct CronExpressionTests {
    private func cron(_ text: String) throws -> CronExpression {
        try CronExpression(parsing: text)
    }

    // MARK: Fire times

    @Test func defaultSchedule() throws {
        let c = try cron("0 0 6,18 * * ?")
        #expect(c.nextFire(after: 1_795_240_799) == 1_795_240_800)   // 2026-11-21 05:59:59 -> 06:00
        #expect(c.nextFire(after: 1_795_240_800) == 1_795_284_000)   // 06:00 exactly -> 18:00
        #expect(c.nextFire(after: 1_795_284_000) == 1_795_327_200)   // 18:00 -> 2026-11-22 06:00
        #expect(c.description == "0 0 6,18 * * ?")
    }

    @Test func stepsEveryFifteenMinutes() throws {
        let c = try cron("0 */15 * * * ?")
        #expect(c.nextFire(after: 1_795_255_650) == 1_795_256_100)   // 10:07:30 -> 10:15:00
        #expect(c.nextFire(after: 1_795_256_100) == 1_795_257_000)   // 10:15:00 -> 10:30:00
        #expect(c.nextFire(after: 1_795_305_599) == 1_795_305_600)   // 23:59:59 -> next day 00:00
    }

    @Test func rangesListsAndStartSteps() throws {
        let day: Int64 = 1_795_305_600                                // 2026-11-22 00:00
        let ranged = try cron("0 0 9-17/4 * * ?")
        var fires: [Int64] = []
        var t = day
        for _ in 0..<4 { t = try #require(ranged.nextFire(after: t)); fires.append(t - day) }
        let expected: [Int64] = [9 * 3600, 13 * 3600, 17 * 3600, 86_400 + 9 * 3600]
        #expect(fires == expected)
        let listed = try cron("15,45 * * * * ?")
        #expect(listed.nextFire(after: day) == day + 15)
        #expect(listed.nextFire(after: day + 15) == day + 45)
        #expect(listed.nextFire(after: day + 45) == day + 75)
        let fromA = try cron("0 50/5 * * * ?")                         // 50, 55 of every hour
        #expect(fromA.nextFire(after: day) == day + 50 * 60)
        #expect(fromA.nextFire(after: day + 55 * 60) == day + 3600 + 50 * 60)
        let every = try cron("* * * * * ?")
        #expect(every.nextFire(after: -1) == 0)                      // pre-epoch inputs work too
        #expect(every.nextFire(after: day) == day + 1)
    }

    @Test func monthNames() throws {
        let c = try cron("0 0 12 1 JAN,JUL ?")
        #expect(c.nextFire(after: 1_770_681_600) == 1_782_907_200)   // 2026-02-10 -> 2026-07-01 12:00
        #expect(c.nextFire(after: 1_782_907_200) == 1_798_804_800)   // -> 2027-01-01 12:00
        #expect(try cron("0 0 12 1 jan,Jul ?").nextFire(after: 1_770_681_600) == 1_782_907_200)
        #expect(try cron("0 0 12 1 7 ?").nextFire(after: 1_770_681_600) == 1_782_907_200)
    }

    @Test func weekdaysSkipTheWeekend() throws {
        let c = try cron("0 30 9 ? * MON-FRI")
        // Friday 2026-11-20 09:30 -> Monday 2026-11-23 09:30.
        #expect(c.nextFire(after: 1_795_167_000) == 1_795_426_200)
        #expect(try cron("0 30 9 ? * 2-6").nextFire(after: 1_795_167_000) == 1_795_426_200)
        #expect(try cron("0 30 9 * * mon-fri").nextFire(after: 1_795_167_000) == 1_795_426_200)
        // Sunday only: 2026-11-22 is the first Sunday after Friday the 20th.
        #expect(try cron("0 0 0 ? * SUN").nextFire(after: 1_795_167_000) == 1_795_305_600)
    }

    @Test func leapDayFindsTheNextLeapYear() throws {
        let c = try cron("0 0 0 29 2 ?")
        #expect(c.nextFire(after: 1_772_323_200) == 1_835_395_200)   // 2026-03-01 -> 2028-02-29
        #expect(c.nextFire(after: 3_981_398_400) == 4_233_686_400)   // 2096-03-01 -> 2104-02-29 (2100 not leap)
        #expect(try cron("0 0 0 29 2 ? 2097-2099").nextFire(after: 3_981_398_400) == nil)
        #expect(try cron("0 0 0 30 2 ?").nextFire(after: 1_772_323_200) == nil)   // never exists
    }

    @Test func yearField() throws {
        let c = try cron("0 0 0 1 1 ? 2030")
        #expect(c.nextFire(after: 1_772_323_200) == 1_893_456_000)   // 2026 -> 2030-01-01
        #expect(c.nextFire(after: 1_893_456_000) == nil)
        let listed = try cron("0 0 0 1 1 ? 2028,2030-2031")
        #expect(listed.nextFire(after: 1_772_323_200) == GregorianCalendar.daysFromCivil(year: 2028, month: 1, day: 1) * 86_400)
        let last = try cron("0 0 0 31 12 ? 2099")
        #expect(last.nextFire(after: 0) == 4_102_358_400)            // 2099-12-31, the last representable year
    }

    @Test func monthEndAndYearRollover() throws {
        let c = try cron("0 0 0 31 * ?")
        #expect(c.nextFire(after: 1_775_001_600) == 1_780_185_600)   // 2026-04-01 -> 2026-05-31 (skips April)
        #expect(c.nextFire(after: 1_780_185_600) == 1_785_456_000)   // -> 2026-07-31 (skips June)
        #expect(try cron("0 0 0 * * ?").nextFire(after: 1_798_675_200) == 1_798_761_600)   // Dec 31 -> Jan 1
        #expect(try cron("59 59 23 31 12 ?").nextFire(after: 1_798_761_599) == 1_830_297_599)
        #expect(try cron("0 0 0 1 * ?").nextFire(after: 1_798_761_599) == 1_798_761_600)
    }

    @Test func equalityAndOutOfRangeInputs() throws {
        #expect(try cron("0 0 6,18 * * ?") == cron("0 0 6,18 * * ?"))
        #expect(try cron("0 0 6,18 * * ?") != cron("0 0 6 * * ?"))
        #expect(try cron("* * * * * ?").nextFire(after: .max) == nil)
        #expect(try cron("* * * * * ?").nextFire(after: .min) == nil)
    }

    // MARK: Errors

    static let badExpressions: [(text: String, field: String?, fragment: String)] = [
        ("", nil, "6 or 7"),
        ("0 0 6 * *", nil, "found 5"),
        ("0 0 6 * * ? 2030 1", nil, "found 8"),
        ("60 0 6 * * ?", "seconds", "out of range 0-59"),
        ("0 60 6 * * ?", "minutes", "out of range 0-59"),
        ("0 0 24 * * ?", "hours", "out of range 0-23"),
        ("0 0 6 0 * ?", "day-of-month", "out of range 1-31"),
        ("0 0 6 32 * ?", "day-of-month", "out of range 1-31"),
        ("0 0 6 * 13 ?", "month", "out of range 1-12"),
        ("0 0 6 ? * 8", "day-of-week", "out of range 1-7"),
        ("0 0 6 * * ? 1969", "year", "out of range 1970-2099"),
        ("0 0 6 * * ? 2100", "year", "out of range 1970-2099"),
        ("0 0 18-6 * * ?", "hours", "reversed"),
        ("0 0 6 ? * FRI-MON", "day-of-week", "reversed"),
        ("0 */0 6 * * ?", "minutes", "step"),
        ("0 */61 6 * * ?", "minutes", "step"),
        ("0 0 1,,2 * * ?", "hours", "empty list item"),
        ("0 0 1, * * ?", "hours", "empty list item"),
        ("0 0 6 1 * MON", "day-of-week", "both specific"),
        ("0 0 6 L * ?", "day-of-month", "not supported"),
        ("0 0 6 15W * ?", "day-of-month", "not supported"),
        ("0 0 6 LW * ?", "day-of-month", "not supported"),
        ("0 0 6 ? * 6L", "day-of-week", "not supported"),
        ("0 0 6 ? * 6#3", "day-of-week", "not supported"),
        ("0 0 ? * * ?", "hours", "'?' is only allowed"),
        ("0 0 6 * FOO ?", "month", "not a valid value"),
        ("0 0 -5 * * ?", "hours", "missing a value"),
        ("0 0 5- * * ?", "hours", "missing a value"),
        ("0 0 +5 * * ?", "hours", "not a valid value"),
        ("0 0 1-2-3 * * ?", "hours", "not a valid range"),
        ("0 0 1/2/3 * * ?", "hours", "more than one '/'"),
        ("0 0 */ * * ?", "hours", "step"),
        ("0 0 99999999999 * * ?", "hours", "not a valid value"),
    ]

    @Test(arguments: badExpressions)
    func rejects(_ bad: (text: String, field: String?, fragment: String)) {
        #expect {
            try CronExpression(parsing: bad.text)
        } throws: { error in
            guard let error = error as? CronParseError else { return false }
            let namesField = bad.field.map { error.message.contains($0) } ?? true
            let explains = bad.field == nil || error.message.contains("expected")
            return error.field == bad.field && error.expression == bad.text && namesField && explains
                && error.message.contains(bad.fragment) && error.description.contains(error.message)
        }
    }

    @Test func errorDescriptionQuotesTheExpression() {
        #expect(throws: CronParseError.self) { try CronExpression(parsing: "0 0 25 * * ?") }
        do {
            _ = try CronExpression(parsing: "0 0 25 * * ?")
        } catch {
            #expect(error.field == "hours")
            #expect(error.description.hasPrefix("invalid cron expression '0 0 25 * * ?': hours: value 25"))
            #expect(error.message.contains("expected '*', a value in 0-23"))
        }
    }

    // MARK: Property-style checks

    /// Tiny deterministic LCG (Knuth's MMIX constants); no system randomness.
    struct LCG {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
    }

    struct Local {
        let year: Int64, month: Int, day: Int, hour: Int, minute: Int, second: Int, weekday: Int
        init(_ t: Int64) {
            let days = GregorianCalendar.floorDiv(t, 86_400)
            let s = Int(t - days * 86_400)
            (year, month, day) = GregorianCalendar.civilFromDays(days)
            (hour, minute, second) = (s / 3600, s / 60 % 60, s % 60)
            weekday = CronExpression.weekday(days: days)
        }
    }

    /// Each case: expression, an independently written predicate, and the grid (period, phase) on
    /// which every possible match lies, so brute force only has to visit grid points.
    static let propertyCases: [(String, @Sendable (Local) -> Bool, Int64, Int64)] = [
        ("0 0 * * * ?", { $0.minute == 0 && $0.second == 0 }, 3600, 0),
        ("0 */15 * * * ?", { $0.minute % 15 == 0 && $0.second == 0 }, 900, 0),
        ("0 0 6,18 * * ?", { ($0.hour == 6 || $0.hour == 18) && $0.minute == 0 && $0.second == 0 }, 43_200, 21_600),
        ("30 5 3 ? * MON-FRI", { (2...6).contains($0.weekday) && $0.hour == 3 && $0.minute == 5 && $0.second == 30 },
         86_400, 3 * 3600 + 5 * 60 + 30),
        ("0 0 0 31 * ?", { $0.day == 31 && $0.hour == 0 && $0.minute == 0 && $0.second == 0 }, 86_400, 0),
        ("0 0 12 1 JAN,JUL ?", { [1, 7].contains($0.month) && $0.day == 1 && $0.hour == 12 && $0.minute == 0 && $0.second == 0 },
         86_400, 43_200),
    ]

    @Test func nextFireIsTheFirstMatchAfterStart() throws {
        var rng = LCG(state: 0x5EED)
        let from: Int64 = 946_684_800                                // 2000-01-01
        let span: Int64 = 3_786_912_000 - from                       // up to 2090-01-01
        for (text, matches, period, phase) in Self.propertyCases {
            let c = try cron(text)
            for i in 0..<200 {
                var t = from + Int64(rng.next()) % span
                if i % 4 == 0 { t -= (t - phase) % period }            // sometimes start exactly on a fire time
                let fire = try #require(c.nextFire(after: t), "\(text) after \(t)")
                #expect(fire > t)
                #expect(matches(Local(fire)), "\(text): \(fire) does not match")
                // Brute force: no grid point strictly between t and fire may match.
                var g = t + 1 + ((phase - (t + 1)) % period + period) % period
                while g < fire {
                    #expect(!matches(Local(g)), "\(text): skipped \(g) between \(t) and \(fire)")
                    g += period
                }
            }
        }
    }

    // MARK: Calendar

    @Test func civilDatesRoundTrip() {
        var expected = (year: Int64(1970), month: 1, day: 1)
        var leapDays = 0
        let last = GregorianCalendar.daysFromCivil(year: 2099, month: 12, day: 31)
        for days in 0...last {
            let date = GregorianCalendar.civilFromDays(days)
            #expect(date == expected, "day \(days)")
            #expect(GregorianCalendar.daysFromCivil(year: date.year, month: date.month, day: date.day) == days)
            if date.month == 2 && date.day == 29 { leapDays += 1 }
            // Advance the expected date by hand, independent of the conversion under test.
            expected.day += 1
            if expected.day > GregorianCalendar.daysInMonth(year: expected.year, month: expected.month) {
                (expected.day, expected.month) = (1, expected.month + 1)
                if expected.month > 12 { (expected.month, expected.year) = (1, expected.year + 1) }
            }
        }
        #expect(last == 4_102_358_400 / 86_400)
        #expect(leapDays == 32)                                       // 1972...2096, 2000 included
    }

    @Test func calendarAnchors() {
        #expect(GregorianCalendar.daysFromCivil(year: 2000, month: 2, day: 29) == 951_782_400 / 86_400)
        #expect(GregorianCalendar.civilFromDays(-1) == (1969, 12, 31))
        #expect(GregorianCalendar.civilFromDays(4_233_686_400 / 86_400) == (2104, 2, 29))
        #expect(GregorianCalendar.daysInMonth(year: 1900, month: 2) == 28)
        #expect(GregorianCalendar.daysInMonth(year: 2000, month: 2) == 29)
        #expect(GregorianCalendar.daysInMonth(year: 2100, month: 2) == 28)
        #expect(CronExpression.weekday(days: 0) == 5)                 // 1970-01-01 was a Thursday
        #expect(CronExpression.weekday(days: -1) == 4)                // 1969-12-31 was a Wednesday
        #expect(CronExpression.weekday(days: 1_795_240_800 / 86_400) == 7)   // 2026-11-21 is a Saturday
        #expect(GregorianCalendar.utcTimestamp(milliseconds: 1_795_240_800_999) == "2026-11-21T06:00:00Z")
        #expect(GregorianCalendar.utcTimestamp(milliseconds: 951_827_696_000) == "2000-02-29T12:34:56Z")
        #expect(GregorianCalendar.utcTimestamp(milliseconds: -1) == "1969-12-31T23:59:59Z")
    }
}
