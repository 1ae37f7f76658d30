public import NIOCore

/// Any `Codable` value as a JSON message body, without declaring a conformance:
/// `broker.subscriber("orders") { (orders: JSON<[Order]>, context) in … }`.
public struct JSON<Value: Codable & Sendable>: MessageCodable {
    /// The decoded value.
    public var value: Value

    public init(_ value: Value) {
        self.value = value
    }

    public init(messageBody body: ByteBuffer, contentType: String?) throws {
        self.value = try MessageJSON.decode(Value.self, from: body, contentType: contentType)
    }

    public func encodeMessageBody() throws -> EncodedBody? {
        EncodedBody(bytes: try MessageJSON.encode(value), contentType: MessageJSON.contentType)
    }
}
