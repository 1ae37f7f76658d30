#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Writes a value with a `JSONEncoder`, except two kinds of value that JSONEncoder writes in a form
/// Python peers read differently:
///
/// - `UUID`: Foundation writes it upper-case; RFC 9562's canonical form, and Python's `str(uuid)`,
///   is lower-case, and a service that keys by the string would see two ids. Always lower-case.
/// - `Decimal`: JSONEncoder writes a JSON number, which pydantic reads through a float (digits past
///   the 17th are lost); with ``JSONCoding/DecimalStyle/string`` it is written as a string with
///   every digit, as pydantic writes it.
///
/// JSONEncoder gives no hook for either (its strategies cover dates, data and keys only), so the
/// value is handed to it through ``WireEncoder``, which forwards every call to JSONEncoder's own
/// containers and intercepts only the values passed generically (`encode<T: Encodable>`): a UUID
/// or a Decimal is replaced by its text, and any other nested value passes on wrapped the same way.
/// Everything else (keys and their strategy, dates, data, floats, output formatting) is
/// JSONEncoder's. The cost, on any body, is one wrapper per nested value and container (measured
/// with -O: about +0.5 µs on a flat three-field struct of 2.5 µs, +25–35 % on a model with a nested
/// array); the lower-case UUID needs it on every body, since JSONEncoder has no hook for UUIDs.
enum WireJSON {
    static func encode<T: Encodable>(_ value: T, with encoder: JSONEncoder, decimals: JSONCoding.DecimalStyle) throws -> Data {
        switch try WireForm(value, decimals: decimals, codingPath: []) {
        case .asIs: return try encoder.encode(value)
        case .text(let text): return try encoder.encode(text)
        case .entries(let entries): return try encoder.encode(entries)
        case .nested: return try encoder.encode(WireValue(value: value, decimals: decimals))
        }
    }
}

/// How one value passed generically reaches JSONEncoder.
enum WireForm {
    /// As it is: JSONEncoder writes it as wanted (strings, numbers, dates and data by its strategies).
    case asIs
    /// As this string: a UUID in lower case, or a Decimal written as a string.
    case text(String)
    /// A dictionary, its values wrapped: JSONEncoder then still writes its keys as they are (a
    /// dictionary's keys are data, never converted by a key strategy such as snake_case).
    case entries([String: WireElement])
    /// A value of the caller's type, wrapped so its own nested values are intercepted too.
    case nested

    @inline(__always)
    init<T: Encodable>(_ value: T, decimals: JSONCoding.DecimalStyle, codingPath: @autoclosure () -> [any CodingKey]) throws {
        // Cheap metatype comparisons first: most generic values are nested models or arrays.
        if T.self == UUID.self {
            self = .text(Self.lowercased(value as! UUID))
        } else if T.self == Decimal.self {
            let decimal = value as! Decimal
            guard !decimal.isNaN else {
                // JSON has no NaN; JSONEncoder would write the bare word, which no parser reads.
                throw EncodingError.invalidValue(
                    decimal, EncodingError.Context(codingPath: codingPath(), debugDescription: "a NaN Decimal cannot be written as JSON")
                )
            }
            self = decimals == .string ? .text(decimal.description) : .asIs
        } else if T.self == String.self || T.self == Int.self || T.self == Double.self || T.self == Bool.self
            || T.self == Date.self || T.self == Data.self || T.self == URL.self
            || T.self == [String].self || T.self == [Int].self || T.self == [Double].self
        {
            self = .asIs
        } else if let dictionary = value as? any WireDictionary {
            self = .entries(dictionary.wireEntries(decimals: decimals))
        } else {
            self = .nested
        }
    }

    /// The canonical text of a UUID (RFC 9562): lower-case hex digits, written from its bytes.
    static func lowercased(_ uuid: UUID) -> String {
        withUnsafeBytes(of: uuid.uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { buffer in
                var index = 0
                for (position, byte) in bytes.enumerated() {
                    if position == 4 || position == 6 || position == 8 || position == 10 {
                        buffer[index] = UInt8(ascii: "-")
                        index += 1
                    }
                    buffer[index] = hexDigit(byte >> 4)
                    buffer[index + 1] = hexDigit(byte & 0xF)
                    index += 2
                }
                return index
            }
        }
    }

