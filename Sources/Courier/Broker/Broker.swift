public import Logging
import NIOCore
import Synchronization
import Tracing

/// A message broker client: subscribers, publishing, request/reply and the middleware chain,
/// over any ``BrokerTransport``.
///
/// Broker modules name their broker as a specialisation, e.g. `MemoryBroker` is
/// `Broker<MemoryTransport>`. Register subscribers, then run the broker, usually through
/// ``CourierApp``:
///
/// ```swift
/// let broker = MemoryBroker(middlewares: [TelemetryMiddleware()])
/// broker.subscriber("orders").publisher("invoices").handle { (order: Order, context) in
///     Invoice(for: order)
/// }
/// try await CourierApp(brokers: [broker]).runService()
/// ```
public final class Broker<Transport: BrokerTransport>: SubscriberRegistry {
    /// The transport that moves the messages.
    public let transport: Transport
    /// The middlewares every delivery and every publication passes through, in order.
    public let middlewares: [any CourierMiddleware]
    /// The broker's logger.
    public let logger: Logger
    /// Settings every subscriber and publish shares unless it says otherwise.
    public let options: BrokerOptions

    let dispatch: PublishNext
    private let state = Mutex(State())

    private struct State {
        var subscribers: [SubscriberDefinition<Transport.Source>] = []
        var phase = Phase.idle
        /// The running subscriptions, to stop on ``stopIntake()``.
        var subscriptions: [any TransportSubscription] = []
        /// Subscribers registered after ``run()`` took the list: it subscribes them at once.
        /// Finished on stop, which also ends ``run()``'s wait for late subscribers.
        var lateSubscribers: AsyncStream<SubscriberDefinition<Transport.Source>>.Continuation?
    }

    private enum Phase {
        case idle
        case starting
        case running
        case stopping
        case stopped
    }

    /// Opens once every subscriber is subscribed, or the broker failed to start, or stopped.
    private let subscribed = Latch()

    /// Creates a broker over `transport`.
    public init(
        transport: Transport,
        middlewares: [any CourierMiddleware] = [],
        logger: Logger = Logger(label: "courier"),
        options: BrokerOptions = BrokerOptions()
    ) {
        self.transport = transport
        self.middlewares = middlewares
        self.logger = logger
        self.options = options
        self.dispatch = middlewares.publishChain { [transport] publication in
            try await transport.send(publication)
        }
    }

    // MARK: - Publishing

    /// Publishes `body` to a destination of the broker's own kinds (a Redis list, a JetStream
    /// subject…), in the caller's trace context, and returns the broker's receipt.
    ///
    /// A nil body (an `Optional` that is nil) publishes nothing and returns nil, unless `options`
    /// are given: then the message goes without a value (a Kafka tombstone for the options' key).
    @discardableResult
    public func publish<Body: MessageEncodable>(
        _ body: Body,
        to destination: Transport.Destination,
        headers: MessageHeaders = [:],
        correlationID: String? = nil,
        replyTo: String? = nil,
        options: Transport.PublishOptions? = nil
    ) async throws -> PublishReceipt? {
        let message = try self.options.json.withCurrent {
            try OutgoingMessage(body, headers: headers, correlationID: correlationID, replyTo: replyTo, options: options)
        }
        guard let message else {
            return nil
        }
        return try await dispatch(publication(to: destination, [message], isBatch: false)).first
    }

    /// Publishes `body` to the destination named `destination`, of the broker's default kind.
    @discardableResult
    public func publish<Body: MessageEncodable>(
        _ body: Body,
        to destination: String,
        headers: MessageHeaders = [:],
        correlationID: String? = nil,
        replyTo: String? = nil,
        options: Transport.PublishOptions? = nil
    ) async throws -> PublishReceipt? {
        try await publish(
            body,
            to: Transport.Destination(name: destination),
            headers: headers,
            correlationID: correlationID,
            replyTo: replyTo,
            options: options
        )
    }

