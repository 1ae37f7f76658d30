import OTelSemanticConventions

/// Which span names and attributes ``TelemetryMiddleware`` emits.
public enum TelemetryConventions: String, Sendable, Hashable, CaseIterable {
    /// The OpenTelemetry messaging semantic conventions (1.44): `send orders`, `process orders`,
    /// `messaging.operation.type`, `messaging.message.body.size`, the `messaging.client.*` metrics.
    case openTelemetry = "opentelemetry"
    /// FastStream 0.7's spans, byte for byte: `orders create`, `orders publish`, `orders process`,
    /// `messaging.operation`, `messaging.destination_publish.name`,
    /// `messaging.message.payload_size_bytes`, `messaging.publish.duration`. For teams whose
    /// dashboards already read FastStream's spans.
    case fastStream = "faststream"
}

/// Where a single message's process span hangs in the trace.
public enum ProcessSpanParent: Sendable, Hashable {
    /// The span that created the message is the process span's parent: producer → consumer as one
    /// parent/child tree. The default, and what trace viewers draw best.
    case creationContext
    /// The process span starts a new trace and links to the creation context, as the conventions
    /// prefer for consumers that run inside another span.
    case link
}

/// Attribute names: the current conventions' from swift-otel-semantic-conventions, and the
/// older ones FastStream still writes (the package marks those deprecated).
enum MessagingAttribute {
    static let system = OTelAttribute.messaging.system
    static let operationName = OTelAttribute.messaging.operation.name
    static let operationType = OTelAttribute.messaging.operation.type
    static let destinationName = OTelAttribute.messaging.destination.name
    static let destinationTemplate = OTelAttribute.messaging.destination.template
    static let destinationTemporary = OTelAttribute.messaging.destination.temporary
    static let subscriptionName = OTelAttribute.messaging.destination.subscription.name
    static let consumerGroup = OTelAttribute.messaging.consumer.group.name
    static let messageID = OTelAttribute.messaging.message.id
    static let conversationID = OTelAttribute.messaging.message.conversationId
    static let bodySize = OTelAttribute.messaging.message.body.size
    static let batchMessageCount = OTelAttribute.messaging.batch.messageCount
    static let serverAddress = OTelAttribute.server.address
    static let serverPort = OTelAttribute.server.port
    static let errorType = OTelAttribute.error.type

    enum FastStream {
        static let operation = "messaging.operation"
        static let destinationPublishName = "messaging.destination_publish.name"
        static let payloadSize = "messaging.message.payload_size_bytes"
    }
}

/// Metric names.
enum MessagingMetric {
    static let clientOperationDuration = "messaging.client.operation.duration"
    static let processDuration = "messaging.process.duration"
    static let sentMessages = "messaging.client.sent.messages"
    static let consumedMessages = "messaging.client.consumed.messages"
    /// Courier's own, in the conventions' style (they name none): see ``SubscriberMetrics``.
    static let settledMessages = "messaging.client.settled.messages"
    static let activeMessages = "messaging.process.active_messages"

    enum FastStream {
        static let publishDuration = "messaging.publish.duration"
        static let processDuration = "messaging.process.duration"
        static let publishMessages = "messaging.publish.messages"
        static let processMessages = "messaging.process.messages"
    }
}
