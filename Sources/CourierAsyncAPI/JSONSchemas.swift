public import Courier
import Foundation
import NIOCore

/// A type that gives the JSON Schema of its messages itself, instead of the one derived from its
/// `init(from:)`: for types the derivation cannot probe (an `init(from:)` that rejects the
/// placeholder values it is given, a custom ``MessageDecodable`` conformance), or to say more
/// than the types do (formats, limits, descriptions).
///
/// ```swift
/// extension Price: JSONSchemaDescribing {
///     static var jsonSchema: JSONValue { ["type": "string", "pattern": "^[0-9]+\\.[0-9]{2}$"] }
/// }
/// ```
public protocol JSONSchemaDescribing {
    /// The schema (JSON Schema draft 7, as AsyncAPI uses) of the type's JSON. It becomes a
    /// component named after the type.
    static var jsonSchema: JSONValue { get }
}

/// Why a payload's schema could not be derived.
public struct AsyncAPISchemaError: Error, CustomStringConvertible {
    /// The Swift type.
    public var typeName: String
    /// What went wrong.
    public var reason: String

    public var description: String {
        "cannot describe \(typeName) in an AsyncAPI document: \(reason). Adopt JSONSchemaDescribing to give its schema yourself"
    }
}

/// The JSON Schemas of a document's payloads, derived from Swift types and gathered as
/// components (`components/schemas`).
///
/// Models (any `Decodable` type) are probed without macros: a decoder that records the keys and
/// types the type's `init(from:)` asks for (`decodeIfPresent` makes a field optional), handing it
/// placeholder values. Foundation types are described as ``JSONCoding`` writes them: `Date` as a
/// `date-time` string (a number for the epoch styles), `UUID` as `uuid`, `Decimal` as pydantic
/// does (`anyOf` number and string), `Data` and bytes as `binary`, `URL` as `uri`; string and
/// integer `CaseIterable` enums as `enum`; keys in snake_case under ``JSONCoding/python``.
/// Models, enums and self-described types become components named after the type, which
/// makes recursive types `$ref`s to themselves.
public struct JSONSchemas {
    /// The named schemas gathered so far.
    public private(set) var components: [String: JSONValue] = [:]
    /// How bodies are written: keys and dates follow it.
    public let coding: JSONCoding
    /// Components being derived: a reference to one of them is recursion.
    private var inProgress: Set<String> = []

    public init(coding: JSONCoding = .default) {
        self.coding = coding
    }

    /// The schema of `type`'s JSON: inline for a primitive, a `$ref` into ``components`` for a
    /// model, an enum or a self-described type.
    ///
    /// - Throws: ``AsyncAPISchemaError`` for a type that cannot be probed.
    public mutating func schema(for type: Any.Type) throws -> JSONValue {
        if let optional = type as? any OptionalSchema.Type {
            return Self.nullable(try schema(for: optional.wrappedSchemaType))
        }
        if let wrapper = type as? any PayloadWrapper.Type {
            return try schema(for: wrapper.payloadType)
        }
        if let primitive = primitive(type) {
            return primitive
        }
        if let described = type as? any JSONSchemaDescribing.Type {
            return component(named: Self.name(of: type)) { _ in described.jsonSchema }
        }
        if let array = type as? any ArraySchema.Type {
            return ["type": "array", "items": try schema(for: array.elementSchemaType)]
        }
        if let dictionary = type as? any DictionarySchema.Type {
            guard dictionary.keySchemaType == String.self else {
                throw AsyncAPISchemaError(typeName: Self.name(of: type), reason: "JSON objects have string keys only")
            }
            return ["type": "object", "additionalProperties": try schema(for: dictionary.valueSchemaType)]
        }
        if let values = Self.enumValues(type) {
            let kind: JSONValue = values.allSatisfy { $0.string != nil } ? "string" : "integer"
            return component(named: Self.name(of: type)) { _ in
                ["title": .string(Self.name(of: type)), "type": kind, "enum": .array(values)]
            }
        }
        guard let decodable = type as? any Decodable.Type else {
            throw AsyncAPISchemaError(typeName: Self.name(of: type), reason: "it is not Decodable, so its JSON cannot be probed")
        }
        let name = Self.name(of: type)
        if inProgress.contains(name) || components[name] != nil {
            return Self.reference(name)
        }
        inProgress.insert(name)
        defer { inProgress.remove(name) }
        let probe = SchemaProbe(recording: true)
        do {
            _ = try decodable.init(from: probe)
        } catch {
            throw AsyncAPISchemaError(
                typeName: name,
                reason: "its init(from:) rejected the placeholder values the schema is derived with (\(error))"
            )
        }
        switch probe.shape {
        case .single(let value):
            // A type that reads itself as one value (a wrapper around a string, say).
            return try schema(for: value)
        case .array:
            return ["type": "array", "items": [:]]
        case .keyed(let fields), .none(let fields):
            var properties: [String: JSONValue] = [:]
            var required: [JSONValue] = []
            for field in fields {
                let key = coding.keyStyle == .snakeCase ? JSONCoding.snakeCase(field.key) : field.key
                var property = try field.type.map { try schema(for: $0) } ?? [:]
                if !field.required {
                    property = Self.nullable(property)
                }
                property = Self.titled(property, Self.title(ofKey: key), optional: !field.required)
                properties[key] = property
                if field.required { required.append(.string(key)) }
            }
            var model: [String: JSONValue] = ["title": .string(name), "type": "object", "properties": .object(properties)]
            if !required.isEmpty { model["required"] = .array(required) }
            components[name] = .object(model)
            return Self.reference(name)
        }
    }

