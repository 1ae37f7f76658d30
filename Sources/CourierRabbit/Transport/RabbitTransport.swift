@_spi(BrokerModule) public import Courier
public import Logging
import NIOCore
import Synchronization

/// The RabbitMQ broker: `Broker<RabbitTransport>`.
public typealias RabbitBroker = Broker<RabbitTransport>
/// Subscribers declared apart from a broker and included into brokers of this kind (FastStream's `RabbitRouter`).
public typealias RabbitRouter = BrokerRouter<RabbitTransport>

extension Broker where Transport == RabbitTransport {
    /// Creates a RabbitMQ broker for `amqp://user:password@host:port/vhost`.
    public convenience init(
        url: String = "amqp://guest:guest@127.0.0.1:5672/",
        middlewares: [any CourierMiddleware] = [],
        logger: Logger = Logger(label: "courier.rabbitmq"),
        options: BrokerOptions = BrokerOptions()
    ) throws {
        self.init(configuration: try RabbitConfiguration(url: url), middlewares: middlewares, logger: logger, options: options)
    }

    /// Creates a RabbitMQ broker from a configuration (TLS settings, heartbeat, reconnecting).
    public convenience init(
        configuration: RabbitConfiguration,
        middlewares: [any CourierMiddleware] = [],
        logger: Logger = Logger(label: "courier.rabbitmq"),
        options: BrokerOptions = BrokerOptions()
    ) {
        self.init(transport: RabbitTransport(configuration: configuration, logger: logger), middlewares: middlewares, logger: logger, options: options)
    }
}

/// Moves messages through RabbitMQ exchanges and queues on Courier's own AMQP client.
///
/// One connection per broker: a publishing channel with publisher confirms (a publish returns
/// once the server confirmed it; an unroutable `mandatory` message or a nack is an error), and a
/// channel per subscriber with a `basic.qos` prefetch of its concurrency. Ack is `basic.ack`,
/// nack `basic.nack` (requeued unless told otherwise), reject `basic.reject` (dead-lettered where
/// the queue has a dead-letter exchange). Requests use direct reply-to.
///
/// A lost connection comes back (``RabbitConfiguration/reconnect``): ``run()`` notices the loss
/// and reconnects with backoff; the new connection gets every exchange, queue and binding
/// declared again, every subscriber's consumer and the reply consumer resumed, and publishes
/// that were waiting for their confirm are sent again. Deliveries the old connection left
/// unsettled are the server's again (it redelivers them, flagged `redelivered`); they are not
/// handed to handlers twice from the old connection.
public final class RabbitTransport: BrokerTransport {
    public typealias Source = RabbitSource
    public typealias Destination = RabbitDestination
    public typealias PublishOptions = RabbitPublishOptions

    public let configuration: RabbitConfiguration
    public let description: BrokerDescription
    private let logger: Logger
    let session: RabbitSession
    private let recoverable = Recoverable()
    private let replies = CorrelatedReplies<String, InboundDelivery>()

    /// What a new connection gets back after a reconnect, shared with the session's recovery.
    private final class Recoverable: Sendable {
        let topology = Mutex(RabbitTopology())
        let subscriptions = Mutex<[ObjectIdentifier: RabbitSubscription]>([:])
        let replyConsumer = Mutex<ReplyConsumer>(.none)
    }

    /// The direct reply-to consumer. Its deliveries, from whichever publishing channel is
    /// current, go to one buffer per run of the transport, which a task of its own hands to the
    /// requests waiting for them until ``close()`` finishes it.
    private enum ReplyConsumer {
        case none
        /// A start under way, which every request waits for.
        case starting(PendingResult<Void>, HandOffQueue<AMQPDelivery>)
        case running(publisher: UInt16, generation: Int, HandOffQueue<AMQPDelivery>)
    }

