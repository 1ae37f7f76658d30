/// What a broker module implements: the wire, nothing else.
///
/// Subscribing, decoding, middleware, acknowledgement policies, concurrency, ordering and
/// telemetry live in the core's ``Broker``; a transport moves messages and settles them. The C
/// types or wire protocol of a broker never appear in this interface; its typed destinations,
/// per-message options, receipts and telemetry attributes are the module's own types.
///
/// See the README's "Writing a broker module" for the whole contract, and `CourierTesting`'s
/// conformance suite for what every transport must pass.
public protocol BrokerTransport: Sendable {
    /// What a subscriber of this broker listens to: a queue, a channel pattern, a stream with a group…
    associatedtype Source: SubscriptionSource

    /// Where a publish goes, when the broker has kinds of destination (a Redis list or stream,
    /// a JetStream subject, a RabbitMQ exchange with a routing key); a name otherwise.
    associatedtype Destination: BrokerDestination = NamedDestination

    /// Options a caller may give each published message (a Kafka key, partition and timestamp;
    /// RabbitMQ's mandatory flag, persistence, priority, expiration); `Never` where there are none.
    /// They reach ``send(_:)`` in ``OutgoingMessage/options``.
    associatedtype PublishOptions: Sendable = Never

    /// The broker's telemetry identity (`messaging.system`, `server.address`, `server.port`).
    var description: BrokerDescription { get }

    /// The server an AsyncAPI document names (never with credentials); by default from
    /// ``description``.
    func asyncAPIServer(_ version: AsyncAPIVersion) -> AsyncAPIServer

    /// How a subscriber's source appears in an AsyncAPI document: its address and the broker's
    /// bindings. By default the subscribed name, without bindings.
    func asyncAPIChannel(for source: Source, version: AsyncAPIVersion) -> AsyncAPIChannel

    /// How a publisher's destination appears in an AsyncAPI document. By default its name,
    /// without bindings.
    func asyncAPIChannel(for destination: Destination, version: AsyncAPIVersion) -> AsyncAPIChannel

    /// The ack policy subscribers get when they do not choose one.
    var defaultAckPolicy: AckPolicy { get }

    /// Connects, if the broker needs a connection; called once before subscribers start.
    func connect() async throws

    /// The transport's own long-lived work (a client library's poll loop, heartbeats, reconnects),
    /// run by ``Broker/run()`` in its task group from after ``connect()`` until after ``close()``,
    /// then cancelled. Throwing stops the broker. The default does nothing.
    func run() async throws

    /// Sends every message of the publication to its destination and returns a receipt per
    /// message, in order, once the broker has taken them (confirmed, where it confirms).
    func send(_ publication: Publication) async throws -> [PublishReceipt]

    /// Starts consuming from `source` the way `options` says the subscriber consumes: deliveries
    /// of one message, or of up to `options.batch.maxMessages`; at most `options.prefetch`
    /// messages held by the subscriber at once; settled by `options.ackPolicy`.
    func subscribe(to source: Source, options: SubscriptionOptions) async throws -> any TransportSubscription

    /// Opens a destination that receives the reply to the request with `correlationID`.
    ///
    /// The correlation id is known before the request is sent, so a transport may route replies
    /// of many requests in flight through one shared consumer by it (RabbitMQ's direct reply-to,
    /// a Kafka reply topic); the broker also checks it on what arrives.
    func openReplyInbox(for correlationID: String) async throws -> ReplyInbox

    /// Closes connections; called once after every subscriber has stopped.
    func close() async

    /// A round trip to the server (Redis `PING`, a NATS flush, a Kafka metadata request, an AMQP
    /// channel opened and closed): returns once the server answered, throws when it did not
    /// within the transport's own timeout. What a readiness check calls. The default does
    /// nothing (a transport that cannot tell).
    func ping() async throws

    /// Where the connection to the server is now, as far as the client can tell without a round
    /// trip. The default is ``ConnectionState/unknown``.
    var connectionState: ConnectionState { get }
}

extension BrokerTransport {
    public func run() async throws {}

    public func ping() async throws {}

    public var connectionState: ConnectionState { .unknown }

    /// The publication's destination as this transport's own type: a plain name
    /// (``NamedDestination``) becomes the default kind.
    ///
    /// - Throws: ``CourierError`` `.unsupportedDestination` for another broker's destination type.
    public func destination(of publication: Publication) throws -> Destination {
        if let destination = publication.destination as? Destination { return destination }
        if publication.destination is NamedDestination { return Destination(name: publication.destinationName) }
        throw CourierError(
            .unsupportedDestination,
            "\(description.messagingSystem) cannot publish to a \(type(of: publication.destination)) ('\(publication.destinationName)')"
        )
    }

    /// The options the caller gave `message`, when they are this transport's.
    public func options(of message: OutgoingMessage) -> PublishOptions? {
        message.options as? PublishOptions
    }
}
