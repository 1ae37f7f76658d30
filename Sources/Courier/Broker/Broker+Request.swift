import NIOCore

// Request/reply: a request goes out with a reply inbox opened for its correlation id, and the
// first reply carrying that id comes back through the consume path (so telemetry sees it).
extension Broker {
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
}
