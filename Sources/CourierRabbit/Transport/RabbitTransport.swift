public import Courier
public import Logging
import NIOCore
import Synchronization

/// The RabbitMQ broker: `Broker<RabbitTransport>`.
public typealias RabbitBroker = Broker<RabbitTransport>

extension Broker where Transport == RabbitTransport {
    /// Creates a RabbitMQ broker for `amqp://user:password@host:port/vhost`.
    public convenience init(
        url: String = "amqp://guest:guest@127.0.0.1:5672/",
        middlewares: [any CourierMiddleware] = [],
        logger: Logger = Logger(label: "courier.rabbitmq")
    ) throws {
        self.init(transport: RabbitTransport(configuration: try RabbitConfiguration(url: url), logger: logger), middlewares: middlewares, logger: logger)
    }
}

/// Moves messages through RabbitMQ exchanges and queues on Courier's own AMQP client.
///
/// One connection per broker: a publishing channel with publisher confirms (a publish returns
/// once the server confirmed it; an unroutable `mandatory` message or a nack is an error), and a
/// channel per subscriber with a `basic.qos` prefetch of its concurrency. Ack is `basic.ack`,
/// nack `basic.nack` (requeued unless told otherwise), reject `basic.reject` (dead-lettered where
/// the queue has a dead-letter exchange). Requests use direct reply-to.
public final class RabbitTransport: BrokerTransport {
    public typealias Source = RabbitSource
    public typealias Destination = RabbitDestination
    public typealias PublishOptions = RabbitPublishOptions

    public let configuration: RabbitConfiguration
    public let description: BrokerDescription
    private let logger: Logger
    private let connection = Mutex<Task<(AMQPConnection, AMQPChannel), any Error>?>(nil)
    private let replies = CorrelatedReplies<String, InboundDelivery>()
    private let replyConsumer = Mutex<Task<Void, any Error>?>(nil)

    public init(configuration: RabbitConfiguration, logger: Logger = Logger(label: "courier.rabbitmq")) {
        self.configuration = configuration
        self.logger = logger
        self.description = BrokerDescription(messagingSystem: "rabbitmq", serverAddress: configuration.host, serverPort: configuration.port)
    }

    public var defaultAckPolicy: AckPolicy { .rejectOnError }

    public func connect() async throws {
        _ = try await publishing()
    }

    /// The connection and its publishing channel, connecting on first use.
    private func publishing() async throws -> (AMQPConnection, AMQPChannel) {
        let configuration = self.configuration
        let task = connection.withLock { task in
            if let task { return task }
            let created = Task {
                let connection = try await AMQPConnection.connect(
                    host: configuration.host,
                    port: configuration.port,
                    configuration: .init(
                        username: configuration.username,
                        password: configuration.password,
                        virtualHost: configuration.virtualHost,
                        heartbeat: UInt16(clamping: configuration.heartbeat.components.seconds)
                    ),
                    connectTimeout: configuration.connectTimeout
                )
                let channel = try await connection.openChannel()
                try await channel.selectConfirms()
                return (connection, channel)
            }
            task = created
            return created
        }
        do {
            return try await task.value
        } catch {
            connection.withLock { if $0 == task { $0 = nil } }
            throw error
        }
    }