    /// Publishes several messages to a destination in one batch; they share `headers` and the
    /// correlation id, and each gets its own creation context in the trace. Returns a receipt per
    /// message published (nil bodies are skipped).
    @discardableResult
    public func publishBatch<Body: MessageEncodable>(
        _ bodies: [Body],
        to destination: Transport.Destination,
        headers: MessageHeaders = [:],
        correlationID: String? = nil
    ) async throws -> [PublishReceipt] {
        try await publishBatch(bodies.map { ($0, nil) }, to: destination, headers: headers, correlationID: correlationID)
    }

    /// Publishes a batch to the destination named `destination`, of the broker's default kind.
    @discardableResult
    public func publishBatch<Body: MessageEncodable>(
        _ bodies: [Body],
        to destination: String,
        headers: MessageHeaders = [:],
        correlationID: String? = nil
    ) async throws -> [PublishReceipt] {
        try await publishBatch(bodies, to: Transport.Destination(name: destination), headers: headers, correlationID: correlationID)
    }

    /// Publishes a batch whose messages carry options of their own (a Kafka key per record).
    @discardableResult
    public func publishBatch<Body: MessageEncodable>(
        _ messages: [(body: Body, options: Transport.PublishOptions?)],
        to destination: Transport.Destination,
        headers: MessageHeaders = [:],
        correlationID: String? = nil
    ) async throws -> [PublishReceipt] {
        let correlationID = correlationID ?? MessageIdentifier.make()
        let outgoing = try options.json.withCurrent {
            try messages.compactMap { message in
                try OutgoingMessage(message.body, headers: headers, correlationID: correlationID, replyTo: nil, options: message.options)
            }
        }
        guard !outgoing.isEmpty else { return [] }
        return try await dispatch(publication(to: destination, outgoing, isBatch: true))
    }

    /// Publishes a batch whose messages carry options of their own to the destination named
    /// `destination`, of the broker's default kind.
    @discardableResult
    public func publishBatch<Body: MessageEncodable>(
        _ messages: [(body: Body, options: Transport.PublishOptions?)],
        to destination: String,
        headers: MessageHeaders = [:],
        correlationID: String? = nil
    ) async throws -> [PublishReceipt] {
        try await publishBatch(messages, to: Transport.Destination(name: destination), headers: headers, correlationID: correlationID)
    }

    /// Sends `body` to a destination of the broker's own kinds and waits for the reply its
    /// handler returns.
    ///
    /// The reply travels over a destination named in the request's `replyTo`, opened for the
    /// request's correlation id; what arrives there with another correlation id is dropped.
    /// - Throws: ``CourierError`` `.requestTimedOut` when no reply arrives within `timeout`.
    public func request<Body: MessageEncodable>(
        _ body: Body,
        to destination: Transport.Destination,
        headers: MessageHeaders = [:],
        correlationID: String? = nil,
        timeout: Duration = .seconds(5),
        options: Transport.PublishOptions? = nil
    ) async throws -> IncomingMessage {
        let encoded = try self.options.json.withCurrent { try body.encodeMessageBody() } ?? EncodedBody(bytes: ByteBuffer(), contentType: nil)
        // The correlation id exists before the inbox, so a transport can route replies by it
        // (one shared reply consumer, many requests in flight).
        let correlationID = correlationID ?? MessageIdentifier.make()
        let inbox = try await transport.openReplyInbox(for: correlationID)
        do {
            var message = OutgoingMessage(encoded, headers: headers, correlationID: correlationID, replyTo: inbox.destination)
            message.options = options
            _ = try await dispatch(publication(to: destination, [message], isBatch: false))
            let reply = try await receiveReply(from: inbox, correlationID: correlationID, request: destination.name, timeout: timeout)
            await inbox.subscription.stop()
            return reply
        } catch {
            await inbox.subscription.stop()
            throw error
        }
    }

