/// A handler's return value with metadata: headers, a correlation id and per-message options of
/// the broker (a Kafka key, a RabbitMQ priority…), like FastStream's `Response`.
///
/// The same message goes to the request's `replyTo` and to every publisher of the subscriber:
///
/// ```swift
/// broker.subscriber("quotes").publisher("audit").handle { (request: QuoteRequest, context) in
///     Response(Quote(for: request), headers: ["x-pricing": "v2"], options: KafkaPublishOptions(key: request.customer))
/// }
/// ```
public struct Response<Body: MessageEncodable>: MessageEncodable {
    /// The body; nil (an `Optional` that is nil) publishes nothing onward, and a request still
    /// gets an empty reply unless the subscriber has ``SubscriberOptions/noReply``.
    public var body: Body
    /// Headers sent with the body, beside the propagation headers telemetry adds.
    public var headers: MessageHeaders
    /// The correlation id; nil keeps the consumed message's.
    public var correlationID: String?
    /// The broker's per-message options (its `PublishOptions` type); options of another broker's
    /// type are ignored by the transport.
    public var options: (any Sendable)?

    public init(_ body: Body, headers: MessageHeaders = [:], correlationID: String? = nil, options: (any Sendable)? = nil) {
        self.body = body
        self.headers = headers
        self.correlationID = correlationID
        self.options = options
    }

    public func encodeMessageBody() throws -> EncodedBody? {
        try body.encodeMessageBody()
    }
}

/// What a handler's return value becomes: a body and the metadata a ``Response`` adds.
struct HandlerResult: Sendable {
    var body: EncodedBody?
    var headers: MessageHeaders = [:]
    var correlationID: String?
    var options: (any Sendable)?
}

/// Adopted by ``Response``: the subscriber asks its handler's return type once, at registration,
/// whether it carries metadata, so plain bodies pay no dynamic cast per message.
protocol HandlerResultConvertible {
    func handlerResult() throws -> HandlerResult
}

extension Response: HandlerResultConvertible {
    func handlerResult() throws -> HandlerResult {
        HandlerResult(body: try body.encodeMessageBody(), headers: headers, correlationID: correlationID, options: options)
    }
}

extension MessageEncodable {
    /// The handler result of this return value; `carriesMetadata` is `Self.self is any
    /// HandlerResultConvertible.Type`, worked out once by the caller.
    func handlerResult(carriesMetadata: Bool) throws -> HandlerResult {
        if carriesMetadata, let convertible = self as? any HandlerResultConvertible {
            return try convertible.handlerResult()
        }
        return HandlerResult(body: try encodeMessageBody())
    }
}
