#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How JSON bodies are written and read: key names, dates, decimals, or coders of your own.
///
/// The default writes keys as declared and dates as ISO 8601 in UTC with fractional seconds
/// (`2026-11-25T10:00:00.123456Z`), which pydantic reads; it reads every date form pydantic writes
/// (fractional seconds or none, `Z`, an offset such as `+02:00`, none, which is taken as UTC, a date
/// alone, Unix seconds), and decimals sent as strings (pydantic's `Decimal`) as well as numbers.
/// Every coding writes a `UUID` in lower case (RFC 9562's canonical form, as Python writes it;
/// Foundation's own is upper-case) and reads either case. For Python peers whose models use
/// snake_case fields, use ``python``, which also writes `Decimal` as a string so that pydantic
/// keeps every digit:
///
/// ```swift
/// let broker = RedisBroker(configuration, json: .python)          // every subscriber and publish
/// broker.subscriber("orders", options: SubscriberOptions(json: .python)) { … } // one subscriber
/// ```
public struct JSONCoding: Sendable {
    /// How property names become JSON keys.
    public enum KeyStyle: Sendable, Hashable {
        /// As declared in Swift (`orderID` stays `orderID`).
        case asDeclared
        /// snake_case, as Python models declare fields (`orderID` ↔ `order_id`).
        case snakeCase
    }

    /// How `Date` values are written. Reading accepts every one of these forms whatever is chosen.
    public enum DateStyle: Sendable, Hashable {
        /// ISO 8601 in UTC with the fewest fractional digits (up to 9) that read back as the same `Date`.
        case iso8601
        /// Seconds since 1970 as a JSON number.
        case secondsSince1970
        /// Milliseconds since 1970 as a JSON number.
        case millisecondsSince1970
    }

    /// How `Decimal` values are written. Reading accepts both whatever is chosen.
    public enum DecimalStyle: Sendable, Hashable {
        /// A JSON number with every digit (`1234567890.123456789`). Readers that parse numbers as
        /// doubles, pydantic among them, keep only about 17 significant digits of it.
        case number
        /// A JSON string with every digit and no exponent (`"1234567890.123456789"`, `"0.000001"`),
        /// as pydantic writes a `Decimal` and reads one exactly.
        case string
    }

    /// The coders used; shared, never mutated after creation.
    let encoder: JSONEncoder
    let decoder: JSONDecoder
    /// How `Decimal` values are written.
    public let decimals: DecimalStyle
    /// How dates are written; nil for coders of your own (documents describing the JSON then
    /// assume ISO 8601 strings).
    public let dateStyle: DateStyle?
    /// Whether this is ``default``: the broker then binds nothing per message.
    @usableFromInline let isDefault: Bool

    /// The coding JSON bodies are read and written with here: the subscriber's inside
    /// ``IncomingMessage/decode(as:)`` and while the broker encodes what is published. A custom
    /// ``MessageDecodable`` or ``MessageEncodable`` conformance that uses JSON can read it too.
    @TaskLocal public static var current: JSONCoding = .default

    /// Runs `body` with this coding as ``current``; binds nothing when it is ``default`` and
    /// ``current`` is too, as it is on every path that never chose a coding.
    @inlinable
    public func withCurrent<Result>(_ body: () throws -> Result) rethrows -> Result {
        if isDefault && JSONCoding.current.isDefault { return try body() }
        return try JSONCoding.$current.withValue(self, operation: body)
    }

    /// Keys as declared, pydantic-compatible dates, decimals as JSON numbers (read in either form).
    public static let `default` = JSONCoding(default: ())

    private init(default: Void) {
        let coders = Self.coders(keys: .asDeclared, dates: .iso8601)
        self.init(encoder: coders.encoder, decoder: coders.decoder, decimals: .number, dates: .iso8601, isDefault: true)
    }

    /// For Python (pydantic) peers: snake_case keys, pydantic-compatible dates, decimals written as
    /// strings with every digit (as pydantic writes them).
    public static let python = JSONCoding(keys: .snakeCase, decimals: .string)