    /// Sends `body` to the destination named `destination` and waits for the reply.
    public func request<Body: MessageEncodable>(
        _ body: Body,
        to destination: String,
        headers: MessageHeaders = [:],
        correlationID: String? = nil,
        timeout: Duration = .seconds(5),
        options: Transport.PublishOptions? = nil
    ) async throws -> IncomingMessage {
        try await request(
            body,
            to: Transport.Destination(name: destination),
            headers: headers,
            correlationID: correlationID,
            timeout: timeout,
            options: options
        )
    }

    /// Sends `body` to a destination of the broker's own kinds and decodes the reply as `Reply`:
    /// `try await broker.request(order, to: .subject("quote"), as: Quote.self)`.
    public func request<Body: MessageEncodable, Reply: MessageDecodable>(
        _ body: Body,
        to destination: Transport.Destination,
        as replyType: Reply.Type,
        headers: MessageHeaders = [:],
        correlationID: String? = nil,
        timeout: Duration = .seconds(5),
        options: Transport.PublishOptions? = nil
    ) async throws -> Reply {
        try await request(body, to: destination, headers: headers, correlationID: correlationID, timeout: timeout, options: options)
            .decode(as: Reply.self)
    }

    /// Sends `body` to the destination named `destination` and decodes the reply as `Reply`:
    /// `try await broker.request(21, to: "double", as: Int.self)`.
    public func request<Body: MessageEncodable, Reply: MessageDecodable>(
        _ body: Body,
        to destination: String,
        as replyType: Reply.Type,
        headers: MessageHeaders = [:],
        correlationID: String? = nil,
        timeout: Duration = .seconds(5),
        options: Transport.PublishOptions? = nil
    ) async throws -> Reply {
        try await request(body, to: Transport.Destination(name: destination), as: Reply.self, headers: headers, correlationID: correlationID, timeout: timeout, options: options)
    }

    /// The first reply on `inbox` that carries the request's correlation id; anything else that
    /// arrives there (a late reply to an earlier request, a stray publish) is logged and dropped.
    private func receiveReply(
        from inbox: ReplyInbox,
        correlationID: String,
        request destination: String,
        timeout: Duration
    ) async throws -> IncomingMessage {
        let subscription = inbox.subscription
        let logger = self.logger
        let delivery = try await withTimeout(timeout, error: { CourierError(.requestTimedOut, "no reply from '\(destination)' within \(timeout)") }) {
            () async throws -> InboundDelivery? in
            while let delivery = try await subscription.next() {
                // A reply without a correlation id is taken: not every peer echoes it.
                if delivery.messages.first.map({ $0.correlationID == nil || $0.correlationID == correlationID }) == true {
                    return delivery
                }
                logger.warning(
                    "dropped a message on a reply inbox: its correlation id matches no request in flight",
                    metadata: [
                        "courier.destination": "\(inbox.destination)",
                        "courier.correlation_id": "\(delivery.messages.first?.correlationID ?? "-")",
                        "courier.expected_correlation_id": "\(correlationID)",
                    ]
                )
                try await delivery.settlement.settle(.ack)
            }
            return nil
        }
        guard var delivery, var reply = delivery.messages.first else {
            throw CourierError(.replyInboxClosed, "the reply inbox for '\(destination)' closed before a reply arrived")
        }
        reply.json = options.json
        delivery.messages[0] = reply
        // The reply passes the consume path too, so telemetry sees it arrive.
        let context = MessageContext(
            delivery: delivery,
            isBatch: false,
            destination: SubscribedDestination(name: inbox.destination, isTemporary: true),
            broker: transport.description,
            logger: logger,
            json: options.json,
            dispatch: dispatch
        )
        try await middlewares.consumeChain(ending: { _ in })(context)
        try await delivery.settlement.settle(.ack)
        return reply
    }

    private func publication(to destination: Transport.Destination, _ messages: [OutgoingMessage], isBatch: Bool) -> Publication {
        Publication(
            destination: destination,
            messages: messages,
            isBatch: isBatch,
            serviceContext: ServiceContext.current ?? .topLevel,
            broker: transport.description,
            logger: logger
        )
    }

