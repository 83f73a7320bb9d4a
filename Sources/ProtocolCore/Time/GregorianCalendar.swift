// Calendar arithmetic on the proleptic Gregorian calendar, shared by the cron schedules of retention
// (StoreCore) and the timestamps in client-facing texts (the broker machine). Pure integer code: no
// Foundation, no time zones — callers add their own offset to get local time.

/// Days, dates and UTC timestamps, with no dependency on a clock or a time-zone database.
public enum GregorianCalendar {
    /// Floor division: rounds toward negative infinity so times before 1970 land on the right day.
    public static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// Gregorian leap years: every fourth, except centuries not divisible by 400.
    public static func isLeapYear(_ year: Int64) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    /// 28...31 days of `month` (1...12) in `year`.
    public static func daysInMonth(year: Int64, month: Int) -> Int {
        switch month {
        case 2: return isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 for a proleptic Gregorian date.
    ///
    /// The year is taken to start on March 1, so the leap day is the last day of its year and the
    /// month lengths from March on repeat the pattern 31,30,31,30,31 — which `(153 * m + 2) / 5`
    /// reproduces. Whole 400-year eras hold exactly 146_097 days, so only the year within the era
    /// needs the leap rules.
    public static func daysFromCivil(year: Int64, month: Int, day: Int) -> Int64 {
        let marchYear = month <= 2 ? year - 1 : year
        let era = floorDiv(marchYear, 400)
        let yearOfEra = marchYear - era * 400                        // 0...399
        let monthFromMarch = Int64((month + 9) % 12)                 // March = 0 ... February = 11
        let dayOfYear = (153 * monthFromMarch + 2) / 5 + Int64(day) - 1   // 0...365
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        // 719_468 = days from 0000-03-01 (the start of era 0) to 1970-01-01.
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The inverse of ``daysFromCivil(year:month:day:)``.
    public static func civilFromDays(_ days: Int64) -> (year: Int64, month: Int, day: Int) {
        let shifted = days + 719_468
        let era = floorDiv(shifted, 146_097)
        let dayOfEra = shifted - era * 146_097                       // 0...146_096
        // Remove the leap days seen so far (one per 4 years, less one per century, plus the era's
        // final day) so that dividing by 365 gives the year within the era.
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153                // inverts (153 * m + 2) / 5
        let day = Int(dayOfYear - (153 * monthFromMarch + 2) / 5 + 1)
        let month = Int(monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9)
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }
}

extension GregorianCalendar {
    /// `milliseconds` since the Unix epoch as an ISO 8601 UTC timestamp to the second,
    /// `2026-03-01T14:05:09Z`: what a client's error text shows, so it can be matched against the
    /// broker's log.
    public static func utcTimestamp(milliseconds: Int64) -> String {
        let seconds = floorDiv(milliseconds, 1000)
        let days = floorDiv(seconds, 86_400)
        let secondOfDay = Int(seconds - days * 86_400)
        let (year, month, day) = civilFromDays(days)
        func padded(_ n: Int64, _ width: Int) -> String {
            let digits = "\(n)"
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let date = "\(padded(year, 4))-\(padded(Int64(month), 2))-\(padded(Int64(day), 2))"
        let hour = padded(Int64(secondOfDay / 3600), 2)
        let time = "\(hour):\(padded(Int64(secondOfDay / 60 % 60), 2)):\(padded(Int64(secondOfDay % 60), 2))"
        return date + "T" + time + "Z"
    }
}
