@_spi(BrokerModule) import Courier
import Foundation
import NIOCore

/// Reads and writes messages the way FastStream (aio-pika) does: `content_type`,
/// `correlation_id`, `message_id`, `reply_to`, `timestamp`, `delivery_mode` and `app_id` as
/// properties; user headers and `traceparent`/`tracestate`/`baggage` in the headers table, as
/// long strings.
enum RabbitIncoming {
    static func message(_ delivery: AMQPDelivery, queue: String, routingPattern: TokenPattern? = nil) -> IncomingMessage {
        var headers = MessageHeaders()
        for (name, value) in delivery.properties.headers?.entries ?? [] {
            headers[name] = value.text ?? Self.text(of: value)
        }
        let properties = delivery.properties
        var info = RabbitMessageInfo(
            exchange: delivery.exchange,
            routingKey: delivery.routingKey,
            queue: queue,
            deliveryTag: delivery.deliveryTag,
            redelivered: delivery.redelivered,
            properties: properties
        )
        if let routingPattern { info.path = routingPattern.captures(in: delivery.routingKey) }
        var deliveryCount = delivery.redelivered ? 2 : 1
        if case .int64(let count) = properties.headers?["x-delivery-count"] { deliveryCount = Int(count) + 1 }
        return IncomingMessage(
            body: delivery.body,
            headers: headers,
            destination: queue,
            correlationID: properties.correlationID,
            messageID: properties.messageID,
            replyTo: properties.replyTo.flatMap { $0.isEmpty ? nil : $0 },
            contentType: properties.contentType.flatMap { $0.isEmpty ? nil : $0 },
            deliveryCount: deliveryCount,
            raw: info
        )
    }

    /// A header that is not a string (a number, a table in `x-death`…) as text.
    static func text(of value: AMQPFieldValue) -> String {
        switch value {
        case .bool(let flag): "\(flag)"
        case .int8(let number): "\(number)"
        case .uint8(let number): "\(number)"
        case .int16(let number): "\(number)"
        case .uint16(let number): "\(number)"
        case .int32(let number): "\(number)"
        case .uint32(let number): "\(number)"
        case .int64(let number): "\(number)"
        case .float(let number): "\(number)"
        case .double(let number): "\(number)"
        case .decimal(let scale, let number): "\(Double(number) / pow(10, Double(scale)))"
        case .timestamp(let seconds): "\(seconds)"
        case .void: ""
        case .longString(let bytes), .bytes(let bytes): String(decoding: bytes, as: UTF8.self)
        case .array(let values): "[" + values.map(text(of:)).joined(separator: ", ") + "]"
        case .table(let table): "{" + table.entries.map { "\($0.name): \(text(of: $0.value))" }.joined(separator: ", ") + "}"
        }
    }

    static func properties(of message: OutgoingMessage, options: RabbitPublishOptions?) -> AMQPBasicProperties {
        var properties = AMQPBasicProperties()
        properties.contentType = message.contentType
        properties.correlationID = message.correlationID
        properties.messageID = message.messageID
        properties.replyTo = message.replyTo
        properties.deliveryMode = options?.persistent == true ? 2 : 1
        properties.priority = options?.priority ?? 0
        properties.timestamp = UInt64(Date().timeIntervalSince1970)
        properties.appID = "courier"
        properties.type = options?.type
        properties.expiration = options?.expiration.map { String($0.wholeMilliseconds) }
        if !message.headers.isEmpty {
            properties.headers = AMQPFieldTable(message.headers.map { ($0.name, AMQPFieldValue.string($0.value)) })
        }
        return properties
    }
}