    public init(configuration: RabbitConfiguration, logger: Logger = Logger(label: "courier.rabbitmq")) {
        self.configuration = configuration
        self.logger = logger
        self.description = BrokerDescription(messagingSystem: "rabbitmq", serverAddress: configuration.host, serverPort: configuration.port)
        let recoverable = self.recoverable
        self.session = RabbitSession(
            configuration: configuration,
            logger: logger,
            recover: { live in
                try await Self.declare(recoverable.topology.withLock { $0.declarations }, on: live.connection, logger: logger)
                for subscription in recoverable.subscriptions.withLock({ Array($0.values) }) {
                    try await subscription.start(on: live)
                }
            },
            publisherOpened: { live in
                let buffer = recoverable.replyConsumer.withLock { state -> HandOffQueue<AMQPDelivery>? in
                    if case .running(_, _, let buffer) = state { buffer } else { nil }
                }
                guard let buffer else { return }
                try await live.publisher.consume(queue: "amq.rabbitmq.reply-to", tag: "courier-replies", into: buffer, outlivesConnection: true, noAck: true)
                recoverable.replyConsumer.withLock { $0 = .running(publisher: live.publisher.id, generation: live.generation, buffer) }
            }
        )
    }

    public var defaultAckPolicy: AckPolicy { .rejectOnError }

    public func connect() async throws {
        _ = try await session.live()
    }

    /// Keeps the connection: waits for it to be lost and reconnects (with recovery), until the
    /// transport closes. Throws when reconnecting is off or gave up, which stops the broker.
    public func run() async throws {
        try await keepConnected()
    }

    private func keepConnected() async throws {
        let epoch = session.epoch
        while !Task.isCancelled {
            let live: RabbitSession.Live
            do {
                live = try await session.live()
            } catch {
                if session.epoch != epoch || Task.isCancelled { return }
                throw error
            }
            try? await live.connection.closeFuture.get()
            if session.epoch != epoch { return }
            let reason = live.connection.closeReason
            guard configuration.reconnect != nil else {
                logger.error("RabbitMQ connection lost; reconnecting is off", metadata: ["courier.rabbitmq.reason": "\(reason.map { "\($0)" } ?? "socket closed")"])
                throw reason ?? RabbitError(.connectionClosed, "the connection to RabbitMQ was lost")
            }
            logger.warning("RabbitMQ connection lost; reconnecting", metadata: ["courier.rabbitmq.reason": "\(reason.map { "\($0)" } ?? "socket closed")"])
        }
    }

    /// Hands direct reply-to replies to the requests waiting for them, until ``close()``.
    private func handReplies(from buffer: HandOffQueue<AMQPDelivery>) async {
        while let deliveries = await buffer.next(upTo: 64) {
            for delivery in deliveries {
                let message = RabbitIncoming.message(delivery, queue: "amq.rabbitmq.reply-to")
                guard let id = message.correlationID, replies.deliver(InboundDelivery(messages: [message], settlement: .none), for: id) else {
                    logger.debug("RabbitMQ reply nobody waits for (late or stray)", metadata: ["courier.correlation_id": "\(message.correlationID ?? "-")"])
                    continue
                }
            }
        }
    }

    // MARK: - Publishing

    public func send(_ publication: Publication) async throws -> [PublishReceipt] {
        let destination = Self.replyRouting(try destination(of: publication), isReply: publication.destinationIsTemporary)
        let messages = publication.messages.map { message in
            let options = options(of: message)
            // Direct reply-to: RabbitMQ returns the reply as unroutable although it delivers it,
            // so a reply is published without `mandatory`.
            let mandatory = (options?.mandatory ?? true) && !destination.routingKey.hasPrefix("amq.rabbitmq.reply-to")
            return AMQPPublish(
                exchange: destination.exchange,
                routingKey: destination.routingKey,
                mandatory: mandatory,
                properties: RabbitIncoming.properties(of: message, options: options),
                body: message.body
            )
        }
        try await publish(messages)
        return publication.plainReceipts
    }

    /// A reply to FastStream's `reply_to="queue|exchange"` goes through that exchange, with the
    /// queue as routing key.
    static func replyRouting(_ destination: RabbitDestination, isReply: Bool) -> RabbitDestination {
        guard isReply, destination.exchange.isEmpty, let bar = destination.routingKey.firstIndex(of: "|") else { return destination }
        let key = destination.routingKey
        return RabbitDestination(exchange: String(key[key.index(after: bar)...]), routingKey: String(key[..<bar]))
    }

