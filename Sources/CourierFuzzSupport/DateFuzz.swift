import Courier
import Foundation

/// `ISO8601Timestamp`, the date reader every JSON body with a `Date` goes through: any bytes
/// either read as a date or as nil, never a trap; a date it reads is written back in a form it
/// reads as the same instant; and every date written reads back exactly. (Past the year 9999 a
/// year has more than the four digits ISO 8601 reads: those dates are left out.)
enum DateFuzz {
    static func run(_ input: [UInt8], _ check: FuzzCheck) throws(FuzzFailure) {
        let text = String(decoding: input, as: UTF8.self)
        guard let date = ISO8601Timestamp.parse(text), date.timeIntervalSince1970 < 253_402_300_800 else { return }
        let written = ISO8601Timestamp.format(date)
        try check.require(ISO8601Timestamp.parse(written) == date, "'\(text)' read as \(date.timeIntervalSince1970), written '\(written)', which reads differently")
    }

    static func seeds(_ random: inout FuzzRandom) -> [[UInt8]] {
        [
            "2026-11-25T10:00:00.123456Z", "2026-11-25T12:00:00.123456+02:00", "2026-11-25T10:00:00",
            "2026-11-25", "2026-11-25 10:00:00,5-0330", "0001-01-01T00:00:00Z", "9999-12-31T23:59:60.999999999Z",
        ].map { Array($0.utf8) } + (0..<4).map { _ in (try? generate(&random)) ?? [] }
    }

    /// A date as a Python peer writes one (fraction and offset or not), checked to read back.
    static func generate(_ random: inout FuzzRandom) throws(FuzzFailure) -> [UInt8] {
        let seconds = Double(Int64.random(in: -5_000_000_000...9_000_000_000, using: &random)) + (random.oneIn(2) ? Double.random(in: 0..<1, using: &random) : 0)
        let date = Date(timeIntervalSince1970: seconds)
        let written = ISO8601Timestamp.format(date)
        let bytes = Array(written.utf8)
        let check = FuzzCheck(target: .date, input: bytes)
        try check.require(ISO8601Timestamp.parse(written) == date, "wrote \(seconds) as '\(written)', which reads differently")
        return bytes
    }
}
