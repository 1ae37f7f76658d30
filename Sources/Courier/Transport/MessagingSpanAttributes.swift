public import Tracing

/// Broker-specific span attributes (Kafka's partition, offset and key, RabbitMQ's routing key and
/// delivery tag): a transport's types adopt it, and ``TelemetryMiddleware`` asks them for their
/// attributes only when the span records.
///
/// It asks, on a publish span, the publication's ``Publication/destination``, the message's
/// ``OutgoingMessage/options`` (single publishes) and each receipt's
/// ``PublishReceipt/details`` (after the send); on a process span, the destination's
/// ``IncomingMessage/raw`` info (single deliveries).
public protocol MessagingSpanAttributes: Sendable {
    /// Adds this value's attributes, named as `conventions` names them.
    func addSpanAttributes(to attributes: inout SpanAttributes, conventions: TelemetryConventions)
}
