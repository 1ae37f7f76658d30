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

    /// The destination as `conventions` name it, where the broker's conventions say more than
    /// the plain name (RabbitMQ: `{exchange}:{routing key}` for the semantic conventions,
    /// `{exchange}.{routing key}` for FastStream), or nil for the plain name. Asked of a
    /// publication's destination and of a single delivery's ``IncomingMessage/raw`` info.
    func messagingDestination(conventions: TelemetryConventions) -> MessagingDestinationName?
}

extension MessagingSpanAttributes {
    public func messagingDestination(conventions: TelemetryConventions) -> MessagingDestinationName? { nil }
}

/// A destination as telemetry names it.
public struct MessagingDestinationName: Sendable, Hashable {
    /// The destination part of span names (`send {span}`, `{span} process`).
    public var span: String
    /// `messaging.destination.name` (for FastStream's process spans,
    /// `messaging.destination_publish.name`).
    public var attribute: String

    public init(span: String, attribute: String) {
        self.span = span
        self.attribute = attribute
    }

    /// The same name in span names and the attribute.
    public init(_ name: String) {
        self.init(span: name, attribute: name)
    }
}
