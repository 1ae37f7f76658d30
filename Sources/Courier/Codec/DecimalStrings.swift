#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// pydantic writes `Decimal` as a JSON string (`"12.50"`) to keep its precision, and Foundation's
/// `JSONDecoder` reads a `Decimal` only from a number. When decoding fails on such a string, this
/// rewrites the document with that one value as the number it spells (exactly: a decimal tree node
/// encodes as written) so decoding can go on; it runs only after a failure, never on the way of a
/// body that decodes.
enum DecimalStrings {
    /// `data` with the string at `path` replaced by its number; nil when there is no such string
    /// or it does not spell a decimal.
    static func unquote(at path: [any CodingKey], in data: Data) -> Data? {
        guard var tree = try? JSONDecoder().decode(JSONTree.self, from: data), tree.replaceDecimalString(at: path[...]) else {
            return nil
        }
        return try? JSONEncoder().encode(tree)
    }
}

/// A JSON document, numbers kept exactly as `Decimal`.
private enum JSONTree: Codable {
    case null
    case bool(Bool)
    case number(Decimal)
    case string(String)
    case array([JSONTree])
    case object([String: JSONTree])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Decimal.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONTree].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONTree].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    mutating func replaceDecimalString(at path: ArraySlice<any CodingKey>) -> Bool {
        guard let key = path.first else {
            guard case .string(let text) = self, let value = Decimal(string: text, locale: nil), !text.isEmpty,
                text.allSatisfy({ "0123456789+-.eE".contains($0) })
            else { return false }
            self = .number(value)
            return true
        }
        switch self {
        case .array(var elements):
            guard let index = key.intValue, elements.indices.contains(index),
                elements[index].replaceDecimalString(at: path.dropFirst())
            else { return false }
            self = .array(elements)
            return true
        case .object(var members):
            // The path names the Swift property; with snake_case coding the document has its
            // snake_case form.
            guard let name = [key.stringValue, JSONCoding.snakeCase(key.stringValue)].first(where: { members[$0] != nil }),
                members[name]!.replaceDecimalString(at: path.dropFirst())
            else { return false }
            self = .object(members)
            return true
        default:
            return false
        }
    }
}
