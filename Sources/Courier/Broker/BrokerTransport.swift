/// What a broker module implements: the wire, nothing else.
///
/// Subscribing, decoding, middleware, acknowledgement policies, concurrency and telemetry live in
/// the core's ``Broker``; a transport only moves messages and settles them. The C types or wire
/// protocol of a broker never appear in this interface.
public protocol BrokerTransport: Sendable {
    /// What a subscriber of this broker listens to: a queue, a channel pattern, a stream with a group…
    associatedtype Source: SubscriptionSource

    /// Where a publish goes, when the broker has kinds of destination (a Redis list or stream,
    /// a JetStream subject); a name otherwise.
    associatedtype Destination: BrokerDestination = NamedDestination

    /// The broker's telemetry identity (`messaging.system`, `server.address`, `server.port`).
    var description: BrokerDescription { get }

    /// The ack policy subscribers get when they do not choose one.
    var defaultAckPolicy: AckPolicy { get }

    /// Connects, if the broker needs a connection; called once before subscribers start.
    func connect() async throws

    /// The transport's own long-lived work (a client library's poll loop, heartbeats, reconnects),
    /// run by ``Broker/run()`` in its task group from after ``connect()`` until after ``close()``,
    /// then cancelled. Throwing stops the broker. The default does nothing.
    func run() async throws

    /// Sends every message of the publication to its destination.
    func send(_ publication: Publication) async throws

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
}

extension BrokerTransport {
    public func run() async throws {}
}

/// The broker facts telemetry reports.
public struct BrokerDescription: Sendable, Hashable {
    /// `messaging.system`: `kafka`, `rabbitmq`, `nats`, `redis`, `memory`.
    public var messagingSystem: String
    /// `server.address`, when there is a server.
    public var serverAddress: String?
    /// `server.port`, when there is a server.
    public var serverPort: Int?

    public init(messagingSystem: String, serverAddress: String? = nil, serverPort: Int? = nil) {
        self.messagingSystem = messagingSystem
        self.serverAddress = serverAddress
        self.serverPort = serverPort
    }
}

/// A broker's subscription target. Every broker can subscribe to a plain destination name;
/// broker modules add their own options (a consumer group, a pattern, a stream).
public protocol SubscriptionSource: Sendable {
    /// A source for a plain destination name.
    init(destination: String)
    /// How the source appears in telemetry and logs.
    var subscribedDestination: SubscribedDestination { get }
}

/// A subscription's destination as telemetry reports it.
public struct SubscribedDestination: Sendable, Hashable {
    /// `messaging.destination.name`.
    public var name: String
    /// `messaging.destination.template`, for wildcard or parameterised destinations.
    public var template: String?
    /// `messaging.consumer.group.name`, where the broker has consumer groups.
    public var consumerGroup: String?
    /// `messaging.destination.subscription.name`, where the broker names subscriptions.
    public var subscriptionName: String?
    /// Whether the destination is temporary (a reply inbox).
    public var isTemporary: Bool

    public init(
        name: String,
        template: String? = nil,
        consumerGroup: String? = nil,
        subscriptionName: String? = nil,
        isTemporary: Bool = false
    ) {
        self.name = name
        self.template = template
        self.consumerGroup = consumerGroup
        self.subscriptionName = subscriptionName
        self.isTemporary = isTemporary
    }
}

/// A running subscription, as its transport exposes it.
public protocol TransportSubscription: Sendable {
    /// The next delivery, waiting for one; nil once the subscription has stopped.
    ///
    /// The subscriber calls this only when it can take another delivery, so a transport that
    /// fetches on demand, or buffers boundedly, passes backpressure on to the broker.
    func next() async throws -> InboundDelivery?

    /// Stops intake: pending and later calls to ``next()`` return nil. Messages already delivered
    /// can still be settled.
    func stop() async
}

/// One delivery from a transport: a message, or a batch of them, and how to settle it.
public struct InboundDelivery: Sendable {
    public var messages: [IncomingMessage]
    public var settlement: Settlement

    public init(messages: [IncomingMessage], settlement: Settlement) {
        self.messages = messages
        self.settlement = settlement
    }
}

/// A temporary destination waiting for one reply.
public struct ReplyInbox: Sendable {
    /// The destination to put in the request's `replyTo`.
    public var destination: String
    /// The subscription that receives the reply.
    public var subscription: any TransportSubscription

    public init(destination: String, subscription: any TransportSubscription) {
        self.destination = destination
        self.subscription = subscription
    }
}

/// Batch consumption: a delivery holds up to `maxMessages` messages that were ready together.
public struct BatchOptions: Sendable, Hashable {
    public var maxMessages: Int
    /// How long a transport that fetches may wait to fill a batch once it has its first message;
    /// nil: take what is ready.
    public var maxWait: Duration?

    public init(maxMessages: Int = 10, maxWait: Duration? = nil) {
        precondition(maxMessages > 0, "a batch holds at least one message")
        self.maxMessages = maxMessages
        self.maxWait = maxWait
    }
}

/// How a subscriber consumes, as its transport needs to know it: RabbitMQ's `basic.qos`
/// prefetch and no-ack mode, Kafka's commit strategy and fetch sizing, a JetStream consumer's
/// `max_ack_pending` all follow from it.
public struct SubscriptionOptions: Sendable, Hashable {
    /// Batch deliveries, or nil for one message per delivery.
    public var batch: BatchOptions?
    /// How many deliveries the subscriber processes at once.
    public var maxConcurrency: Int
    /// The ack policy in force (the subscriber's, or the transport's default).
    public var ackPolicy: AckPolicy

    public init(batch: BatchOptions? = nil, maxConcurrency: Int = 1, ackPolicy: AckPolicy) {
        self.batch = batch
        self.maxConcurrency = maxConcurrency
        self.ackPolicy = ackPolicy
    }

    /// The most messages the subscriber holds at once: `maxConcurrency` deliveries of up to one
    /// batch each. A transport that prefetches should ask for no more.
    public var prefetch: Int { maxConcurrency * (batch?.maxMessages ?? 1) }

    /// Whether deliveries are acknowledged on receipt, before the handler runs (`.ackFirst`):
    /// a transport may consume without acknowledgements (AMQP no-ack, Kafka commit on fetch).
    public var acknowledgesOnReceipt: Bool { ackPolicy == .ackFirst }
}
