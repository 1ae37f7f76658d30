#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// ISO 8601 date-times as Python peers write and read them, without a formatter.
///
/// Foundation's `.iso8601` strategy rejects fractional seconds, which pydantic writes for every
/// `datetime` that has them (`2026-11-25T10:00:00.123456+00:00`), and its formatters are too slow
/// for a per-message path; this reads and writes the RFC 3339 profile directly.
public enum ISO8601Timestamp {
    /// Parses `YYYY-MM-DD`, optionally followed by `T` (or a space) and `hh:mm[:ss[.fraction]]`, and
    /// by `Z`, `±hh:mm`, `±hhmm` or `±hh`. Without an offset the time is taken as UTC (what a naive
    /// Python `datetime` means on a server that runs in UTC). Nil for anything else.
    public static func parse(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    static func parse(bytes: UnsafeBufferPointer<UInt8>) -> Date? {
        var index = 0
        func digits(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for offset in 0..<count {
                let byte = bytes[index + offset]
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            index += count
            return value
        }
        func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }
        guard let year = digits(4), take(UInt8(ascii: "-")), let month = digits(2), take(UInt8(ascii: "-")),
            let day = digits(2), (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year)
        else { return nil }
        var seconds = Double(daysFromCivil(year: year, month: month, day: day)) * 86_400
        guard index < bytes.count else { return Date(timeIntervalSince1970: seconds) }
        guard take(UInt8(ascii: "T")) || take(UInt8(ascii: "t")) || take(UInt8(ascii: " ")) else { return nil }
        guard let hour = digits(2), take(UInt8(ascii: ":")), let minute = digits(2), hour < 24, minute < 60 else { return nil }
        var second = 0
        var fraction = 0.0
        if take(UInt8(ascii: ":")) {
            guard let whole = digits(2), whole < 61 else { return nil }
            second = whole
            if take(UInt8(ascii: ".")) || take(UInt8(ascii: ",")) {
                var numerator = 0
                var scale = 1
                var count = 0
                while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                    // Digits past nanoseconds change nothing a Date can hold.
                    if count < 9 {
                        numerator = numerator * 10 + Int(bytes[index] - 48)
                        scale *= 10
                    }
                    count += 1
                    index += 1
                }
                guard count > 0 else { return nil }
                fraction = Double(numerator) / Double(scale)
            }
        }
        var offset = 0
        if index < bytes.count {
            if take(UInt8(ascii: "Z")) || take(UInt8(ascii: "z")) {
                offset = 0
            } else {
                let sign: Int
                if take(UInt8(ascii: "+")) {
                    sign = 1
                } else if take(UInt8(ascii: "-")) {
                    sign = -1
                } else {
                    return nil
                }
                guard let hours = digits(2), hours < 24 else { return nil }
                var minutes = 0
                if index < bytes.count {
                    _ = take(UInt8(ascii: ":"))
                    guard let value = digits(2), value < 60 else { return nil }
                    minutes = value
                }
                offset = sign * (hours * 3_600 + minutes * 60)
            }
        }
        guard index == bytes.count else { return nil }
        seconds += Double(hour * 3_600 + minute * 60 + second - offset)
        return Date(timeIntervalSince1970: seconds + fraction)
    }

    /// `date` in UTC, `YYYY-MM-DDThh:mm:ss[.fraction]Z`, with the fewest fractional digits (up
    /// to 9) that read back as the same `Date`: `2026-11-25T10:00:00.123456Z` for a time a Python
    /// peer sent with microseconds, nothing after the seconds for a whole second. pydantic reads
    /// every such form (it keeps microseconds).
    public static func format(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var whole = interval.rounded(.down)
        let fraction = interval - whole
        var ticks = 0
        var width = 0
        var scale = 1
        // The shortest fraction that parses back to this very Double (parse adds it the same way).
        for digits in 0...9 {
            let candidate = (fraction * Double(scale)).rounded()
            if whole + candidate / Double(scale) == interval || digits == 9 {
                ticks = Int(candidate)
                width = digits
                break
            }
            scale *= 10
        }
        if width > 0, ticks >= scale {
            whole += 1
            ticks -= scale
        }
        let total = Int(whole)
        var days = total / 86_400
        var secondOfDay = total % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = civil(fromDays: days)
        var text = ""
        text.reserveCapacity(28)
        func append(_ value: Int, width: Int) {
            let digits = String(value)
            if digits.count < width { text += String(repeating: "0", count: width - digits.count) }
            text += digits
        }
        append(year, width: 4)
        text += "-"
        append(month, width: 2)
        text += "-"
        append(day, width: 2)
        text += "T"
        append(secondOfDay / 3_600, width: 2)
        text += ":"
        append(secondOfDay / 60 % 60, width: 2)
        text += ":"
        append(secondOfDay % 60, width: 2)
        if ticks > 0 {
            var fraction = ticks
            while fraction % 10 == 0 {
                fraction /= 10
                width -= 1
            }
            text += "."
            append(fraction, width: width)
        }
        text += "Z"
        return text
    }

    private static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days-from-civil and its inverse: proleptic Gregorian, day 0 = 1970-01-01.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp + (mp < 10 ? 3 : -9)
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
