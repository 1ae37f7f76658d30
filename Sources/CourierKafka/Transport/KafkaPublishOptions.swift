public import Courier
public import Foundation
public import Tracing

/// Per-message options of a Kafka publish.
public struct KafkaPublishOptions: Sendable, Hashable, MessagingSpanAttributes {
    /// The record key: records with the same key go to the same partition, and a key with a
    /// nil body is a tombstone.
    public var key: [UInt8]?
    /// The partition, instead of the one the key (or the partitioner) chooses.
    public var partition: Int32?
    /// The record's timestamp, instead of the time of the publish.
    public var timestamp: Date?
    /// Whether the publish waits for the broker's acknowledgement (true, the default), or
    /// returns once librdkafka has the record (FastStream's `no_confirm`). An unconfirmed
    /// record's receipt has no position, and a failure to deliver it is only logged.
    public var waitsForConfirmation: Bool

    public init(key: [UInt8]? = nil, partition: Int32? = nil, timestamp: Date? = nil, waitsForConfirmation: Bool = true) {
        self.key = key
        self.partition = partition
        self.timestamp = timestamp
        self.waitsForConfirmation = waitsForConfirmation
    }

    /// Options with a UTF-8 key.
    public init(key: String, partition: Int32? = nil, timestamp: Date? = nil, waitsForConfirmation: Bool = true) {
        self.init(key: Array(key.utf8), partition: partition, timestamp: timestamp, waitsForConfirmation: waitsForConfirmation)
    }

    public func addSpanAttributes(to attributes: inout SpanAttributes, conventions: TelemetryConventions) {
        let keyText = key.flatMap { String(validating: $0, as: UTF8.self) }
        switch conventions {
        case .openTelemetry:
            if let partition { attributes.set("messaging.destination.partition.id", value: .string(String(partition))) }
            if let keyText { attributes.set("messaging.kafka.message.key", value: .string(keyText)) }
        case .fastStream:
            if let partition { attributes.set("messaging.kafka.destination.partition", value: .int64(Int64(partition))) }
            if let keyText { attributes.set("messaging.kafka.message.key", value: .string(keyText)) }
        }
    }
}

extension KafkaRecordPosition: MessagingSpanAttributes {
    /// The stored record's partition and offset, on the publish span (OpenTelemetry conventions;
    /// FastStream's publish spans carry neither).
    public func addSpanAttributes(to attributes: inout SpanAttributes, conventions: TelemetryConventions) {
        guard conventions == .openTelemetry else { return }
        attributes.set("messaging.destination.partition.id", value: .string(String(partition)))
        attributes.set("messaging.kafka.offset", value: .int64(offset))
        attributes.set("messaging.message.id", value: .string(messageID))
    }
}

extension PublishReceipt {
    /// Where Kafka stored the record (topic, partition, offset, timestamp), for confirmed publishes.
    public var kafka: KafkaRecordPosition? { details as? KafkaRecordPosition }
}
