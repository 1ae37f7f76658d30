public import NIOCore
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A type a handler can receive as a message body.
///
/// Courier ships conformances for `String` (UTF-8 text), `ByteBuffer` and `[UInt8]` (raw bytes),
/// `Int`, `Double` and `Bool` (JSON), `Optional` (an empty body is nil) and ``JSON``. A `Decodable`
/// type gets JSON decoding by declaring the conformance: `extension Order: MessageCodable {}`.
public protocol MessageDecodable: Sendable {
    /// Decodes a body; a body that does not fit throws, and the subscriber treats that message as failed.
    init(messageBody body: ByteBuffer, contentType: String?) throws
}

/// A body that could not be decoded into the handler's type.
public struct MessageDecodingError: Error, CustomStringConvertible {
    /// The type the handler asked for.
    public var typeName: String
    /// The content type the message declared.
    public var contentType: String?
    /// What went wrong.
    public var reason: String

    public init(type: Any.Type, contentType: String?, reason: String) {
        self.typeName = String(describing: type)
        self.contentType = contentType
        self.reason = reason
    }

    init(type: Any.Type, contentType: String?, underlying: any Error) {
        self.init(type: type, contentType: contentType, reason: String(describing: underlying))
    }

    public var description: String {
        "cannot decode the message body as \(typeName) (content-type: \(contentType ?? "none")): \(reason)"
    }
}

extension MessageDecodable where Self: Decodable {
    /// Decodes the body as JSON, whatever the declared content type (FastStream tries JSON first too).
    public init(messageBody body: ByteBuffer, contentType: String?) throws {
        self = try MessageJSON.decode(Self.self, from: body, contentType: contentType)
    }
}

extension String: MessageDecodable {
    /// Text bodies are UTF-8; a JSON body holding a string (`"hi"`) is unwrapped.
    public init(messageBody body: ByteBuffer, contentType: String?) throws {
        if let contentType, MessageJSON.isJSON(contentType) {
            self = try MessageJSON.decode(String.self, from: body, contentType: contentType)
            return
        }
        guard let text = body.withUnsafeReadableBytes({ UTF8Text.string($0.assumingMemoryBound(to: UInt8.self)) }) else {
            throw MessageDecodingError(type: String.self, contentType: contentType, reason: "the body is not valid UTF-8")
        }
        self = text
    }
}

extension ByteBuffer: MessageDecodable {
    /// The body as it arrived, without a copy.
    public init(messageBody body: ByteBuffer, contentType: String?) throws {
        self = body
    }
}

extension Array: MessageDecodable where Element == UInt8 {
    /// The body's bytes.
    public init(messageBody body: ByteBuffer, contentType: String?) throws {
        self = Array(body.readableBytesView)
    }
}

extension Int: MessageDecodable {}
extension Double: MessageDecodable {}
extension Bool: MessageDecodable {}

extension Optional: MessageDecodable where Wrapped: MessageDecodable {
    /// An empty body is nil; anything else decodes as `Wrapped`.
    public init(messageBody body: ByteBuffer, contentType: String?) throws {
        if body.readableBytes == 0 {
            self = nil
        } else {
            self = try Wrapped(messageBody: body, contentType: contentType)
        }
    }
}

/// JSON encoding and decoding shared by the codecs.
enum MessageJSON {
    static let contentType = "application/json"

    static func isJSON(_ contentType: String) -> Bool {
        contentType.hasPrefix("application/json")
    }

    /// Decodes with ``JSONCoding/current``. A decimal pydantic sent as a string (`"12.50"`) where
    /// the type has a `Decimal` is read as the number it spells.
    static func decode<T: Decodable>(_ type: T.Type, from body: ByteBuffer, contentType: String?) throws -> T {
        let decoder = JSONCoding.current.decoder
        var data = body.withUnsafeReadableBytes { Data($0) }
        // Each retry turns one more quoted decimal into a number; a model has few of them.
        for _ in 0..<64 {
            do {
                return try decoder.decode(T.self, from: data)
            } catch let error as DecodingError {
                guard case .typeMismatch(let expected, let context) = error, expected == Decimal.self,
                    let unquoted = DecimalStrings.unquote(at: context.codingPath, in: data)
                else {
                    throw MessageDecodingError(type: T.self, contentType: contentType, reason: describe(error))
                }
                data = unquoted
            }
        }
        throw MessageDecodingError(type: T.self, contentType: contentType, reason: "too many decimals sent as strings")
    }

    static func encode<T: Encodable>(_ value: T) throws -> ByteBuffer {
        ByteBuffer(bytes: try JSONCoding.current.encode(value))
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .dataCorrupted(let context):
            return "not valid JSON: \(context.debugDescription)"
        case .keyNotFound(let key, let context):
            return "missing key '\(key.stringValue)' at \(path(context))"
        case .typeMismatch(let type, let context):
            return "expected \(type) at \(path(context))"
        case .valueNotFound(let type, let context):
            return "expected \(type) but found null at \(path(context))"
        @unknown default:
            return String(describing: error)
        }
    }

    private static func path(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map(\.stringValue).joined(separator: ".")
        return path.isEmpty ? "the top level" : path
    }
}