    @inline(__always)
    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? nibble + UInt8(ascii: "0") : nibble - 10 + UInt8(ascii: "a")
    }
}

/// A dictionary whose keys JSONEncoder writes as strings (String, Int or any
/// `CodingKeyRepresentable` keys), as Foundation does.
protocol WireDictionary {
    func wireEntries(decimals: JSONCoding.DecimalStyle) -> [String: WireElement]
}

extension Dictionary: WireDictionary where Key: CodingKeyRepresentable, Value: Encodable {
    func wireEntries(decimals: JSONCoding.DecimalStyle) -> [String: WireElement] {
        var entries = [String: WireElement](minimumCapacity: count)
        for (key, value) in self {
            entries[key.codingKey.stringValue] = WireElement(value: value, decimals: decimals)
        }
        return entries
    }
}

/// A dictionary's value, intercepted like any other.
struct WireElement: Encodable {
    let value: any Encodable
    let decimals: JSONCoding.DecimalStyle

    func encode(to encoder: any Encoder) throws {
        var container = WireSingleValueContainer(base: encoder.singleValueContainer(), decimals: decimals)
        try container.encode(value)
    }
}

/// A nested value whose own values pass through ``WireEncoder``.
struct WireValue<Value: Encodable>: Encodable {
    let value: Value
    let decimals: JSONCoding.DecimalStyle

    func encode(to encoder: any Encoder) throws {
        try value.encode(to: WireEncoder(base: encoder, decimals: decimals))
    }
}

/// JSONEncoder's encoder with its containers wrapped; see ``WireJSON``.
struct WireEncoder: Encoder {
    let base: any Encoder
    let decimals: JSONCoding.DecimalStyle

    var codingPath: [any CodingKey] { base.codingPath }
    var userInfo: [CodingUserInfoKey: Any] { base.userInfo }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(WireKeyedContainer(base: base.container(keyedBy: type), decimals: decimals))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        WireUnkeyedContainer(base: base.unkeyedContainer(), decimals: decimals)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        WireSingleValueContainer(base: base.singleValueContainer(), decimals: decimals)
    }
}