    /// Publishes in order (a batch pipelined under one round of confirms) and waits for the
    /// confirms; publishes the connection lost before their confirms go again on the next
    /// connection, and nacked ones (a quorum queue electing its leader) after a short pause, each
    /// as often as ``RabbitConfiguration/publishRetries`` allows (a batch goes again whole); a
    /// publishing channel the server closed (a missing exchange: 404) is replaced for the next
    /// publish. The whole, waiting for a reconnect included, is bounded by
    /// ``RabbitConfiguration/publishTimeout``.
    private func publish(_ messages: [AMQPPublish]) async throws {
        var retries = 0
        var nackPauses = Self.nackPauses.attempts()
        let epoch = session.epoch
        let deadline = ContinuousClock.now + configuration.publishTimeout
        while true {
            let live = try await session.live(deadline: deadline)
            do {
                try await live.publisher.publish(messages, deadline: deadline)
                return
            } catch let error as RabbitError {
                if !live.connection.isOpen, configuration.reconnect != nil, retries < configuration.publishRetries, session.epoch == epoch {
                    retries += 1
                    logger.debug("RabbitMQ publish lost with the connection; sending it again", metadata: ["courier.rabbitmq.count": "\(messages.count)"])
                    continue
                }
                if error.code == .publishRefused, error.replyCode == nil, retries < configuration.publishRetries,
                    let pause = nackPauses.nextDelay(), ContinuousClock.now + pause < deadline
                {
                    // Nacked, not returned: the queue could not take it now (a quorum queue without
                    // a leader yet); the same message goes again, keeping its message id.
                    retries += 1
                    logger.debug("RabbitMQ publish nacked; sending it again", metadata: ["courier.rabbitmq.count": "\(messages.count)"])
                    try await Task.sleep(for: pause)
                    continue
                }
                if error.code == .closedByServer, live.connection.isOpen {
                    try? await session.replacePublisher(of: live)
                }
                throw error
            }
        }
    }

