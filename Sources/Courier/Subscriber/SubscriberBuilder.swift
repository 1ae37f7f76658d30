/// A handler that receives one message.
public typealias MessageHandler<Input: MessageDecodable, Output> = @Sendable (Input, MessageContext) async throws -> Output
/// A handler that receives a batch of messages.
public typealias BatchHandler<Input: MessageDecodable, Output> = @Sendable ([Input], MessageContext) async throws -> Output
/// Whether a handler takes a message: see ``SubscriberBuilder/filter(_:)``.
public typealias MessageFilter = @Sendable (IncomingMessage) -> Bool

extension SubscriberRegistry {
    /// Starts declaring a subscriber of `destination` (of the broker's default kind); add
    /// publishers or a filter, then give the handler with `handle`.
    public func subscriber(_ destination: String, options: SubscriberOptions = SubscriberOptions()) -> SubscriberBuilder<Transport> {
        subscriber(Transport.Source(destination: subscriberName(destination)), options: options)
    }

    /// Starts declaring a subscriber of a broker-specific source (a list, a stream group…).
    public func subscriber(_ source: Transport.Source, options: SubscriberOptions = SubscriberOptions()) -> SubscriberBuilder<Transport> {
        SubscriberBuilder(registry: self, source: source, options: options)
    }

    /// Subscribes `handler` to `destination`; its return value answers a request (`replyTo`).
    public func subscriber<Input: MessageDecodable, Output: MessageEncodable>(
        _ destination: String,
        options: SubscriberOptions = SubscriberOptions(),
        _ handler: @escaping MessageHandler<Input, Output>
    ) {
        subscriber(destination, options: options).handle(handler)
    }

    /// Subscribes `handler`, which returns nothing, to `destination`.
    public func subscriber<Input: MessageDecodable>(
        _ destination: String,
        options: SubscriberOptions = SubscriberOptions(),
        _ handler: @escaping MessageHandler<Input, Void>
    ) {
        subscriber(destination, options: options).handle(handler)
    }

    /// Subscribes `handler` to a broker-specific source; its return value answers a request.
    public func subscriber<Input: MessageDecodable, Output: MessageEncodable>(
        _ source: Transport.Source,
        options: SubscriberOptions = SubscriberOptions(),
        _ handler: @escaping MessageHandler<Input, Output>
    ) {
        subscriber(source, options: options).handle(handler)
    }

    /// Subscribes `handler`, which returns nothing, to a broker-specific source.
    public func subscriber<Input: MessageDecodable>(
        _ source: Transport.Source,
        options: SubscriberOptions = SubscriberOptions(),
        _ handler: @escaping MessageHandler<Input, Void>
    ) {
        subscriber(source, options: options).handle(handler)
    }

    /// Starts declaring a batch subscriber of `destination`: its handler gets up to
    /// `batch.maxMessages` messages that were ready together.
    public func subscriber(
        _ destination: String,
        batch: BatchOptions,
        options: SubscriberOptions = SubscriberOptions()
    ) -> BatchSubscriberBuilder<Transport> {
        subscriber(Transport.Source(destination: subscriberName(destination)), batch: batch, options: options)
    }

    /// Starts declaring a batch subscriber of a broker-specific source.
    public func subscriber(
        _ source: Transport.Source,
        batch: BatchOptions,
        options: SubscriberOptions = SubscriberOptions()
    ) -> BatchSubscriberBuilder<Transport> {
        BatchSubscriberBuilder(registry: self, source: source, batch: batch, options: options)
    }

    /// Subscribes a batch `handler` to `destination`, as ``subscriber(_:options:_:)-(String,_,_)`` does a
    /// single one.
    public func subscriber<Input: MessageDecodable, Output: MessageEncodable>(
        _ destination: String,
        batch: BatchOptions,
        options: SubscriberOptions = SubscriberOptions(),
        _ handler: @escaping BatchHandler<Input, Output>
    ) {
        subscriber(destination, batch: batch, options: options).handle(handler)
    }

    /// Subscribes a batch `handler`, which returns nothing, to `destination`.
    public func subscriber<Input: MessageDecodable>(
        _ destination: String,
        batch: BatchOptions,
        options: SubscriberOptions = SubscriberOptions(),
        _ handler: @escaping BatchHandler<Input, Void>
    ) {
        subscriber(destination, batch: batch, options: options).handle(handler)
    }

    /// Subscribes a batch `handler` to a broker-specific source.
    public func subscriber<Input: MessageDecodable, Output: MessageEncodable>(
        _ source: Transport.Source,
        batch: BatchOptions,
        options: SubscriberOptions = SubscriberOptions(),
        _ handler: @escaping BatchHandler<Input, Output>
    ) {
        subscriber(source, batch: batch, options: options).handle(handler)
    }