struct WireKeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    var base: KeyedEncodingContainer<Key>
    let decimals: JSONCoding.DecimalStyle

    var codingPath: [any CodingKey] { base.codingPath }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        switch try WireForm(value, decimals: decimals, codingPath: base.codingPath + [key]) {
        case .asIs: try base.encode(value, forKey: key)
        case .text(let text): try base.encode(text, forKey: key)
        case .entries(let entries): try base.encode(entries, forKey: key)
        case .nested: try base.encode(WireValue(value: value, decimals: decimals), forKey: key)
        }
    }

    mutating func encodeNil(forKey key: Key) throws { try base.encodeNil(forKey: key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { try base.encode(value, forKey: key) }
    mutating func encode(_ value: String, forKey key: Key) throws { try base.encode(value, forKey: key) }
    mutating func encode(_ value: Double, forKey key: Key) throws { try base.encode(value, forKey: key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { try base.encode(value, forKey: key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { try base.encode(value, forKey: key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { try base.encode(value, forKey: key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { try base.encode(value, forKey: key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { try base.encode(value, forKey: key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { try base.encode(value, forKey: key) }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    mutating func encode(_ value: Int128, forKey key: Key) throws { try base.encode(value, forKey: key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { try base.encode(value, forKey: key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { try base.encode(value, forKey: key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { try base.encode(value, forKey: key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { try base.encode(value, forKey: key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { try base.encode(value, forKey: key) }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    mutating func encode(_ value: UInt128, forKey key: Key) throws { try base.encode(value, forKey: key) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(WireKeyedContainer<NestedKey>(base: base.nestedContainer(keyedBy: keyType, forKey: key), decimals: decimals))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        WireUnkeyedContainer(base: base.nestedUnkeyedContainer(forKey: key), decimals: decimals)
    }

    mutating func superEncoder() -> any Encoder {
        WireEncoder(base: base.superEncoder(), decimals: decimals)
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        WireEncoder(base: base.superEncoder(forKey: key), decimals: decimals)
    }
}

struct WireUnkeyedContainer: UnkeyedEncodingContainer {
    var base: any UnkeyedEncodingContainer
    let decimals: JSONCoding.DecimalStyle

    var codingPath: [any CodingKey] { base.codingPath }
    var count: Int { base.count }

    mutating func encode<T: Encodable>(_ value: T) throws {
        switch try WireForm(value, decimals: decimals, codingPath: base.codingPath) {
        case .asIs: try base.encode(value)
        case .text(let text): try base.encode(text)
        case .entries(let entries): try base.encode(entries)
        case .nested: try base.encode(WireValue(value: value, decimals: decimals))
        }
    }

    mutating func encodeNil() throws { try base.encodeNil() }
    mutating func encode(_ value: Bool) throws { try base.encode(value) }
    mutating func encode(_ value: String) throws { try base.encode(value) }
    mutating func encode(_ value: Double) throws { try base.encode(value) }
    mutating func encode(_ value: Float) throws { try base.encode(value) }
    mutating func encode(_ value: Int) throws { try base.encode(value) }
    mutating func encode(_ value: Int8) throws { try base.encode(value) }
    mutating func encode(_ value: Int16) throws { try base.encode(value) }
    mutating func encode(_ value: Int32) throws { try base.encode(value) }
    mutating func encode(_ value: Int64) throws { try base.encode(value) }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    mutating func encode(_ value: Int128) throws { try base.encode(value) }
    mutating func encode(_ value: UInt) throws { try base.encode(value) }
    mutating func encode(_ value: UInt8) throws { try base.encode(value) }
    mutating func encode(_ value: UInt16) throws { try base.encode(value) }
    mutating func encode(_ value: UInt32) throws { try base.encode(value) }
    mutating func encode(_ value: UInt64) throws { try base.encode(value) }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    mutating func encode(_ value: UInt128) throws { try base.encode(value) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(WireKeyedContainer<NestedKey>(base: base.nestedContainer(keyedBy: keyType), decimals: decimals))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        WireUnkeyedContainer(base: base.nestedUnkeyedContainer(), decimals: decimals)
    }

    mutating func superEncoder() -> any Encoder {
        WireEncoder(base: base.superEncoder(), decimals: decimals)
    }
}

struct WireSingleValueContainer: SingleValueEncodingContainer {
    var base: any SingleValueEncodingContainer
    let decimals: JSONCoding.DecimalStyle

    var codingPath: [any CodingKey] { base.codingPath }

    mutating func encode<T: Encodable>(_ value: T) throws {
        switch try WireForm(value, decimals: decimals, codingPath: base.codingPath) {
        case .asIs: try base.encode(value)
        case .text(let text): try base.encode(text)
        case .entries(let entries): try base.encode(entries)
        case .nested: try base.encode(WireValue(value: value, decimals: decimals))
        }
    }

    mutating func encodeNil() throws { try base.encodeNil() }
    mutating func encode(_ value: Bool) throws { try base.encode(value) }
    mutating func encode(_ value: String) throws { try base.encode(value) }
    mutating func encode(_ value: Double) throws { try base.encode(value) }
    mutating func encode(_ value: Float) throws { try base.encode(value) }
    mutating func encode(_ value: Int) throws { try base.encode(value) }
    mutating func encode(_ value: Int8) throws { try base.encode(value) }
    mutating func encode(_ value: Int16) throws { try base.encode(value) }
    mutating func encode(_ value: Int32) throws { try base.encode(value) }
    mutating func encode(_ value: Int64) throws { try base.encode(value) }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    mutating func encode(_ value: Int128) throws { try base.encode(value) }
    mutating func encode(_ value: UInt) throws { try base.encode(value) }
    mutating func encode(_ value: UInt8) throws { try base.encode(value) }
    mutating func encode(_ value: UInt16) throws { try base.encode(value) }
    mutating func encode(_ value: UInt32) throws { try base.encode(value) }
    mutating func encode(_ value: UInt64) throws { try base.encode(value) }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    mutating func encode(_ value: UInt128) throws { try base.encode(value) }
}
