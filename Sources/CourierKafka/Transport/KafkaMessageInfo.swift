public import Courier
public import Tracing

/// What Kafka adds to a delivered message, in `IncomingMessage.raw`.
public struct KafkaMessageInfo: Sendable, MessagingSpanAttributes {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// The record's timestamp in milliseconds since 1970.
    public var timestampMilliseconds: Int64?
    /// The record key, as bytes.
    public var key: [UInt8]?
    /// Whether the record has no value at all (a tombstone); the message's body is then empty.
    public var isTombstone: Bool
    /// The consumer group, when the subscriber is in one.
    public var group: String?

    /// The key as UTF-8 text, when it is.
    public var keyText: String? { key.flatMap { String(validating: $0, as: UTF8.self) } }

    public var topicPartition: KafkaTopicPartition { KafkaTopicPartition(topic: topic, partition: partition) }

    public func addSpanAttributes(to attributes: inout SpanAttributes, conventions: TelemetryConventions) {
        switch conventions {
        case .openTelemetry:
            attributes.set("messaging.destination.partition.id", value: .string(String(partition)))
            attributes.set("messaging.kafka.offset", value: .int64(offset))
            if let keyText { attributes.set("messaging.kafka.message.key", value: .string(keyText)) }
            if isTombstone { attributes.set("messaging.kafka.message.tombstone", value: true) }
        case .fastStream:
            attributes.set("messaging.kafka.destination.partition", value: .int64(Int64(partition)))
            attributes.set("messaging.kafka.message.offset", value: .int64(offset))
            if let keyText { attributes.set("messaging.kafka.message.key", value: .string(keyText)) }
        }
    }
}

extension IncomingMessage {
    /// What Kafka adds to the message (topic, partition, offset, key, tombstone).
    ///
    /// - Throws: `CourierError` `.wrongBroker` for another broker's message.
    public var kafka: KafkaMessageInfo {
        get throws(CourierError) { try brokerInfo(KafkaMessageInfo.self, broker: "Kafka") }
    }
}
