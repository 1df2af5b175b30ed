/// Unix milliseconds as ISO-8601 UTC text with milliseconds, `2026-11-25T12:00:00.123Z`, and back: as logs,
/// API responses and the SQLite store write times.
///
/// Pure integer arithmetic on the proleptic Gregorian calendar (no `gmtime`), so every `Int64` formats
/// and every millisecond of years 0000…9999 round-trips exactly.
package enum ISO8601Timestamp {
    /// `0000-01-01T00:00:00.000Z`, the earliest time with a four-digit year.
    package static let minFourDigitYearMilliseconds: Int64 = -62_167_219_200_000
    /// `9999-12-31T23:59:59.999Z`, the latest time with a four-digit year.
    package static let maxFourDigitYearMilliseconds: Int64 = 253_402_300_799_999

    private static let millisecondsPerDay: Int64 = 86_400_000

    /// The text of `milliseconds`. Years 0000…9999 are four digits, so that text order is time order there;
    /// later years take the digits they need (`10000-01-01T…`), earlier ones a `-` (`-0001-12-31T…`, ISO
    /// 8601's expanded form, year 0 being 1 BC).
    package static func format(milliseconds: Int64) -> String {
        var (days, msOfDay) = milliseconds.quotientAndRemainder(dividingBy: millisecondsPerDay)
        if msOfDay < 0 {
            days -= 1
            msOfDay += millisecondsPerDay
        }
        let (year, month, day) = civil(fromDays: days)

        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        func append(_ value: Int64, width: Int) {
            let digits = String(value).utf8
            bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: max(0, width - digits.count)))
            bytes.append(contentsOf: digits)
        }
        if year < 0 { bytes.append(UInt8(ascii: "-")) }
        append(abs(year), width: 4)  // |year| < 300 million: no overflow
        bytes.append(UInt8(ascii: "-"))
        append(month, width: 2)
        bytes.append(UInt8(ascii: "-"))
        append(day, width: 2)
        bytes.append(UInt8(ascii: "T"))
        append(msOfDay / 3_600_000, width: 2)
        bytes.append(UInt8(ascii: ":"))
        append(msOfDay / 60_000 % 60, width: 2)
        bytes.append(UInt8(ascii: ":"))
        append(msOfDay / 1_000 % 60, width: 2)
        bytes.append(UInt8(ascii: "."))
        append(msOfDay % 1_000, width: 3)
        bytes.append(UInt8(ascii: "Z"))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Unix milliseconds of an ISO-8601 UTC timestamp with a four-digit year, or `nil` if `text` is not one.
    ///
    /// Accepts what ``format(milliseconds:)`` writes, and also what `sqlite3` date functions write for
    /// manual edits: a space instead of `T`, no or any number of fraction digits (beyond milliseconds
    /// truncated), no `Z`.
    package static func parse(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ width: Int) -> Int64? {
            guard index + width <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[index..<(index + width)] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            index += width
            return value
        }
        func expect(_ allowed: UInt8...) -> Bool {
            guard index < bytes.count, allowed.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect(UInt8(ascii: "-")),
            let month = number(2), expect(UInt8(ascii: "-")),
            let day = number(2), expect(UInt8(ascii: "T"), UInt8(ascii: " ")),
            let hour = number(2), expect(UInt8(ascii: ":")),
            let minute = number(2), expect(UInt8(ascii: ":")),
            let second = number(2)
        else { return nil }

        var millisecond: Int64 = 0
        if expect(UInt8(ascii: ".")) {
            var digits = 0
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                if digits < 3 { millisecond = millisecond * 10 + Int64(bytes[index] - UInt8(ascii: "0")) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 3) { millisecond *= 10 }
        }
        _ = expect(UInt8(ascii: "Z"))
        guard index == bytes.count,
            (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day),
            hour < 24, minute < 60, second < 60
        else { return nil }

        let days = self.days(fromCivil: year, month, day)
        return days * millisecondsPerDay + ((hour * 60 + minute) * 60 + second) * 1_000 + millisecond
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let quotient = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient
    }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    private static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDivide(y, 400)
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    private static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