    // MARK: - Building blocks

    mutating func setComponent(_ name: String, _ schema: JSONValue) {
        components[name] = schema
    }

    private mutating func component(named name: String, _ make: (inout Self) throws -> JSONValue) rethrows -> JSONValue {
        if components[name] == nil {
            components[name] = try make(&self)
        }
        return Self.reference(name)
    }

    static func reference(_ name: String) -> JSONValue {
        ["$ref": .string("#/components/schemas/\(name)")]
    }

    /// `schema` or null, as pydantic writes an optional field.
    static func nullable(_ schema: JSONValue) -> JSONValue {
        ["anyOf": [schema, ["type": "null"]]]
    }

    /// A property's schema with pydantic's title (and `default: null` for an optional one);
    /// a bare reference stays bare, as pydantic leaves it.
    private static func titled(_ schema: JSONValue, _ title: String, optional: Bool) -> JSONValue {
        guard var members = schema.object, members["$ref"] == nil else { return schema }
        members["title"] = .string(title)
        if optional { members["default"] = .null }
        return .object(members)
    }

    /// pydantic's title for a field: `placed_at` and `placedAt` both give `Placed At`.
    static func title(ofKey key: String) -> String {
        var words: [String] = []
        var current = ""
        for character in key {
            if character == "_" || character == "-" || character == " " {
                if !current.isEmpty { words.append(current) }
                current = ""
            } else if character.isUppercase, let last = current.last, last.isLowercase || last.isNumber {
                words.append(current)
                current = String(character)
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words.map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: " ")
    }

    /// The component name of a type: its name as Swift prints it, without module or generic
    /// punctuation that JSON pointers and AsyncAPI keys do not like.
    static func name(of type: Any.Type) -> String {
        String(describing: type).map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" }.reduce(into: "") { $0.append($1) }
    }

    private func primitive(_ type: Any.Type) -> JSONValue? {
        switch type {
        case is String.Type, is Substring.Type, is Character.Type: return ["type": "string"]
        case is Bool.Type: return ["type": "boolean"]
        case is Int.Type, is Int8.Type, is Int16.Type, is Int32.Type, is Int64.Type,
            is UInt.Type, is UInt8.Type, is UInt16.Type, is UInt32.Type, is UInt64.Type:
            return ["type": "integer"]
        case is Double.Type, is Float.Type: return ["type": "number"]
        case is Decimal.Type: return ["anyOf": [["type": "number"], ["type": "string"]]]
        case is UUID.Type: return ["type": "string", "format": "uuid"]
        case is URL.Type: return ["type": "string", "format": "uri"]
        case is Data.Type, is ByteBuffer.Type, is [UInt8].Type: return ["type": "string", "format": "binary"]
        case is Date.Type:
            switch coding.dateStyle {
            case .secondsSince1970, .millisecondsSince1970: return ["type": "number"]
            case .iso8601, nil: return ["type": "string", "format": "date-time"]
            }
        case is IncomingMessage.Type: return [:]  // the raw message: anything
        default: return nil
        }
    }

    /// The raw values of a `CaseIterable` enum with `String` or `Int` raw values.
    private static func enumValues(_ type: Any.Type) -> [JSONValue]? {
        guard let cases = (type as? any CaseIterable.Type)?.anyCases, !cases.isEmpty else { return nil }
        var values: [JSONValue] = []
        for value in cases {
            switch (value as? any RawRepresentable)?.rawValue {
            case let text as String: values.append(.string(text))
            case let number as Int: values.append(.integer(number))
            default: return nil
            }
        }
        return values
    }
}

// MARK: - What a type is made of

/// `Optional`, seen through an existential.
protocol OptionalSchema {
    static var wrappedSchemaType: Any.Type { get }
}

extension Optional: OptionalSchema {
    static var wrappedSchemaType: Any.Type { Wrapped.self }
}

/// `Array` (but bytes, which are a primitive), seen through an existential.
protocol ArraySchema {
    static var elementSchemaType: Any.Type { get }
}

extension Array: ArraySchema {
    static var elementSchemaType: Any.Type { Element.self }
}

/// `Dictionary`, seen through an existential.
protocol DictionarySchema {
    static var keySchemaType: Any.Type { get }
    static var valueSchemaType: Any.Type { get }
}

extension Dictionary: DictionarySchema {
    static var keySchemaType: Any.Type { Key.self }
    static var valueSchemaType: Any.Type { Value.self }
}

/// Courier's body wrappers, whose payload is the wrapped value.
protocol PayloadWrapper {
    static var payloadType: Any.Type { get }
}

extension JSON: PayloadWrapper {
    static var payloadType: Any.Type { Value.self }
}

extension Response: PayloadWrapper {
    static var payloadType: Any.Type { Body.self }
}

extension CaseIterable {
    /// The cases, through an existential.
    fileprivate static var anyCases: [Any] { allCases.map { $0 } }
}
