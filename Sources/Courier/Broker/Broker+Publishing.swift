import NIOCore
import Tracing

// Publishing: to a destination of the broker's own kinds or one named by a string, one message
// or a batch, through the middleware chain to the transport.
extension Broker {
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
        // Assigned inside rather than returned: an optional returned through the generic closure
        // had its type metadata looked up at run time on every publish.
        var made: OutgoingMessage?
        try self.options.json.withCurrent {
            made = try OutgoingMessage(body, headers: headers, correlationID: correlationID, replyTo: replyTo, options: options)
        }
        guard let message = made else {
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

    func publication(to destination: Transport.Destination, _ messages: [OutgoingMessage], isBatch: Bool) -> Publication {
        Publication(
            destination: destination,
            messages: messages,
            isBatch: isBatch,
            serviceContext: ServiceContext.current ?? .topLevel,
            broker: transport.description,
            logger: logger
        )
    }
}