    // MARK: - Subscribing

    /// Adds a subscriber: before ``run()`` it is subscribed with the others; while the broker
    /// runs, at once; after the broker stopped, never (logged).
    public func register(_ definition: SubscriberDefinition<Transport.Source>) {
        let accepted = state.withLock { state -> Bool in
            switch state.phase {
            case .idle:
                state.subscribers.append(definition)
                return true
            case .starting, .running:
                guard let late = state.lateSubscribers else { return false }
                if case .enqueued = late.yield(definition) { return true }
                return false
            case .stopping, .stopped:
                return false
            }
        }
        if !accepted {
            logger.error(
                "subscriber registered after the broker stopped; it will not receive messages",
                metadata: ["courier.destination": "\(definition.source.subscribedDestination.name)"]
            )
        }
    }

    // MARK: - Running

    /// Connects, starts every subscriber and the transport's run loop, and returns once
    /// ``stopIntake()`` was called and every in-flight message has finished; cancelling the task
    /// cancels the handlers. Subscribers registered while it runs are subscribed at once.
    ///
    /// If connecting or a subscription fails, what was started is stopped, the transport is
    /// closed and the error is thrown.
    public func run() async throws {
        let (lateSubscribers, lateContinuation) = AsyncStream.makeStream(of: SubscriberDefinition<Transport.Source>.self)
        let definitions = state.withLock { state -> [SubscriberDefinition<Transport.Source>]? in
            guard case .idle = state.phase else { return nil }
            state.phase = .starting
            state.lateSubscribers = lateContinuation
            return state.subscribers
        }
        guard let definitions else { return }
        defer { subscribed.open() }

        do {
            try await transport.connect()
        } catch {
            finish()
            throw error
        }
        try await withThrowingTaskGroup(of: Void.self) { loops in
            // The transport's own loop (a poll loop, heartbeats, reconnects) runs for as long as
            // the broker does, and ends after the transport closed.
            loops.addTask { [transport, logger] in
                do {
                    try await transport.run()
                } catch is CancellationError {
                } catch {
                    logger.error("the transport's run loop failed; the broker stops", metadata: ["error": "\(error)"])
                    await self.stopIntake()
                }
            }
            var running: [(SubscriberDefinition<Transport.Source>, any TransportSubscription)] = []
            do {
                for definition in definitions {
                    running.append((definition, try await transport.subscribe(to: definition.source, options: subscriptionOptions(definition))))
                }
            } catch {
                for (_, subscription) in running { await subscription.stop() }
                await transport.close()
                loops.cancelAll()
                finish()
                throw error
            }
            let stopAtOnce = state.withLock { state -> Bool in
                state.subscriptions = running.map(\.1)
                if case .stopping = state.phase { return true }
                state.phase = .running
                return false
            }
            if stopAtOnce {
                for (_, subscription) in running { await subscription.stop() }
            }
            subscribed.open()
            logger.debug("broker started", metadata: ["courier.subscribers": "\(running.count)"])

            await withTaskGroup(of: Void.self) { group in
                for (definition, subscription) in running {
                    group.addTask { await self.consume(subscription, definition) }
                }
                // Waits for late subscribers until the broker stops (a broker without any
                // subscriber, a publish-only service, waits here).
                for await definition in lateSubscribers {
                    guard let subscription = await subscribeLate(definition) else { continue }
                    group.addTask { await self.consume(subscription, definition) }
                }
            }
            await transport.close()
            loops.cancelAll()
        }
        finish()
    }

    /// Takes a subscription made while the broker runs into the ones ``stopIntake()`` stops;
    /// false when the broker is no longer running.
    func adopt(_ subscription: any TransportSubscription) -> Bool {
        state.withLock { state in
            guard case .running = state.phase else { return false }
            state.subscriptions.append(subscription)
            return true
        }
    }