    /// Coding with the given key, date and decimal styles.
    public init(keys: KeyStyle = .asDeclared, dates: DateStyle = .iso8601, decimals: DecimalStyle = .number) {
        let coders = Self.coders(keys: keys, dates: dates)
        self.init(encoder: coders.encoder, decoder: coders.decoder, decimals: decimals, dates: dates, isDefault: false)
    }

    private static func coders(keys: KeyStyle, dates: DateStyle) -> (encoder: JSONEncoder, decoder: JSONDecoder) {
        let encoder = JSONEncoder()
        let decoder = JSONDecoder()
        if keys == .snakeCase {
            encoder.keyEncodingStrategy = .convertToSnakeCase
            decoder.keyDecodingStrategy = .convertFromSnakeCase
        }
        switch dates {
        case .iso8601:
            encoder.dateEncodingStrategy = .custom { date, encoder in
                var container = encoder.singleValueContainer()
                try container.encode(ISO8601Timestamp.format(date))
            }
        case .secondsSince1970:
            encoder.dateEncodingStrategy = .secondsSince1970
        case .millisecondsSince1970:
            encoder.dateEncodingStrategy = .millisecondsSince1970
        }
        decoder.dateDecodingStrategy = .custom(Self.decodeDate)
        return (encoder, decoder)
    }

    /// Coding with coders of your own (a date formatter, a data strategy…). Configure them fully
    /// before handing them over: they are shared by every message and must not change afterwards.
    /// UUIDs are still written in lower case, and decimals as `decimals` says.
    public init(encoder: JSONEncoder, decoder: JSONDecoder, decimals: DecimalStyle = .number) {
        let dates: DateStyle? = switch encoder.dateEncodingStrategy {
        case .secondsSince1970: .secondsSince1970
        case .millisecondsSince1970: .millisecondsSince1970
        default: nil
        }
        self.init(encoder: encoder, decoder: decoder, decimals: decimals, dates: dates, isDefault: false)
    }

    private init(encoder: JSONEncoder, decoder: JSONDecoder, decimals: DecimalStyle, dates: DateStyle?, isDefault: Bool) {
        self.encoder = encoder
        self.decoder = decoder
        self.decimals = decimals
        self.dateStyle = dates
        self.isDefault = isDefault
    }

    /// Foundation's `convertToSnakeCase` rule: a word starts at an upper-case letter after a
    /// lower-case one or a digit, and at the last capital of a run followed by a lower-case letter
    /// (`orderID` → `order_id`, `URLValue` → `url_value`).
    package static func snakeCase(_ name: String) -> String {
        let characters = Array(name)
        var result = ""
        for (index, character) in characters.enumerated() {
            if character.isUppercase, index > 0 {
                let previous = characters[index - 1]
                let nextIsLower = index + 1 < characters.count && characters[index + 1].isLowercase
                if previous.isLowercase || previous.isNumber || (previous.isUppercase && nextIsLower) { result += "_" }
            }
            result += character.lowercased()
        }
        return result
    }

    /// How property names become keys: what documents describing the JSON (AsyncAPI) follow.
    public var keyStyle: KeyStyle {
        if case .convertToSnakeCase = encoder.keyEncodingStrategy { return .snakeCase }
        return .asDeclared
    }

    /// `value` as JSON: the encoder's output, with UUIDs in lower case and decimals as chosen.
    func encode<T: Encodable>(_ value: T) throws -> Data {
        try WireJSON.encode(value, with: encoder, decimals: decimals)
    }

    /// Reads every form pydantic and Foundation write: an ISO 8601 string (see ``ISO8601Timestamp``)
    /// or a number of seconds since 1970.
    @Sendable static func decodeDate(_ decoder: any Decoder) throws -> Date {
        let container = try decoder.singleValueContainer()
        if let seconds = try? container.decode(Double.self) {
            return Date(timeIntervalSince1970: seconds)
        }
        let text = try container.decode(String.self)
        guard let date = ISO8601Timestamp.parse(text) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "'\(text)' is not an ISO 8601 date-time (e.g. 2026-11-25T10:00:00.123456+00:00)"
            )
        }
        return date
    }
}
