import Courier
import CourierMemory
import NIOCore

// README: "Messages and codecs".
struct Order: Codable, Sendable, MessageCodable {
    var id: Int
    var item: String
}

struct Receipt: Codable, Sendable, MessageCodable {
    var orderID: Int
}

func messagesAndCodecs(broker: MemoryBroker) async throws {
    // Codable bodies travel as JSON (content-type application/json).
    broker.subscriber("orders").publisher("receipts").handle { (order: Order, context) in
        Receipt(orderID: order.id)
    }
    // Raw bytes, with the whole message (headers, ids, the broker's own message) at hand.
    broker.subscriber("audit") { (body: ByteBuffer, context) in
        let message = context.message
        context.logger.info("audit", metadata: [
            "bytes": "\(body.readableBytes)",
            "correlation_id": "\(message.correlationID ?? "-")",
            "tenant": "\(message.headers["x-tenant"] ?? "-")",
        ])
    }
    // An optional return: nil publishes nothing.
    broker.subscriber("numbers").publisher("even").handle { (number: Int, context) -> Int? in
        number.isMultiple(of: 2) ? number : nil
    }
    // A type you do not own: wrap it in JSON<…>.
    broker.subscriber("tags") { (tags: JSON<[String]>, context) in
        context.logger.info("tags", metadata: ["count": "\(tags.value.count)"])
    }

    try await broker.publish(Order(id: 7, item: "tea"), to: "orders", headers: ["x-tenant": "acme"])
}
