public import NIOCore

/// A message as a subscriber receives it.
///
/// The common fields every broker has are decoded into properties; anything broker-specific
/// (a stream entry id, a delivery tag, a partition) stays reachable through ``raw``.
public struct IncomingMessage: Sendable {
    /// The body bytes, undecoded.
    public var body: ByteBuffer
    /// The message headers, including the propagation headers (`traceparent`, `baggage`, …).
    public var headers: MessageHeaders
    /// The destination the message was delivered from (queue, channel, subject, topic).
    public var destination: String
    /// The correlation id (FastStream's `correlation_id`), used as `messaging.message.conversation_id`.
    public var correlationID: String?
    /// The message id, when the broker or the producer gave one.
    public var messageID: String?
    /// Where a reply should be published, for request/reply.
    public var replyTo: String?
    /// The body's content type (`text/plain`, `application/json`, or nil for raw bytes).
    public var contentType: String?
    /// How many times this message has been delivered; 1 on first delivery, more after a nack.
    public var deliveryCount: Int
    /// The broker's own representation of the message, for broker-specific data.
    public var raw: (any Sendable)?

    /// Creates an incoming message; transports call this.
    public init(
        body: ByteBuffer,
        headers: MessageHeaders = [:],
        destination: String,
        correlationID: String? = nil,
        messageID: String? = nil,
        replyTo: String? = nil,
        contentType: String? = nil,
        deliveryCount: Int = 1,
        raw: (any Sendable)? = nil
    ) {
        self.body = body
        self.headers = headers
        self.destination = destination
        self.correlationID = correlationID
        self.messageID = messageID
        self.replyTo = replyTo
        self.contentType = contentType
        self.deliveryCount = deliveryCount
        self.raw = raw
    }

    /// Set by a transport when the message's envelope (the broker's framing around headers and
    /// body) could not be read: the message still reaches the subscriber, and decoding it throws
    /// this error, so it is logged, traced as an error and settled by the ack policy.
    public var envelopeError: (any Error)?

    /// How ``decode(as:)`` reads JSON: the subscriber's coding (``SubscriberOptions/json``, else
    /// the broker's), set by the broker on every delivery.
    public var json: JSONCoding = .default

    /// What the broker `broker` added to the message (``raw``), for broker modules' typed accessors
    /// (`message.nats`, `message.redis`…).
    ///
    /// - Throws: ``CourierError`` `.wrongBroker` when the message came from another broker, so
    ///   that `try context.message.nats.inProgress()` on a Redis message fails loudly instead of
    ///   doing nothing.
    public func brokerInfo<Info>(_ type: Info.Type, broker: String) throws(CourierError) -> Info {
        guard let info = raw as? Info else {
            throw CourierError(.wrongBroker, "this message on '\(destination)' did not come from \(broker): it has no \(Info.self)")
        }
        return info
    }

    /// Decodes the body as `T`, by `T`'s own rules (see ``MessageDecodable``).
    public func decode<T: MessageDecodable>(as type: T.Type = T.self) throws -> T {
        if let envelopeError { throw envelopeError }
        do {
            return try json.withCurrent { try T(messageBody: body, contentType: contentType) }
        } catch let error as MessageDecodingError {
            throw error
        } catch {
            throw MessageDecodingError(type: T.self, contentType: contentType, underlying: error)
        }
    }
}
