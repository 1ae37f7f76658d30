/// A handler that receives one message.
public typealias MessageHandler<Input: MessageDecodable, Output> = @Sendable (Input, MessageContext) async throws -> Output
/// A handler that receives a batch of messages.
public typealias BatchHandler<Input: MessageDecodable, Output> = @Sendable ([Input], MessageContext) async throws -> Output

extension Broker {
    /// Starts declaring a subscriber of `destination`; add publishers, then give the handler.
    public func subscriber(_ destination: String, options: SubscriberOptions = SubscriberOptions()) -> SubscriberBuilder<Transport> {
        subscriber(Transport.Source(destination: destination), options: options)
    }

    /// Starts declaring a subscriber of a broker-specific source.
    public func subscriber(_ source: Transport.Source, options: SubscriberOptions = SubscriberOptions()) -> SubscriberBuilder<Transport> {
        SubscriberBuilder(broker: self, source: source, options: options, publishers: [])
    }

    /// Subscribes `handler` to `destination`.
    public func subscriber<Input: MessageDecodable>(
        _ destination: String,
        options: SubscriberOptions = SubscriberOptions(),
        _ handler: @escaping MessageHandler<Input, Void>
    ) {
        subscriber(destination, options: options).handle(handler)
    }

    /// Subscribes `handler` to `destination`; its return value answers a request (`replyTo`).
    public func subscriber<Input: MessageDecodable, Output: MessageEncodable>(
        _ destination: String,
        options: SubscriberOptions = SubscriberOptions(),
        _ handler: @escaping MessageHandler<Input, Output>
    ) {
        subscriber(destination, options: options).handle(handler)
    }

    /// Subscribes `handler` to a broker-specific source (a list, a stream group…).
    public func subscriber<Input: MessageDecodable>(
        _ source: Transport.Source,
        options: SubscriberOptions = SubscriberOptions(),
        _ handler: @escaping MessageHandler<Input, Void>
    ) {
        subscriber(source, options: options).handle(handler)
    }

    /// Subscribes `handler` to a broker-specific source; its return value answers a request.
    public func subscriber<Input: MessageDecodable, Output: MessageEncodable>(
        _ source: Transport.Source,
        options: SubscriberOptions = SubscriberOptions(),
        _ handler: @escaping MessageHandler<Input, Output>
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
        BatchSubscriberBuilder(broker: self, source: Transport.Source(destination: destination), batch: batch, options: options, publishers: [])
    }

    /// Starts declaring a batch subscriber of a broker-specific source.
    public func subscriber(
        _ source: Transport.Source,
        batch: BatchOptions,
        options: SubscriberOptions = SubscriberOptions()
    ) -> BatchSubscriberBuilder<Transport> {
        BatchSubscriberBuilder(broker: self, source: source, batch: batch, options: options, publishers: [])
    }
}

/// A subscriber being declared: `broker.subscriber("a").publisher("b") { (m: String, c) in m }`.
///
/// The handler's return value is published to every publisher's destination, and to the message's
/// `replyTo` when it has one; a nil return publishes nothing (a request still gets an empty reply).
public struct SubscriberBuilder<Transport: BrokerTransport>: Sendable {
    let broker: Broker<Transport>
    let source: Transport.Source
    let options: SubscriberOptions
    let publishers: [any BrokerDestination]

    /// Adds a destination, named `destination`, the handler's return value is published to.
    public func publisher(_ destination: String) -> Self {
        publisher(Transport.Destination(name: destination))
    }

    /// Adds a destination of the broker's own kinds the handler's return value is published to.
    public func publisher(_ destination: Transport.Destination) -> Self {
        Self(broker: broker, source: source, options: options, publishers: publishers + [destination])
    }

    /// Adds a destination of the broker's own kinds for the return value, and registers the handler.
    public func publisher<Input: MessageDecodable, Output: MessageEncodable>(
        _ destination: Transport.Destination,
        _ handler: @escaping MessageHandler<Input, Output>
    ) {
        publisher(destination).handle(handler)
    }

