public import NIOCore

/// A body encoded for sending: its bytes and content type.
public struct EncodedBody: Sendable {
    /// The bytes to send.
    public var bytes: ByteBuffer
    /// The content type, or nil for raw bytes (FastStream sends bytes without one).
    public var contentType: String?

    public init(bytes: ByteBuffer, contentType: String?) {
        self.bytes = bytes
        self.contentType = contentType
    }
}

/// A type a handler can return, or a caller can publish, as a message body.
///
/// `String` is sent as UTF-8 `text/plain`, bytes as they are, everything JSON as compact
/// `application/json`, the same choices FastStream makes. Returning nil publishes nothing.
public protocol MessageEncodable: Sendable {
    /// The body to send, or nil to send nothing.
    func encodeMessageBody() throws -> EncodedBody?
}

/// A type that is both a message body to receive and one to send.
public typealias MessageCodable = MessageDecodable & MessageEncodable

extension MessageEncodable where Self: Encodable {
    /// Encodes the value as compact JSON.
    public func encodeMessageBody() throws -> EncodedBody? {
        EncodedBody(bytes: try MessageJSON.encode(self), contentType: MessageJSON.contentType)
    }
}

extension String: MessageEncodable {
    public func encodeMessageBody() throws -> EncodedBody? {
        EncodedBody(bytes: ByteBuffer(string: self), contentType: "text/plain")
    }
}

extension ByteBuffer: MessageEncodable {
    public func encodeMessageBody() throws -> EncodedBody? {
        EncodedBody(bytes: self, contentType: nil)
    }
}

extension Array: MessageEncodable where Element == UInt8 {
    public func encodeMessageBody() throws -> EncodedBody? {
        EncodedBody(bytes: ByteBuffer(bytes: self), contentType: nil)
    }
}

extension Int: MessageEncodable {}
extension Double: MessageEncodable {}
extension Bool: MessageEncodable {}

extension Optional: MessageEncodable where Wrapped: MessageEncodable {
    /// nil publishes nothing.
    public func encodeMessageBody() throws -> EncodedBody? {
        switch self {
        case .none: return nil
        case .some(let wrapped): return try wrapped.encodeMessageBody()
        }
    }
}

extension EncodedBody: MessageEncodable {
    public func encodeMessageBody() throws -> EncodedBody? { self }
}
