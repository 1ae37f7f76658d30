/// A broker module's typed destination: a Redis list, a JetStream subject, an exchange…
///
/// Broker modules give their transport a `Destination` type with static constructors
/// (`.list("jobs")`, `.jetStream("orders.created")`), and the publishing API of ``Broker``,
/// ``SubscriberBuilder`` and ``MessageContext`` takes it; the core only reads its name and kind.
public protocol BrokerDestination: Sendable {
    /// The queue, channel, subject or topic.
    var name: String { get }
    /// The transport-defined kind; nil for the transport's default kind.
    var kind: DestinationKind? { get }
}

/// The destination of a transport with one kind of destination: a name.
public struct NamedDestination: BrokerDestination, Hashable {
    public var name: String
    public var kind: DestinationKind? { nil }

    public init(_ name: String) {
        self.name = name
    }
}

extension BrokerDestination {
    var target: PublishTarget { PublishTarget(destination: name, kind: kind) }
}

// MARK: - Typed publishing

extension Broker {
    /// Publishes `body` to a destination of the broker's own kinds (a Redis list, a JetStream subject…).
    public func publish<Body: MessageEncodable>(
        _ body: Body,
        to destination: Transport.Destination,
        headers: MessageHeaders = [:],
        correlationID: String? = nil
    ) async throws {
        try await publish(body, to: destination.target, headers: headers, correlationID: correlationID)
    }

    /// Publishes several messages at once to a destination of the broker's own kinds.
    public func publishBatch<Body: MessageEncodable>(
        _ bodies: [Body],
        to destination: Transport.Destination,
        headers: MessageHeaders = [:],
        correlationID: String? = nil
    ) async throws {
        try await publishBatch(bodies, to: destination.target, headers: headers, correlationID: correlationID)
    }

    /// Sends a request to a destination of the broker's own kinds and waits for the reply.
    public func request<Body: MessageEncodable>(
        _ body: Body,
        to destination: Transport.Destination,
        headers: MessageHeaders = [:],
        timeout: Duration = .seconds(5)
    ) async throws -> IncomingMessage {
        try await request(body, to: destination.target, headers: headers, timeout: timeout)
    }
}

extension SubscriberBuilder {
    /// Adds a destination of the broker's own kinds the handler's return value is published to.
    public func publisher(_ destination: Transport.Destination) -> Self {
        publisher(destination.target)
    }

    /// Adds a destination of the broker's own kinds for the return value, and registers the handler.
    public func publisher<Input: MessageDecodable, Output: MessageEncodable>(
        _ destination: Transport.Destination,
        _ handler: @escaping MessageHandler<Input, Output>
    ) {
        publisher(destination.target).handle(handler)
    }
}

extension BatchSubscriberBuilder {
    /// Adds a destination of the broker's own kinds the handler's return value is published to.
    public func publisher(_ destination: Transport.Destination) -> Self {
        publisher(destination.target)
    }
}

extension MessageContext {
    /// Publishes to a destination of a broker module's kinds from inside a handler, continuing its trace.
    public func publish<Body: MessageEncodable>(
        _ body: Body,
        to destination: some BrokerDestination,
        headers: MessageHeaders = [:],
        correlationID: String? = nil
    ) async throws {
        try await publish(body, to: destination.target, headers: headers, correlationID: correlationID)
    }
}
