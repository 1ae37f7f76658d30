import Foundation

/// A `Decoder` that records what a type's `init(from:)` asks for (keys, their types, whether they
/// may be absent), handing it placeholder values: how ``JSONSchemas`` derives a model's schema
/// without macros or a value to look at.
///
/// Recording happens for the probed type only: the nested models it decodes are built from
/// placeholders by probes that record nothing (their own schemas are derived separately, as
/// components).
final class SchemaProbe: Decoder {
    /// One key the type asked for.
    struct Field {
        var key: String
        /// nil for a nested container (the type decodes it by hand): described as anything.
        var type: Any.Type?
        var required: Bool
    }

    /// What the type asked for.
    enum Shape {
        /// Nothing yet (a type without stored properties); the fields are empty.
        case none([Field])
        case keyed([Field])
        case array
        /// One value of this type (`singleValueContainer().decode(T.self)`).
        case single(Any.Type)
    }

    private(set) var shape: Shape = .none([])
    let recording: Bool
    let depth: Int
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]

    init(recording: Bool, depth: Int = 0) {
        self.recording = recording
        self.depth = depth
    }

    func record(_ key: any CodingKey, _ type: Any.Type?, required: Bool) {
        guard recording else { return }
        var fields: [Field] = []
        if case .keyed(let existing) = shape { fields = existing }
        // A key asked for twice (decodeIfPresent, then decode) counts once, as the first asked.
        guard !fields.contains(where: { $0.key == key.stringValue }) else { return }
        fields.append(Field(key: key.stringValue, type: type, required: required))
        shape = .keyed(fields)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        if recording, case .none = shape { shape = .keyed([]) }
        return KeyedDecodingContainer(KeyedProbe<Key>(probe: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        if recording { shape = .array }
        return EmptyUnkeyedProbe(codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleValueProbe(probe: self)
    }

    /// A placeholder `T`: a zero, an empty string, the first case, or a model built from
    /// placeholders by a probe that records nothing.
    func placeholder<T: Decodable>(_ type: T.Type) throws -> T {
        if let value = Self.knownPlaceholder(type) { return value }
        if let cases = (type as? any CaseIterable.Type).map({ Self.firstCase(of: $0) }), let first = cases as? T {
            return first
        }
        // Deeper than any real model nests: a type that contains itself without an optional
        // or a collection in between, which no JSON could end.
        guard depth < 32 else {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "\(T.self) contains itself with no way to end"))
        }
        return try T(from: SchemaProbe(recording: false, depth: depth + 1))
    }

    private static func firstCase(of type: any CaseIterable.Type) -> Any? {
        func first<C: CaseIterable>(_: C.Type) -> Any? { C.allCases.first }
        return first(type)
    }

    private static func knownPlaceholder<T>(_ type: T.Type) -> T? {
        let value: Any? = switch type {
        case is String.Type: ""
        case is Bool.Type: false
        case is Int.Type: 0
        case is Int8.Type: Int8(0)
        case is Int16.Type: Int16(0)
        case is Int32.Type: Int32(0)
        case is Int64.Type: Int64(0)
        case is UInt.Type: UInt(0)
        case is UInt8.Type: UInt8(0)
        case is UInt16.Type: UInt16(0)
        case is UInt32.Type: UInt32(0)
        case is UInt64.Type: UInt64(0)
        case is Double.Type: 0.0
        case is Float.Type: Float(0)
        case is Decimal.Type: Decimal(0)
        case is Date.Type: Date(timeIntervalSince1970: 0)
        case is UUID.Type: UUID()
        case is Data.Type: Data()
        case is URL.Type: URL(string: "https://example.com")
        default: nil
        }
        return value as? T
    }
}

