public import Courier
public import Tracing

/// A queue, as a subscriber declares and consumes it. FastStream 0.7 declares queues durable, and
/// so does Courier, so the two declare the same queue compatibly.
public struct RabbitQueue: Sendable, Hashable {
    public var name: String
    public var durable: Bool
    public var exclusive: Bool
    public var autoDelete: Bool
    /// `x-dead-letter-exchange`, `x-message-ttl`, `x-max-length`, `x-queue-type`…
    public var arguments: AMQPFieldTable
    /// Whether the subscriber declares it (false: it must exist).
    public var declare: Bool

    public init(_ name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false, arguments: AMQPFieldTable = [:], declare: Bool = true) {
        self.name = name
        self.durable = durable
        self.exclusive = exclusive
        self.autoDelete = autoDelete
        self.arguments = arguments
        self.declare = declare
    }
}

/// An exchange.
public struct RabbitExchange: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case direct, fanout, topic, headers
    }

    public var name: String
    public var kind: Kind
    public var durable: Bool
    public var autoDelete: Bool
    /// An internal exchange takes messages only from other exchanges bound to it, never from a publisher.
    public var `internal`: Bool
    /// `alternate-exchange`…
    public var arguments: AMQPFieldTable
    /// Whether it is declared (false: a passive declaration, it must exist).
    public var declare: Bool

    public init(_ name: String, kind: Kind = .direct, durable: Bool = true, autoDelete: Bool = false, internal: Bool = false, arguments: AMQPFieldTable = [:], declare: Bool = true) {
        self.name = name
        self.kind = kind
        self.durable = durable
        self.autoDelete = autoDelete
        self.internal = `internal`
        self.arguments = arguments
        self.declare = declare
    }
}

/// What a RabbitMQ subscriber consumes: a queue, bound to an exchange when one is given.
public struct RabbitSource: SubscriptionSource {
    public var queue: RabbitQueue
    public var exchange: RabbitExchange?
    /// The binding's routing key (a pattern on a topic exchange); the queue's name by default.
    /// `{name}` tokens capture a word each, like FastStream's path parameters:
    /// `orders.{region}.created` binds `orders.*.created` and a delivery of
    /// `orders.eu.created` has `try context.message.rabbit.path["region"] == "eu"`.
    public var routingKey: String?
    /// The binding's arguments (header matches on a headers exchange).
    public var bindingArguments: AMQPFieldTable
    /// The consumer channel's `basic.qos` prefetch: how many unacknowledged deliveries the node
    /// sends ahead. By default the subscriber's `maxConcurrency` × batch size, so nothing waits in
    /// the client; a larger prefetch (FastStream's `Channel(prefetch_count=)`) lets a fast handler
    /// take its next delivery without a round trip to the node, each still acked after handling.
    public var prefetch: Int?

    public init(queue: RabbitQueue, exchange: RabbitExchange? = nil, routingKey: String? = nil, bindingArguments: AMQPFieldTable = [:], prefetch: Int? = nil) {
        precondition(prefetch.map { $0 > 0 && $0 <= Int(UInt16.max) } ?? true, "prefetch is between 1 and 65535")
        self.queue = queue
        self.exchange = exchange
        self.routingKey = routingKey
        self.bindingArguments = bindingArguments
        self.prefetch = prefetch
    }

    /// A plain destination is a durable queue on the default exchange, as in FastStream.
    public init(destination: String) {
        self.init(queue: RabbitQueue(destination))
    }

    /// A queue (declared durable unless told otherwise).
    public static func queue(_ queue: RabbitQueue, prefetch: Int? = nil) -> Self { Self(queue: queue, prefetch: prefetch) }

    /// A queue bound to `exchange` with `routingKey`.
    public static func queue(_ queue: RabbitQueue, exchange: RabbitExchange, routingKey: String? = nil, arguments: AMQPFieldTable = [:], prefetch: Int? = nil) -> Self {
        Self(queue: queue, exchange: exchange, routingKey: routingKey, bindingArguments: arguments, prefetch: prefetch)
    }

    public var subscribedDestination: SubscribedDestination {
        SubscribedDestination(name: queue.name, subscriptionName: exchange?.name, isTemporary: queue.exclusive)
    }
}

/// Where a RabbitMQ publish goes: an exchange (the default one, `""`, by default) and a routing key.
public struct RabbitDestination: BrokerDestination, Hashable, MessagingSpanAttributes {
    public var exchange: String
    public var routingKey: String