    /// The pauses before sending a nacked publish again: a quorum queue elects its leader within
    /// about a second.
    private static let nackPauses = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .milliseconds(800), jitter: 0)

    // MARK: - Consuming

    public func subscribe(to source: RabbitSource, options: SubscriptionOptions) async throws -> any TransportSubscription {
        let live = try await session.live()
        try await Self.declare(source.declarations, on: live.connection, logger: nil)
        recoverable.topology.withLock { topology in
            for declaration in source.declarations { topology.record(declaration) }
        }
        let subscription = RabbitSubscription(source: source, options: options, logger: logger) { [recoverable] subscription in
            recoverable.subscriptions.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(subscription)) }
        }
        // Registered first: a recovery from here on resumes it too (a start is once per connection).
        recoverable.subscriptions.withLock { $0[ObjectIdentifier(subscription)] = subscription }
        do {
            try await subscription.start(on: live)
        } catch {
            recoverable.subscriptions.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(subscription)) }
            throw error
        }
        return subscription
    }

    public func openReplyInbox(for correlationID: String) async throws -> ReplyInbox {
        let live = try await session.live()
        let start = recoverable.replyConsumer.withLock { state -> PendingResult<Void>? in
            let buffer: HandOffQueue<AMQPDelivery>
            switch state {
            case .running(let publisher, let generation, _) where publisher == live.publisher.id && generation == live.generation:
                return nil
            case .starting(let start, _):
                return start
            case .running(_, _, let current):
                buffer = current
            case .none:
                // Requests work without ``run()`` (a broker used only to publish and ask): the
                // replies have a task of their own, from the first request to close().
                buffer = HandOffQueue()
                Task { await self.handReplies(from: buffer) }
            }
            let start = PendingResult<Void>()
            state = .starting(start, buffer)
            Task { await self.startReplyConsumer(on: live, into: buffer, start: start) }
            return start
        }
        // Every request waits for the one start (and no longer than its task is not cancelled).
        _ = try await start?.value()
        return ReplyInbox(destination: "amq.rabbitmq.reply-to", subscription: CorrelatedReplySubscription(replies: replies, correlationID: correlationID))
    }

    /// Direct reply-to: a no-ack consumer of the pseudo-queue on the channel that publishes the
    /// requests (a new connection or publishing channel starts it again). The start moves the
    /// reply consumer's state on itself, then tells every request waiting for it.
    private func startReplyConsumer(on live: RabbitSession.Live, into buffer: HandOffQueue<AMQPDelivery>, start: PendingResult<Void>) async {
        let outcome: Result<Void, any Error>
        do {
            try await live.publisher.consume(queue: "amq.rabbitmq.reply-to", tag: "courier-replies", into: buffer, outlivesConnection: true, noAck: true)
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        let abandoned = recoverable.replyConsumer.withLock { state -> HandOffQueue<AMQPDelivery>? in
            guard case .starting(let current, let buffer) = state, current === start else { return nil }
            switch outcome {
            case .success:
                state = .running(publisher: live.publisher.id, generation: live.generation, buffer)
                return nil
            case .failure:
                state = .none
                return buffer
            }
        }
        abandoned?.finish()
        start.resolve(outcome)
    }

    // MARK: - Topology

    /// Declares `queue` (on a channel of its own: a refused declaration closes only that
    /// channel); declared again after a reconnect.
    public func declareQueue(_ queue: RabbitQueue) async throws {
        try await declare(.queue(queue))
    }

    /// Declares `exchange`; declared again after a reconnect.
    public func declareExchange(_ exchange: RabbitExchange) async throws {
        try await declare(.exchange(exchange))
    }

    /// Binds `queue` to `exchange` with `routingKey` (and header matches in `arguments`).
    public func bind(queue: String, to exchange: String, routingKey: String, arguments: AMQPFieldTable = [:]) async throws {
        try await declare(.queueBinding(queue: queue, exchange: exchange, routingKey: routingKey, arguments: arguments))
    }

    /// Binds exchange `destination` to exchange `source`: what `source` routes with
    /// `routingKey` (or header matches in `arguments`) goes on to `destination`.
    public func bind(exchange destination: String, to source: String, routingKey: String, arguments: AMQPFieldTable = [:]) async throws {
        try await declare(.exchangeBinding(destination: destination, source: source, routingKey: routingKey, arguments: arguments))
    }

    /// Deletes `queue` and what it holds.
    public func deleteQueue(_ queue: String) async throws {
        try await withAdminChannel { channel in
            try await channel.call(.queueDelete(queue: queue, ifUnused: false, ifEmpty: false, noWait: false))
        }
        recoverable.topology.withLock { $0.forgetQueue(queue) }
    }

    /// Deletes `exchange` and its bindings.
    public func deleteExchange(_ exchange: String) async throws {
        try await withAdminChannel { channel in
            try await channel.call(.exchangeDelete(exchange: exchange, ifUnused: false, noWait: false))
        }
        recoverable.topology.withLock { $0.forgetExchange(exchange) }
    }

    private func declare(_ declaration: RabbitTopology.Declaration) async throws {
        try await withAdminChannel { channel in
            try await channel.call(declaration.method)
        }
        recoverable.topology.withLock { $0.record(declaration) }
    }

    private func withAdminChannel(_ body: (AMQPChannel) async throws -> Void) async throws {
        let live = try await session.live()
        let channel = try await live.connection.openChannel()
        try await body(channel)
        try? await channel.close()
    }

    /// Declares `declarations` in order on one channel. With a logger (a recovery), a refused
    /// declaration is logged and the rest still declared (on a new channel: the refusal closed
    /// the old one); without, it throws.
    private static func declare(_ declarations: [RabbitTopology.Declaration], on connection: AMQPConnection, logger: Logger?) async throws {
        guard !declarations.isEmpty else { return }
        var channel = try await connection.openChannel()
        for declaration in declarations {
            do {
                try await channel.call(declaration.method)
            } catch let error as RabbitError where error.code == .closedByServer && connection.isOpen {
                guard let logger else { throw error }
                logger.error("RabbitMQ refused to declare \(declaration.description) again after reconnecting", metadata: ["error": "\(error)"])
                channel = try await connection.openChannel()
            }
        }
        try? await channel.close()
    }

    public func close() async {
        replies.cancelAll()
        await session.close()
        let replyBuffer = recoverable.replyConsumer.withLock { state -> HandOffQueue<AMQPDelivery>? in
            defer { state = .none }
            switch state {
            case .none: return nil
            case .starting(_, let buffer), .running(_, _, let buffer): return buffer
            }
        }
        replyBuffer?.finish()
    }
}