    /// Subscribes a subscriber registered while the broker runs; nil if it failed or the broker
    /// is stopping.
    private func subscribeLate(_ definition: SubscriberDefinition<Transport.Source>) async -> (any TransportSubscription)? {
        let subscription: any TransportSubscription
        do {
            subscription = try await transport.subscribe(to: definition.source, options: subscriptionOptions(definition))
        } catch {
            logger.error(
                "a subscriber registered while the broker runs could not subscribe",
                metadata: ["courier.destination": "\(definition.source.subscribedDestination.name)", "error": "\(error)"]
            )
            return nil
        }
        let adopted = adopt(subscription)
        if !adopted { await subscription.stop() }
        return adopted ? subscription : nil
    }

    private func subscriptionOptions(_ definition: SubscriberDefinition<Transport.Source>) -> SubscriptionOptions {
        SubscriptionOptions(
            batch: definition.batch,
            maxConcurrency: definition.options.maxConcurrency,
            ackPolicy: ackPolicy(of: definition)
        )
    }

    private func ackPolicy(of definition: SubscriberDefinition<Transport.Source>) -> AckPolicy {
        definition.options.ackPolicy ?? options.defaultAckPolicy ?? transport.defaultAckPolicy
    }

    private func finish() {
        let late = state.withLock { state in
            state.phase = .stopped
            state.subscriptions = []
            return state.lateSubscribers.take()
        }
        late?.finish()
        subscribed.open()
    }

    /// Where ``run()`` is: idle, starting, running (every subscriber subscribed), stopping,
    /// stopped. What health checks read (`Broker+Health.swift`).
    public var lifecycle: BrokerLifecycle {
        state.withLock { state in
            switch state.phase {
            case .idle: .idle
            case .starting: .starting
            case .running: .running
            case .stopping: .stopping
            case .stopped: .stopped
            }
        }
    }

    /// Returns once ``run()`` has connected and every subscriber is subscribed (or the broker
    /// failed to start, or stopped): from then on a message published to a subscribed pub/sub
    /// channel reaches its subscriber.
    public func waitUntilSubscribed() async {
        await subscribed.wait()
    }

    /// Returns once ``run()`` has connected and every subscriber is subscribed (true), or the
    /// broker failed to start or stopped first (false).
    public func waitUntilRunning() async -> Bool {
        await subscribed.wait()
        return state.withLock { state in
            if case .running = state.phase { return true }
            return false
        }
    }

    /// Stops taking new deliveries; ``run()`` returns once in-flight messages have finished.
    public func stopIntake() async {
        let (subscriptions, late) = state.withLock { state -> ([any TransportSubscription], AsyncStream<SubscriberDefinition<Transport.Source>>.Continuation?) in
            switch state.phase {
            case .idle, .starting, .running:
                state.phase = .stopping
                return (state.subscriptions, state.lateSubscribers)
            case .stopping, .stopped:
                return ([], nil)
            }
        }
        late?.finish()
        for subscription in subscriptions { await subscription.stop() }
    }

