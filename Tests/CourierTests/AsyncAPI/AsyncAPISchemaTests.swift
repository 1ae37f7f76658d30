import Courier
@testable import CourierAsyncAPI
import Foundation
import NIOCore
import Testing

/// Payload schemas derived from Swift types (issue 25): what pydantic writes for the same model.
@Suite("AsyncAPI: JSON Schemas from Swift types")
struct AsyncAPISchemaTests {
    enum Status: String, Codable, CaseIterable { case placed, paid, shipped }
    enum Priority: Int, Codable, CaseIterable { case low = 1, high = 2 }

    struct Address: Codable {
        var street: String
        var city: String
    }

    struct Everything: Codable {
        var id: Int
        var count: UInt16
        var ratio: Double
        var flag: Bool
        var placedAt: Date
        var total: Decimal
        var reference: UUID
        var attachment: Data
        var link: URL
        var status: Status
        var priority: Priority
        var note: String?
        var address: Address
        var previous: Address?
        var tags: [String]
        var lines: [Address]
        var metadata: [String: Int]
    }

    /// A tree: children of its own type, and an optional parent.
    final class Category: Codable {
        var name: String
        var children: [Category]
        var parent: Category?
    }

    /// Rejects what a probe hands it: an empty name.
    struct Validated: Decodable {
        var name: String
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            guard !name.isEmpty else {
                throw DecodingError.dataCorruptedError(forKey: .name, in: container, debugDescription: "a name is required")
            }
        }
        enum CodingKeys: String, CodingKey { case name }
    }

    struct Cents: Codable, JSONSchemaDescribing {
        var value: Int
        static var jsonSchema: JSONValue { ["type": "integer", "minimum": 0, "description": "An amount in cents"] }
    }

    struct Wrapped: Codable {
        var raw: String
        init(from decoder: any Decoder) throws { raw = try decoder.singleValueContainer().decode(String.self) }
    }

    @Test("every field kind: integers, numbers, booleans, Foundation types, enums, optionals, nested models, arrays and maps")
    func everyKind() throws {
        var schemas = JSONSchemas()
        #expect(try schemas.schema(for: Everything.self) == ["$ref": "#/components/schemas/Everything"])
        let model = try #require(schemas.components["Everything"])
        let properties = try #require(model["properties"]?.object)
        func property(_ name: String) -> JSONValue? {
            // The title is pydantic's; compare the rest.
            guard var members = properties[name]?.object else { return properties[name] }
            members["title"] = nil
            members["default"] = nil
            return .object(members)
        }
        #expect(property("id") == ["type": "integer"])
        #expect(property("count") == ["type": "integer"])
        #expect(property("ratio") == ["type": "number"])
        #expect(property("flag") == ["type": "boolean"])
        #expect(property("placedAt") == ["type": "string", "format": "date-time"])
        #expect(property("total") == ["anyOf": [["type": "number"], ["type": "string"]]])
        #expect(property("reference") == ["type": "string", "format": "uuid"])
        #expect(property("attachment") == ["type": "string", "format": "binary"])
        #expect(property("link") == ["type": "string", "format": "uri"])
        #expect(property("status") == ["$ref": "#/components/schemas/Status"])
        #expect(schemas.components["Status"] == ["title": "Status", "type": "string", "enum": ["placed", "paid", "shipped"]])
        #expect(schemas.components["Priority"] == ["title": "Priority", "type": "integer", "enum": [1, 2]])
        #expect(property("note") == ["anyOf": [["type": "string"], ["type": "null"]]])
        #expect(properties["note"]?["default"] == .null, "an optional field defaults to null, as pydantic writes it")
        #expect(property("address") == ["$ref": "#/components/schemas/Address"])
        #expect(property("previous") == ["anyOf": [["$ref": "#/components/schemas/Address"], ["type": "null"]]])
        #expect(property("tags") == ["type": "array", "items": ["type": "string"]])
        #expect(property("lines") == ["type": "array", "items": ["$ref": "#/components/schemas/Address"]])
        #expect(property("metadata") == ["type": "object", "additionalProperties": ["type": "integer"]])
        #expect(properties["placedAt"]?["title"] == "Placed At")
        let required = Set(try #require(model["required"]?.array).compactMap(\.string))
        #expect(required == Set(properties.keys).subtracting(["note", "previous"]))
        #expect(schemas.components["Address"]?["required"] == ["street", "city"])
    }

    @Test("recursive types are references to their own component")
    func recursive() throws {
        var schemas = JSONSchemas()
        _ = try schemas.schema(for: Category.self)
        let properties = try #require(schemas.components["Category"]?["properties"]?.object)
        #expect(properties["children"]?["items"] == ["$ref": "#/components/schemas/Category"])
        #expect(properties["parent"]?["anyOf"] == [["$ref": "#/components/schemas/Category"], ["type": "null"]])
    }

    @Test("JSONCoding.python: snake_case keys; epoch date styles are numbers")
    func codingStyles() throws {
        var python = JSONSchemas(coding: .python)
        _ = try python.schema(for: Everything.self)
        let keys = Set(try #require(python.components["Everything"]?["properties"]?.object).keys)
        #expect(keys.contains("placed_at") && !keys.contains("placedAt"))
        var epoch = JSONSchemas(coding: JSONCoding(dates: .secondsSince1970))
        _ = try epoch.schema(for: Everything.self)
        #expect(epoch.components["Everything"]?["properties"]?["placedAt"]?["type"] == "number")
    }

    @Test("bodies: String, bytes, optional and wrapped bodies; a type that reads itself as one value")
    func bodies() throws {
        var schemas = JSONSchemas()
        #expect(try schemas.schema(for: String.self) == ["type": "string"])
        #expect(try schemas.schema(for: ByteBuffer.self) == ["type": "string", "format": "binary"])
        #expect(try schemas.schema(for: [UInt8].self) == ["type": "string", "format": "binary"])
        #expect(try schemas.schema(for: Int?.self) == ["anyOf": [["type": "integer"], ["type": "null"]]])
        #expect(try schemas.schema(for: JSON<[Address]>.self) == ["type": "array", "items": ["$ref": "#/components/schemas/Address"]])
        #expect(try schemas.schema(for: Response<String>.self) == ["type": "string"])
        #expect(try schemas.schema(for: Wrapped.self) == ["type": "string"])
    }

    @Test("a type that describes itself is its own component")
    func selfDescribed() throws {
        var schemas = JSONSchemas()
        #expect(try schemas.schema(for: Cents.self) == ["$ref": "#/components/schemas/Cents"])
        #expect(schemas.components["Cents"] == Cents.jsonSchema)
    }

    @Test("an init(from:) that rejects the placeholders: a clear error naming the type and the fix")
    func rejectedPlaceholders() throws {
        var schemas = JSONSchemas()
        let error = try #require(throws: AsyncAPISchemaError.self) { try schemas.schema(for: Validated.self) }
        #expect(error.typeName == "Validated")
        #expect(error.description.contains("JSONSchemaDescribing"))
        #expect(error.description.contains("placeholder"))
    }

    @Test("a type that is not Decodable cannot be probed: the error says so")
    func notDecodable() throws {
        struct Opaque {}
        var schemas = JSONSchemas()
        let error = try #require(throws: AsyncAPISchemaError.self) { try schemas.schema(for: Opaque.self) }
        #expect(error.description.contains("Opaque") && error.description.contains("not Decodable"))
    }
}
