public import Logging
public import Tracing

/// Everything that is about to be published to one destination: what flows down the publish path
/// of the middleware chain to the transport.
public struct Publication: Sendable {
    /// Where the messages go: the transport's own destination type (a Redis list, a JetStream
    /// subject, a Kafka topic), or a ``NamedDestination`` for a plain name, which the transport
    /// reads as its default kind (see ``BrokerTransport/destination(of:)``).
    public var destination: any BrokerDestination
    /// The messages; one, or several for a batch publish.
    public var messages: [OutgoingMessage]
    /// Whether this is a batch publish (even of one message).
    public var isBatch: Bool
    /// Whether the destination is temporary, as a reply inbox is.
    public var destinationIsTemporary: Bool
    /// The context the publish happens in: the caller's, or the process span's for a handler's
    /// return value. Telemetry parents its spans here.
    public var serviceContext: ServiceContext
    /// For a handler's return value or reply: the trace context the consumed message was created
    /// under. FastStream-style telemetry re-sends it; OpenTelemetry-style telemetry ignores it.
    public var originContext: ServiceContext?
    /// The broker's telemetry identity.
    public var broker: BrokerDescription
    /// The logger of the publishing code.
    public var logger: Logger

    public init(
        destination: any BrokerDestination,
        messages: [OutgoingMessage],
        isBatch: Bool = false,
        destinationIsTemporary: Bool = false,
        serviceContext: ServiceContext,
        originContext: ServiceContext? = nil,
        broker: BrokerDescription,
        logger: Logger
    ) {
        self.destination = destination
        self.messages = messages
        self.isBatch = isBatch
        self.destinationIsTemporary = destinationIsTemporary
        self.serviceContext = serviceContext
        self.originContext = originContext
        self.broker = broker
        self.logger = logger
    }

    /// The destination's name: the queue, channel, subject or topic.
    public var destinationName: String { destination.name }

    /// A receipt per message with only its id, for transports whose broker confirms nothing more.
    public var plainReceipts: [PublishReceipt] {
        messages.map { PublishReceipt(messageID: $0.messageID) }
    }
}