    /// Subscribes a batch `handler`, which returns nothing, to a broker-specific source.
    public func subscriber<Input: MessageDecodable>(
        _ source: Transport.Source,
        batch: BatchOptions,
        options: SubscriberOptions = SubscriberOptions(),
        _ handler: @escaping BatchHandler<Input, Void>
    ) {
        subscriber(source, batch: batch, options: options).handle(handler)
    }
}

/// A subscriber being declared: `broker.subscriber("a").publisher("b").handle { (m: String, c) in m }`.
///
/// The handler's return value is published to every publisher's destination, and to the message's
/// `replyTo` when it has one (unless ``SubscriberOptions/noReply``); return a ``Response`` to add
/// headers, a correlation id or broker options; a nil return publishes nothing (a request still
/// gets an empty reply).
///
/// Several handlers can share one subscription, each with a ``filter(_:)``: the first handler
/// whose filter takes the message handles it, in the order they were declared; one without a
/// filter takes everything left. A message no handler takes fails with ``CourierError`` code
/// `.noMatchingHandler`, and the ack policy answers for it.
///
/// ```swift
/// let events = broker.subscriber("events")
/// events.filter { $0.headers["type"] == "refund" }.handle { (refund: Refund, context) in … }
/// events.handle { (order: Order, context) in … }
/// ```
public struct SubscriberBuilder<Transport: BrokerTransport>: Sendable {
    let registry: any SubscriberRegistry<Transport>
    let source: Transport.Source
    let options: SubscriberOptions
    let publishers: [PublisherDeclaration]
    let messageFilter: MessageFilter?
    /// Shared by every copy of this builder: the handlers of the one subscription.
    let handlers: SubscriberHandlers

    init(registry: any SubscriberRegistry<Transport>, source: Transport.Source, options: SubscriberOptions) {
        self.registry = registry
        self.source = source
        self.options = options
        self.publishers = []
        self.messageFilter = nil
        self.handlers = SubscriberHandlers()
    }

    private init(_ base: Self, publishers: [PublisherDeclaration], filter: MessageFilter?) {
        self.registry = base.registry
        self.source = base.source
        self.options = base.options
        self.publishers = publishers
        self.messageFilter = filter
        self.handlers = base.handlers
    }

    /// Adds a destination, named `destination`, the handler's return value is published to;
    /// `asyncAPI` says how it appears in an AsyncAPI document.
    public func publisher(_ destination: String, asyncAPI: AsyncAPIOptions = AsyncAPIOptions()) -> Self {
        publisher(Transport.Destination(name: registry.publisherName(destination)), asyncAPI: asyncAPI)
    }

    /// Adds a destination of the broker's own kinds the handler's return value is published to;
    /// `asyncAPI` says how it appears in an AsyncAPI document.
    public func publisher(_ destination: Transport.Destination, asyncAPI: AsyncAPIOptions = AsyncAPIOptions()) -> Self {
        Self(self, publishers: publishers + [PublisherDeclaration(destination: destination, asyncAPI: asyncAPI)], filter: messageFilter)
    }

    /// The next handler takes only the messages `filter` accepts (FastStream's `filter=`); see the
    /// type's overview.
    public func filter(_ filter: @escaping MessageFilter) -> Self {
        Self(self, publishers: publishers, filter: filter)
    }

    /// Registers a handler whose return value is published.
    public func handle<Input: MessageDecodable, Output: MessageEncodable>(_ handler: @escaping MessageHandler<Input, Output>) {
        let publishers = self.publishers.map(\.destination)
        let noReply = options.noReply
        let carriesMetadata = Output.self is any HandlerResultConvertible.Type
        add(HandlerDeclaration(input: Input.self, output: Output.self, publishers: self.publishers)) { context in
            let output = try await handler(context.message.decode(as: Input.self), context)
            let result = try context.json.withCurrent { try output.handlerResult(carriesMetadata: carriesMetadata) }
            try await context.publishResult(result, to: publishers, reply: !noReply)
        }
    }

    /// Registers a handler that returns nothing.
    public func handle<Input: MessageDecodable>(_ handler: @escaping MessageHandler<Input, Void>) {
        let noReply = options.noReply
        add(HandlerDeclaration(input: Input.self, output: nil, publishers: [])) { context in
            try await handler(context.message.decode(as: Input.self), context)
            // Nothing to publish but an empty reply, to a request only.
            if !noReply, context.message.replyTo != nil {
                try await context.publishResult(HandlerResult(), to: [], reply: true)
            }
        }
    }