/// The keyed container of a ``SchemaProbe``: every key is there, and `decodeIfPresent` marks it
/// optional (and gives nil, so that optional recursion ends).
private struct KeyedProbe<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let probe: SchemaProbe
    var codingPath: [any CodingKey] { probe.codingPath }
    var allKeys: [Key] { [] }

    func contains(_ key: Key) -> Bool { true }
    func decodeNil(forKey key: Key) throws -> Bool { false }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        probe.record(key, type, required: true)
        return try probe.placeholder(type)
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        probe.record(key, type, required: false)
        return nil
    }

    // The standard library's own overloads, which synthesized `init(from:)`s call directly.
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decode(type as Bool.Type, key) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decode(type as String.Type, key) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decode(type as Double.Type, key) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try decode(type as Float.Type, key) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decode(type as Int.Type, key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try decode(type as Int8.Type, key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try decode(type as Int16.Type, key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decode(type as Int32.Type, key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decode(type as Int64.Type, key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try decode(type as UInt.Type, key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try decode(type as UInt8.Type, key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decode(type as UInt16.Type, key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decode(type as UInt32.Type, key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decode(type as UInt64.Type, key) }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { absent(type, key) }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { absent(type, key) }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { absent(type, key) }
    func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { absent(type, key) }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { absent(type, key) }
    func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { absent(type, key) }
    func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { absent(type, key) }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { absent(type, key) }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { absent(type, key) }
    func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { absent(type, key) }
    func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { absent(type, key) }
    func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { absent(type, key) }
    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { absent(type, key) }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { absent(type, key) }

    private func decode<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T {
        probe.record(key, type, required: true)
        return try probe.placeholder(type)
    }

    private func absent<T>(_ type: T.Type, _ key: Key) -> T? {
        probe.record(key, type, required: false)
        return nil
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        probe.record(key, nil, required: true)
        return KeyedDecodingContainer(KeyedProbe<NestedKey>(probe: SchemaProbe(recording: false, depth: probe.depth + 1)))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        probe.record(key, nil, required: true)
        return EmptyUnkeyedProbe(codingPath: codingPath)
    }

    func superDecoder() throws -> any Decoder { SchemaProbe(recording: false, depth: probe.depth + 1) }
    func superDecoder(forKey key: Key) throws -> any Decoder { SchemaProbe(recording: false, depth: probe.depth + 1) }
}

/// An array with nothing in it: a placeholder collection ends every recursion through it.
private struct EmptyUnkeyedProbe: UnkeyedDecodingContainer {
    var codingPath: [any CodingKey]
    var count: Int? { 0 }
    var isAtEnd: Bool { true }
    var currentIndex: Int { 0 }

    mutating func decodeNil() throws -> Bool { true }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { throw empty(type) }
    mutating func decode(_ type: Bool.Type) throws -> Bool { throw empty(type) }
    mutating func decode(_ type: String.Type) throws -> String { throw empty(type) }
    mutating func decode(_ type: Double.Type) throws -> Double { throw empty(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { throw empty(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { throw empty(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { throw empty(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { throw empty(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { throw empty(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { throw empty(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { throw empty(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { throw empty(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { throw empty(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { throw empty(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { throw empty(type) }

    private func empty(_ type: Any.Type) -> DecodingError {
        DecodingError.valueNotFound(type, .init(codingPath: codingPath, debugDescription: "a placeholder array is empty"))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        KeyedDecodingContainer(KeyedProbe<NestedKey>(probe: SchemaProbe(recording: false)))
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { self }
    mutating func superDecoder() throws -> any Decoder { SchemaProbe(recording: false) }
}

/// A single value: records its type (for a type that reads itself as one value) and gives a placeholder.
private struct SingleValueProbe: SingleValueDecodingContainer {
    let probe: SchemaProbe
    var codingPath: [any CodingKey] { probe.codingPath }

    /// The probed type itself is never an `Optional` (the schema unwraps those first); a
    /// placeholder optional is nil, which ends recursion through it.
    func decodeNil() -> Bool { !probe.recording }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try value(type) }
    func decode(_ type: Bool.Type) throws -> Bool { try value(type) }
    func decode(_ type: String.Type) throws -> String { try value(type) }
    func decode(_ type: Double.Type) throws -> Double { try value(type) }
    func decode(_ type: Float.Type) throws -> Float { try value(type) }
    func decode(_ type: Int.Type) throws -> Int { try value(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try value(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try value(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try value(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try value(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try value(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try value(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try value(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try value(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try value(type) }

    private func value<T: Decodable>(_ type: T.Type) throws -> T {
        probe.recordSingle(type)
        return try probe.placeholder(type)
    }
}

extension SchemaProbe {
    fileprivate func recordSingle(_ type: Any.Type) {
        guard recording else { return }
        shape = .single(type)
    }
}
