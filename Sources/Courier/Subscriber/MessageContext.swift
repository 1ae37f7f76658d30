public import Logging
public import Tracing

/// What a handler (and a consume middleware) knows about the delivery it is processing.
///
/// A value type: middlewares pass an updated copy to `next` (telemetry sets ``span`` and
/// ``serviceContext``). Publishing through the context continues the trace of the message.
public struct MessageContext: Sendable {
    /// The delivered messages: one, or several for a batch subscriber.
    public var messages: [IncomingMessage]
    /// Whether the subscriber consumes batches.
    public var isBatch: Bool
    /// The subscription's destination as telemetry reports it.
    public var destination: SubscribedDestination
    /// The broker's telemetry identity.
    public var broker: BrokerDescription
    /// A logger carrying the message's metadata (destination, message id, correlation id).
    public var logger: Logger {
        get { messageLogger.logger }
        set { messageLogger = MessageLogger(newValue) }
    }
    private var messageLogger: MessageLogger
    /// The trace context the handler runs in; with telemetry, the process span's.
    public var serviceContext: ServiceContext
    /// The process span, when a telemetry middleware made one.
    public var span: (any Span)?
    /// The tracer that made ``span``, which can write its context as headers (the message log
    /// reads the trace id through it); nil without telemetry.
    public var propagator: (any Instrument)?
    /// The context the consumed message was created under (see ``Publication/originContext``).
    public var originContext: ServiceContext?

    /// How the delivery is settled.
    public let settlement: Settlement
    /// The delivery's ordering key: deliveries with the same key are processed one after another.
    public let orderingKey: String?
    /// How the subscriber's JSON bodies are read and what it publishes is written.
    public let json: JSONCoding
    let dispatch: PublishNext

    /// The context of one delivery, before any middleware ran: the broker makes one per delivery
    /// (and the fuzz harness one per input, to drive the consume middlewares without a broker).
    package init(
        delivery: InboundDelivery,
        isBatch: Bool,
        destination: SubscribedDestination,
        broker: BrokerDescription,
        logger: Logger,
        json: JSONCoding = .default,
        dispatch: @escaping PublishNext
    ) {
        self.json = json
        self.messages = delivery.messages
        self.isBatch = isBatch
        self.destination = destination
        self.broker = broker
        let first = delivery.messages.first
        self.messageLogger = MessageLogger(logger, messageID: first?.messageID, correlationID: first?.correlationID)
        self.serviceContext = .topLevel
        self.span = nil
        self.propagator = nil
        self.originContext = nil
        self.settlement = delivery.settlement
        self.orderingKey = delivery.orderingKey
        self.dispatch = dispatch
    }

    /// The delivered message (the first one, for a batch).
    public var message: IncomingMessage { messages[0] }

    /// The baggage that arrived with the message (for a batch: every message's, later ones winning).
    public var baggage: Baggage { serviceContext.baggage ?? Baggage() }

    /// Acknowledges the delivery (for ``AckPolicy/manual``); later settlements are ignored.
    public func ack() async throws { try await settlement.settle(.ack) }

    /// Asks the broker to deliver the message again; later settlements are ignored.
    ///
    /// - Parameters:
    ///   - requeue: false asks the broker not to redeliver it (RabbitMQ `basic.nack` without
    ///     requeue: dead-lettered or dropped); nil is the transport's default, a redelivery.
    ///   - delay: how long the broker should wait before redelivering (JetStream `-NAK` with a
    ///     delay); transports without delayed redelivery redeliver at once.
    public func nack(requeue: Bool? = nil, delay: Duration? = nil) async throws {
        try await settlement.settle(Settlement.Request(.nack, requeue: requeue, delay: delay))
    }

    /// Rejects the message: the broker drops or dead-letters it (or, with `requeue: true`,
    /// delivers it again, as RabbitMQ's `basic.reject` can); later settlements are ignored.
    public func reject(requeue: Bool? = nil) async throws {
        try await settlement.settle(Settlement.Request(.reject, requeue: requeue))
    }

    /// Publishes a message from inside the handler, continuing the message's trace, to a
    /// destination named `destination` (the broker's default kind) or of a broker module's
    /// kinds (`.list("jobs")`, `.jetStream("orders.created")`); returns the broker's receipt.
    ///
    /// The trace context is the handler's current one (``serviceContext``, or a narrower one the
    /// handler set up, e.g. with changed baggage).
    @discardableResult
    public func publish<Body: MessageEncodable>(
        _ body: Body,
        to destination: some BrokerDestination,
        headers: MessageHeaders = [:],
        correlationID: String? = nil
    ) async throws -> PublishReceipt? {
        guard let encoded = try json.withCurrent({ try body.encodeMessageBody() }) else { return nil }
        let message = OutgoingMessage(encoded, headers: headers, correlationID: correlationID ?? self.message.correlationID)
        return try await dispatch(
            Publication(
                destination: destination,
                messages: [message],
                serviceContext: ServiceContext.current ?? serviceContext,
                broker: broker,
                logger: logger
            )
        ).first
    }

    /// Publishes to the destination named `destination`, of the broker's default kind.
    @discardableResult
    public func publish<Body: MessageEncodable>(
        _ body: Body,
        to destination: String,
        headers: MessageHeaders = [:],
        correlationID: String? = nil
    ) async throws -> PublishReceipt? {
        try await publish(body, to: NamedDestination(name: destination), headers: headers, correlationID: correlationID)
    }
}