    /// Adds a destination for the return value, and registers the handler.
    public func publisher<Input: MessageDecodable, Output: MessageEncodable>(
        _ destination: String,
        _ handler: @escaping MessageHandler<Input, Output>
    ) {
        publisher(destination).handle(handler)
    }

    /// Registers a handler whose return value is published.
    public func handle<Input: MessageDecodable, Output: MessageEncodable>(_ handler: @escaping MessageHandler<Input, Output>) {
        let publishers = self.publishers
        register { context in
            let output = try await handler(context.message.decode(as: Input.self), context)
            try await context.publishResult(output.encodeMessageBody(), to: publishers)
        }
    }

    /// Registers a handler that returns nothing.
    public func handle<Input: MessageDecodable>(_ handler: @escaping MessageHandler<Input, Void>) {
        register { context in
            try await handler(context.message.decode(as: Input.self), context)
            try await context.publishResult(nil, to: [])
        }
    }

    private func register(_ handle: @escaping ConsumeNext) {
        broker.register(SubscriberDefinition(source: source, options: options, batch: nil, handle: handle))
    }
}

/// A batch subscriber being declared; see ``SubscriberBuilder``.
public struct BatchSubscriberBuilder<Transport: BrokerTransport>: Sendable {
    let broker: Broker<Transport>
    let source: Transport.Source
    let batch: BatchOptions
    let options: SubscriberOptions
    let publishers: [any BrokerDestination]

    /// Adds a destination, named `destination`, the handler's return value is published to.
    public func publisher(_ destination: String) -> Self {
        publisher(Transport.Destination(name: destination))
    }

    /// Adds a destination of the broker's own kinds the handler's return value is published to.
    public func publisher(_ destination: Transport.Destination) -> Self {
        Self(broker: broker, source: source, batch: batch, options: options, publishers: publishers + [destination])
    }

    /// Registers a handler whose return value is published.
    public func handle<Input: MessageDecodable, Output: MessageEncodable>(_ handler: @escaping BatchHandler<Input, Output>) {
        let publishers = self.publishers
        register { context in
            let inputs = try context.messages.map { try $0.decode(as: Input.self) }
            let output = try await handler(inputs, context)
            try await context.publishResult(output.encodeMessageBody(), to: publishers)
        }
    }

    /// Registers a handler that returns nothing.
    public func handle<Input: MessageDecodable>(_ handler: @escaping BatchHandler<Input, Void>) {
        register { context in
            try await handler(context.messages.map { try $0.decode(as: Input.self) }, context)
        }
    }

    private func register(_ handle: @escaping ConsumeNext) {
        broker.register(SubscriberDefinition(source: source, options: options, batch: batch, handle: handle))
    }
}

extension MessageContext {
    /// Publishes a handler's result: to the request's `replyTo`, and to each publisher.
    func publishResult(_ body: EncodedBody?, to publishers: [any BrokerDestination]) async throws {
        let correlationID = isBatch ? nil : message.correlationID
        if !isBatch, let replyTo = message.replyTo {
            let reply = body ?? EncodedBody(bytes: .init(), contentType: nil)
            _ = try await dispatch(
                Publication(
                    destination: NamedDestination(name: replyTo),
                    messages: [OutgoingMessage(reply, correlationID: correlationID)],
                    destinationIsTemporary: true,
                    serviceContext: serviceContext,
                    originContext: originContext,
                    broker: broker,
                    logger: logger
                )
            )
        }
        guard let body else { return }
        for destination in publishers {
            _ = try await dispatch(
                Publication(
                    destination: destination,
                    messages: [OutgoingMessage(body, correlationID: correlationID)],
                    serviceContext: serviceContext,
                    originContext: originContext,
                    broker: broker,
                    logger: logger
                )
            )
        }
    }
}