    /// Pulls deliveries while fewer than `maxConcurrency` are in flight: a subscriber never holds
    /// more than that, so a slow handler slows the transport down instead of growing a queue.
    private func consume(_ subscription: any TransportSubscription, _ definition: SubscriberDefinition<Transport.Source>) async {
        let destination = definition.source.subscribedDestination
        let policy = ackPolicy(of: definition)
        // Error logging innermost (inside the process span) and outermost (for a middleware's
        // failure); without middlewares the two would be neighbours, and one does. The message
        // log, when asked for, is innermost, so its lines carry the process span's trace id.
        let messageLog: [any CourierMiddleware] = options.messageLogLevel.map { [MessageLogMiddleware(level: $0)] } ?? []
        let chain = ([AcknowledgementMiddleware(policy: policy), ErrorLoggingMiddleware()] + middlewares
            + (middlewares.isEmpty ? [] : [ErrorLoggingMiddleware()]) + messageLog)
            .consumeChain(ending: definition.handle)
        let json = definition.options.json ?? options.json
        let isBatch = definition.batch != nil
        let broker = transport.description
        var subscriberLogger = logger
        subscriberLogger[metadataKey: "courier.destination"] = "\(destination.name)"
        let metrics = SubscriberMetrics.make(middlewares: middlewares, broker: broker, destination: destination)

        /// The next delivery as a context for the chain; nil once the subscription has ended.
        func receive() async -> MessageContext? {
            let delivery: InboundDelivery?
            do {
                delivery = try await subscription.next()
            } catch {
                subscriberLogger.error("subscription failed; the subscriber stops", metadata: ["error": "\(error)"])
                return nil
            }
            guard var delivery else { return nil }
            metrics?.received(delivery.messages.count)
            if !json.isDefault {
                for index in delivery.messages.indices { delivery.messages[index].json = json }
            }
            return MessageContext(
                delivery: delivery,
                isBatch: isBatch,
                destination: destination,
                broker: broker,
                logger: subscriberLogger,
                json: json,
                dispatch: dispatch
            )
        }
        @Sendable func process(_ context: MessageContext) async {
            defer { metrics?.finished(context.messages.count, outcome: context.settlement.outcome) }
            do {
                try await chain(context)
            } catch {
                context.logger.error("unhandled error after acknowledgement", metadata: ["error": "\(error)"])
            }
        }

        if definition.options.maxConcurrency == 1 {
            // One message at a time needs no child task: each would cost two more scheduling hops.
            while let context = await receive() { await process(context) }
            return
        }
        // A slot per task in flight. Deliveries with the same ordering key queue in their lane
        // and run one after another in the lane's task (which keeps its one slot), in arrival
        // order; a queued delivery holds no slot, so a busy key never keeps the others waiting,
        // but only so many may queue (`waiting`) before intake pauses.
        let slots = AsyncBuffer<Void>(capacity: definition.options.maxConcurrency)
        let waiting = AsyncBuffer<Void>(capacity: definition.options.maxConcurrency * 4)
        let lanes = OrderingLanes<MessageContext>()
        await withDiscardingTaskGroup { group in
            while true {
                do {
                    try await slots.push(())
                } catch {
                    break
                }
                guard let context = await receive() else { break }
                guard let key = context.orderingKey else {
                    group.addTask {
                        await process(context)
                        _ = slots.take()
                    }
                    continue
                }
                // Taken before the lane is entered, so the lane task can never give it back first.
                do {
                    try await waiting.push(())
                } catch {
                    break
                }
                guard lanes.enter(key, context) else {
                    // Queued behind its lane's running delivery: its slot goes to another key.
                    _ = slots.take()
                    continue
                }
                _ = waiting.take()
                group.addTask {
                    var current: MessageContext? = context
                    while let context = current {
                        await process(context)
                        current = lanes.next(in: key)
                        if current != nil { _ = waiting.take() }
                    }
                    _ = slots.take()
                }
            }
        }
    }
}

/// The deliveries waiting behind the one in progress, per ordering key.
final class OrderingLanes<Item: Sendable>: Sendable {
    private let lanes = Mutex<[String: CircularBuffer<Item>]>([:])

    /// Whether `item` starts its lane (the caller runs it, then asks ``next(in:)``); false if it
    /// queued behind the lane's running item.
    func enter(_ key: String, _ item: Item) -> Bool {
        lanes.withLock { lanes in
            if lanes[key] != nil {
                lanes[key]!.append(item)
                return false
            }
            lanes[key] = CircularBuffer()
            return true
        }
    }

    /// The lane's next item, or nil, closing the lane, when none waits.
    func next(in key: String) -> Item? {
        lanes.withLock { lanes in
            if let item = lanes[key]?.popFirst() { return item }
            lanes[key] = nil
            return nil
        }
    }
}