    public func send(_ publication: Publication) async throws -> [PublishReceipt] {
        let destination = try destination(of: publication)
        let (_, channel) = try await publishing()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for message in publication.messages {
                let options = options(of: message)
                // Direct reply-to: RabbitMQ returns the reply as unroutable although it delivers
                // it, so a reply is published without `mandatory`.
                let mandatory = (options?.mandatory ?? true) && !destination.routingKey.hasPrefix("amq.rabbitmq.reply-to")
                let properties = RabbitIncoming.properties(of: message, options: options)
                group.addTask {
                    try await channel.publish(exchange: destination.exchange, routingKey: destination.routingKey, mandatory: mandatory, properties: properties, body: message.body)
                }
            }
            try await group.waitForAll()
        }
        return publication.plainReceipts
    }

    public func subscribe(to source: RabbitSource, options: SubscriptionOptions) async throws -> any TransportSubscription {
        let (connection, _) = try await publishing()
        let channel = try await connection.openChannel()
        if let exchange = source.exchange, exchange.declare {
            try await channel.call(.exchangeDeclare(
                exchange: exchange.name, type: exchange.kind.rawValue, passive: false, durable: exchange.durable,
                autoDelete: exchange.autoDelete, internal: false, noWait: false, arguments: exchange.arguments
            ))
        }
        let queue = source.queue
        if queue.declare {
            try await channel.call(.queueDeclare(
                queue: queue.name, passive: false, durable: queue.durable, exclusive: queue.exclusive,
                autoDelete: queue.autoDelete, noWait: false, arguments: queue.arguments
            ))
        }
        if let exchange = source.exchange {
            try await channel.call(.queueBind(
                queue: queue.name, exchange: exchange.name, routingKey: source.routingKey ?? queue.name, noWait: false, arguments: source.bindingArguments
            ))
        }
        try await channel.call(.basicQos(prefetchSize: 0, prefetchCount: UInt16(clamping: options.prefetch), global: false))
        let tag = "courier-" + MessageIdentifier.make()
        let deliveries = try await channel.consume(queue: queue.name, tag: tag)
        return RabbitSubscription(channel: channel, tag: tag, queue: queue.name, deliveries: deliveries, batch: options.batch)
    }

    public func openReplyInbox(for correlationID: String) async throws -> ReplyInbox {
        let (_, channel) = try await publishing()
        let replies = self.replies
        let logger = self.logger
        let task = replyConsumer.withLock { task in
            if let task { return task }
            // Direct reply-to: a no-ack consumer of the pseudo-queue on the channel that publishes the requests.
            let created = Task {
                let buffer = try await channel.consume(queue: "amq.rabbitmq.reply-to", tag: "courier-replies", noAck: true)
                Task {
                    while let deliveries = await buffer.next() {
                        for delivery in deliveries {
                            let message = RabbitIncoming.message(delivery, queue: "amq.rabbitmq.reply-to")
                            guard let id = message.correlationID, replies.deliver(InboundDelivery(messages: [message], settlement: .none), for: id) else {
                                logger.debug("RabbitMQ reply nobody waits for (late or stray)", metadata: ["courier.correlation_id": "\(message.correlationID ?? "-")"])
                                continue
                            }
                        }
                    }
                }
            }
            task = created
            return created
        }
        try await task.value
        return ReplyInbox(destination: "amq.rabbitmq.reply-to", subscription: CorrelatedReplySubscription(replies: replies, correlationID: correlationID))
    }

    // MARK: - Topology

    /// Declares `queue` (on a channel of its own: a refused declaration closes only that channel).
    public func declareQueue(_ queue: RabbitQueue) async throws {
        try await withAdminChannel { channel in
            try await channel.call(.queueDeclare(
                queue: queue.name, passive: !queue.declare, durable: queue.durable, exclusive: queue.exclusive,
                autoDelete: queue.autoDelete, noWait: false, arguments: queue.arguments
            ))
        }
    }

    /// Declares `exchange`.
    public func declareExchange(_ exchange: RabbitExchange) async throws {
        try await withAdminChannel { channel in
            try await channel.call(.exchangeDeclare(
                exchange: exchange.name, type: exchange.kind.rawValue, passive: !exchange.declare, durable: exchange.durable,
                autoDelete: exchange.autoDelete, internal: false, noWait: false, arguments: exchange.arguments
            ))
        }
    }

    /// Binds `queue` to `exchange` with `routingKey` (and header matches in `arguments`).
    public func bind(queue: String, to exchange: String, routingKey: String, arguments: AMQPFieldTable = [:]) async throws {
        try await withAdminChannel { channel in
            try await channel.call(.queueBind(queue: queue, exchange: exchange, routingKey: routingKey, noWait: false, arguments: arguments))
        }
    }

    /// Deletes `queue` and what it holds.
    public func deleteQueue(_ queue: String) async throws {
        try await withAdminChannel { channel in
            try await channel.call(.queueDelete(queue: queue, ifUnused: false, ifEmpty: false, noWait: false))
        }
    }

    private func withAdminChannel(_ body: (AMQPChannel) async throws -> Void) async throws {
        let (connection, _) = try await publishing()
        let channel = try await connection.openChannel()
        try await body(channel)
        try? await channel.close()
    }

    public func close() async {
        replies.cancelAll()
        let task = connection.withLock { $0 }
        if let (connection, _) = try? await task?.value {
            await connection.close()
        }
    }
}

/// A subscriber's consumer on a channel of its own.
final class RabbitSubscription: TransportSubscription {
    private let channel: AMQPChannel
    private let tag: String
    private let queue: String
    private let deliveries: AsyncBuffer<AMQPDelivery>
    private let batch: BatchOptions?

    init(channel: AMQPChannel, tag: String, queue: String, deliveries: AsyncBuffer<AMQPDelivery>, batch: BatchOptions?) {
        self.channel = channel
        self.tag = tag
        self.queue = queue
        self.deliveries = deliveries
        self.batch = batch
    }

    func next() async throws -> InboundDelivery? {
        guard let taken = await deliveries.next(upTo: batch?.maxMessages ?? 1) else { return nil }
        let channel = self.channel
        let messages = taken.map { RabbitIncoming.message($0, queue: queue) }
        let tags = taken.map(\.deliveryTag)
        let settlement = Settlement { request in
            for tag in tags {
                switch request.outcome {
                case .ack: channel.ack(tag)
                case .nack: channel.nack(tag, requeue: request.requeue ?? true)
                case .reject: channel.reject(tag, requeue: request.requeue ?? false)
                }
            }
        }
        return InboundDelivery(messages: messages, settlement: settlement)
    }

    /// Cancels the consumer: the server sends no more; what was delivered can still be settled.
    func stop() async {
        _ = try? await channel.call(.basicCancel(consumerTag: tag, noWait: false))
        deliveries.finish()
    }
}