    private func add(_ declaration: HandlerDeclaration, _ handle: @escaping ConsumeNext) {
        if handlers.add(filter: messageFilter, declaration: declaration, handle) {
            registry.register(
                // A closure, not the method reference `handlers.dispatch`: that one is two curry
                // thunks, two async frames more per message.
                SubscriberDefinition(
                    source: source, options: options, batch: nil,
                    handle: { [handlers] context in try await handlers.dispatch(context) },
                    declaredHandlers: handlers.declarations
                )
            )
        }
    }
}

/// A batch subscriber being declared; see ``SubscriberBuilder``.
public struct BatchSubscriberBuilder<Transport: BrokerTransport>: Sendable {
    let registry: any SubscriberRegistry<Transport>
    let source: Transport.Source
    let batch: BatchOptions
    let options: SubscriberOptions
    let publishers: [PublisherDeclaration]

    init(registry: any SubscriberRegistry<Transport>, source: Transport.Source, batch: BatchOptions, options: SubscriberOptions) {
        self.init(registry: registry, source: source, batch: batch, options: options, publishers: [])
    }

    private init(
        registry: any SubscriberRegistry<Transport>,
        source: Transport.Source,
        batch: BatchOptions,
        options: SubscriberOptions,
        publishers: [PublisherDeclaration]
    ) {
        self.registry = registry
        self.source = source
        self.batch = batch
        self.options = options
        self.publishers = publishers
    }

    /// Adds a destination, named `destination`, the handler's return value is published to.
    public func publisher(_ destination: String, asyncAPI: AsyncAPIOptions = AsyncAPIOptions()) -> Self {
        publisher(Transport.Destination(name: registry.publisherName(destination)), asyncAPI: asyncAPI)
    }

    /// Adds a destination of the broker's own kinds the handler's return value is published to.
    public func publisher(_ destination: Transport.Destination, asyncAPI: AsyncAPIOptions = AsyncAPIOptions()) -> Self {
        let declaration = PublisherDeclaration(destination: destination, asyncAPI: asyncAPI)
        return Self(registry: registry, source: source, batch: batch, options: options, publishers: publishers + [declaration])
    }

    /// Registers a handler whose return value is published.
    public func handle<Input: MessageDecodable, Output: MessageEncodable>(_ handler: @escaping BatchHandler<Input, Output>) {
        let publishers = self.publishers.map(\.destination)
        let carriesMetadata = Output.self is any HandlerResultConvertible.Type
        register(HandlerDeclaration(input: Input.self, output: Output.self, publishers: self.publishers)) { context in
            let inputs = try context.messages.map { try $0.decode(as: Input.self) }
            let output = try await handler(inputs, context)
            let result = try context.json.withCurrent { try output.handlerResult(carriesMetadata: carriesMetadata) }
            try await context.publishResult(result, to: publishers, reply: false)
        }
    }

    /// Registers a handler that returns nothing.
    public func handle<Input: MessageDecodable>(_ handler: @escaping BatchHandler<Input, Void>) {
        register(HandlerDeclaration(input: Input.self, output: nil, publishers: [])) { context in
            try await handler(context.messages.map { try $0.decode(as: Input.self) }, context)
        }
    }

    private func register(_ declaration: HandlerDeclaration, _ handle: @escaping ConsumeNext) {
        registry.register(SubscriberDefinition(source: source, options: options, batch: batch, handle: handle, declaredHandlers: { [declaration] }))
    }
}

extension MessageContext {
    /// Publishes a handler's result: to the request's `replyTo` (when `reply`), and to each publisher.
    func publishResult(_ result: HandlerResult, to publishers: [any BrokerDestination], reply: Bool) async throws {
        let consumedCorrelationID = isBatch ? nil : message.correlationID
        func outgoing(_ body: EncodedBody, correlationID: String?) -> OutgoingMessage {
            var message = OutgoingMessage(body, headers: result.headers, correlationID: correlationID)
            message.options = result.options
            return message
        }
        if reply, !isBatch, let replyTo = message.replyTo {
            _ = try await dispatch(
                Publication(
                    destination: NamedDestination(name: replyTo),
                    // A reply keeps the request's correlation id, which the requester matches it by.
                    messages: [outgoing(result.body ?? EncodedBody(bytes: .init(), contentType: nil), correlationID: consumedCorrelationID)],
                    destinationIsTemporary: true,
                    serviceContext: serviceContext,
                    originContext: originContext,
                    broker: broker,
                    logger: logger
                )
            )
        }
        guard let body = result.body else { return }
        for destination in publishers {
            _ = try await dispatch(
                Publication(
                    destination: destination,
                    messages: [outgoing(body, correlationID: result.correlationID ?? consumedCorrelationID)],
                    serviceContext: serviceContext,
                    originContext: originContext,
                    broker: broker,
                    logger: logger
                )
            )
        }
    }
}
