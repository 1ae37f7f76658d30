import NIOCore

/// A message the server delivered to a consumer (or returned as unroutable).
public struct AMQPDelivery: Sendable {
    public var consumerTag: String
    public var deliveryTag: UInt64
    public var redelivered: Bool
    public var exchange: String
    public var routingKey: String
    public var properties: AMQPBasicProperties
    public var body: ByteBuffer
}

/// A message being put together from its method, header and body frames.
struct AMQPContentAssembly {
    enum Kind {
        case delivery(consumerTag: String, deliveryTag: UInt64, redelivered: Bool, exchange: String, routingKey: String)
        case returned(replyCode: UInt16, replyText: String, exchange: String, routingKey: String)
    }

    var kind: Kind
    var properties: AMQPBasicProperties?
    var expectedSize: UInt64 = 0
    var body = ByteBuffer()

    /// Adds a frame; returns the finished message once its body is complete.
    mutating func add(_ payload: AMQPFrame.Payload) throws(AMQPWireError) -> AMQPDelivery? {
        switch payload {
        case .header(_, let size, let properties) where self.properties == nil:
            self.properties = properties
            expectedSize = size
        case .body(var bytes) where properties != nil:
            guard UInt64(body.readableBytes + bytes.readableBytes) <= expectedSize else { throw .invalid("a body longer than its header said") }
            body.writeBuffer(&bytes)
        default:
            throw .invalid("content frames out of order")
        }
        guard let properties, UInt64(body.readableBytes) == expectedSize else { return nil }
        switch kind {
        case .delivery(let tag, let deliveryTag, let redelivered, let exchange, let routingKey):
            return AMQPDelivery(consumerTag: tag, deliveryTag: deliveryTag, redelivered: redelivered, exchange: exchange, routingKey: routingKey, properties: properties, body: body)
        case .returned(let code, _, let exchange, let routingKey):
            return AMQPDelivery(consumerTag: "", deliveryTag: UInt64(code), redelivered: false, exchange: exchange, routingKey: routingKey, properties: properties, body: body)
        }
    }
}