    /// A plain name is a queue, reached through the default exchange.
    public init(name: String) {
        self.init(exchange: "", routingKey: name)
    }

    public init(exchange: String, routingKey: String) {
        self.exchange = exchange
        self.routingKey = routingKey
    }

    /// A queue, through the default exchange.
    public static func queue(_ name: String) -> Self { Self(exchange: "", routingKey: name) }

    /// An exchange with a routing key.
    public static func exchange(_ name: String, routingKey: String = "") -> Self { Self(exchange: name, routingKey: routingKey) }

    /// The exchange, or for the default exchange the queue the routing key names.
    public var name: String { exchange.isEmpty ? routingKey : exchange }

    public func addSpanAttributes(to attributes: inout SpanAttributes, conventions: TelemetryConventions) {
        if !routingKey.isEmpty { attributes.set("messaging.rabbitmq.destination.routing_key", value: .string(routingKey)) }
    }

    /// The semantic conventions' producer-side name, `{exchange}:{routing key}` (the one that is
    /// not empty alone; `amq.default` for the default exchange without a routing key); FastStream's
    /// `{exchange}.{routing key}` in span names (`default` for the default exchange) with the
    /// exchange as `messaging.destination.name`.
    public func messagingDestination(conventions: TelemetryConventions) -> MessagingDestinationName? {
        switch conventions {
        case .openTelemetry:
            let parts = [exchange, routingKey].filter { !$0.isEmpty }
            return MessagingDestinationName(parts.isEmpty ? "amq.default" : parts.joined(separator: ":"))
        case .fastStream:
            return MessagingDestinationName(span: "\(exchange.isEmpty ? "default" : exchange).\(routingKey)", attribute: exchange)
        }
    }
}

/// Per-message options of a RabbitMQ publish.
public struct RabbitPublishOptions: Sendable, Hashable {
    /// Delivery mode 2: the message survives a broker restart in a durable queue.
    public var persistent: Bool
    public var priority: UInt8?
    /// How long the message may wait in a queue.
    public var expiration: Duration?
    /// The message's `type` property.
    public var type: String?
    /// Whether an unroutable message is an error (returned) rather than dropped.
    public var mandatory: Bool

    public init(persistent: Bool = false, priority: UInt8? = nil, expiration: Duration? = nil, type: String? = nil, mandatory: Bool = true) {
        self.persistent = persistent
        self.priority = priority
        self.expiration = expiration
        self.type = type
        self.mandatory = mandatory
    }
}

/// What RabbitMQ adds to a delivered message, in `IncomingMessage.raw`.
public struct RabbitMessageInfo: Sendable, MessagingSpanAttributes {
    /// The exchange the message was published to (empty: the default exchange).
    public var exchange: String
    public var routingKey: String
    /// The queue it was consumed from.
    public var queue: String
    /// The values of the subscription routing key's `{name}` captures.
    public var path: [String: String] = [:]
    public var deliveryTag: UInt64
    public var redelivered: Bool
    public var properties: AMQPBasicProperties

    public func addSpanAttributes(to attributes: inout SpanAttributes, conventions: TelemetryConventions) {
        if !routingKey.isEmpty { attributes.set("messaging.rabbitmq.destination.routing_key", value: .string(routingKey)) }
        attributes.set("messaging.rabbitmq.message.delivery_tag", value: .int64(Int64(bitPattern: deliveryTag)))
    }

    /// The semantic conventions' consumer-side name, `{exchange}:{routing key}:{queue}` without
    /// the empty parts, and the queue once when the routing key names it; FastStream's
    /// `{exchange}.{routing key}` in span names (`default` for the default exchange) with the
    /// exchange as `messaging.destination_publish.name`.
    public func messagingDestination(conventions: TelemetryConventions) -> MessagingDestinationName? {
        switch conventions {
        case .openTelemetry:
            let parts = [exchange, routingKey, routingKey == queue ? "" : queue].filter { !$0.isEmpty }
            return MessagingDestinationName(parts.isEmpty ? queue : parts.joined(separator: ":"))
        case .fastStream:
            return MessagingDestinationName(span: "\(exchange.isEmpty ? "default" : exchange).\(routingKey)", attribute: exchange)
        }
    }
}

extension IncomingMessage {
    /// What RabbitMQ adds to the message (exchange, routing key, delivery tag, properties).
    ///
    /// - Throws: `CourierError` `.wrongBroker` for another broker's message.
    public var rabbit: RabbitMessageInfo {
        get throws(CourierError) { try brokerInfo(RabbitMessageInfo.self, broker: "RabbitMQ") }
    }
}
