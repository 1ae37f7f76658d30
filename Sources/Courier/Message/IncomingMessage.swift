public import NIOCore

/// A message as a subscriber receives it.
///
/// The common fields every broker has are decoded into properties; anything broker-specific
/// (a stream entry id, a delivery tag, a partition) stays reachable through ``raw``.
public struct IncomingMessage: Sendable {
    /// Every field in one copy-on-write box: a message is copied wherever it is read
    /// (`context.message` returns a copy), and copying a dozen reference-counted fields cost
    /// ~300 instructions each time, five times per delivery.
    ///
    /// `@unchecked Sendable` is safe: a box is mutated only through ``mutableStorage``, which
    /// first copies it unless this message holds the only reference (so no other message, and no
    /// other thread, can see the mutation); a shared box is only read.
    private final class Storage: @unchecked Sendable {
        @exclusivity(unchecked) var body: ByteBuffer
        @exclusivity(unchecked) var headers: MessageHeaders
        @exclusivity(unchecked) var destination: String
        @exclusivity(unchecked) var correlationID: String?
        @exclusivity(unchecked) var messageID: String?
        @exclusivity(unchecked) var replyTo: String?
        @exclusivity(unchecked) var contentType: String?
        @exclusivity(unchecked) var deliveryCount: Int
        @exclusivity(unchecked) var raw: (any Sendable)?
        @exclusivity(unchecked) var envelopeError: (any Error)?
        @exclusivity(unchecked) var json: JSONCoding

        init(
            body: ByteBuffer, headers: MessageHeaders, destination: String, correlationID: String?, messageID: String?,
            replyTo: String?, contentType: String?, deliveryCount: Int, raw: (any Sendable)?, envelopeError: (any Error)?, json: JSONCoding
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
            self.envelopeError = envelopeError
            self.json = json
        }

        func copy() -> Storage {
            Storage(
                body: body, headers: headers, destination: destination, correlationID: correlationID, messageID: messageID,
                replyTo: replyTo, contentType: contentType, deliveryCount: deliveryCount, raw: raw, envelopeError: envelopeError, json: json
            )
        }
    }

    private var storage: Storage

    /// The box, made unique first: what every setter writes to.
    private var mutableStorage: Storage {
        mutating get {
            if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
            return storage
        }
    }

    /// The body bytes, undecoded.
    public var body: ByteBuffer {
        get { storage.body }
        set { mutableStorage.body = newValue }
        _modify { yield &mutableStorage.body }
    }
    /// The message headers, including the propagation headers (`traceparent`, `baggage`, …).
    public var headers: MessageHeaders {
        get { storage.headers }
        set { mutableStorage.headers = newValue }
        _modify { yield &mutableStorage.headers }
    }
    /// The destination the message was delivered from (queue, channel, subject, topic).
    public var destination: String {
        get { storage.destination }
        set { mutableStorage.destination = newValue }
        _modify { yield &mutableStorage.destination }
    }
    /// The correlation id (FastStream's `correlation_id`), used as `messaging.message.conversation_id`.
    public var correlationID: String? {
        get { storage.correlationID }
        set { mutableStorage.correlationID = newValue }
        _modify { yield &mutableStorage.correlationID }
    }
    /// The message id, when the broker or the producer gave one.
    public var messageID: String? {
        get { storage.messageID }
        set { mutableStorage.messageID = newValue }
        _modify { yield &mutableStorage.messageID }
    }
    /// Where a reply should be published, for request/reply.
    public var replyTo: String? {
        get { storage.replyTo }
        set { mutableStorage.replyTo = newValue }
        _modify { yield &mutableStorage.replyTo }
    }
    /// The body's content type (`text/plain`, `application/json`, or nil for raw bytes).
    public var contentType: String? {
        get { storage.contentType }
        set { mutableStorage.contentType = newValue }
        _modify { yield &mutableStorage.contentType }
    }
    /// How many times this message has been delivered; 1 on first delivery, more after a nack.
    public var deliveryCount: Int {
        get { storage.deliveryCount }
        set { mutableStorage.deliveryCount = newValue }
        _modify { yield &mutableStorage.deliveryCount }
    }
    /// The broker's own representation of the message, for broker-specific data.
    public var raw: (any Sendable)? {
        get { storage.raw }
        set { mutableStorage.raw = newValue }
        _modify { yield &mutableStorage.raw }
    }

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
        storage = Storage(
            body: body, headers: headers, destination: destination, correlationID: correlationID, messageID: messageID,
            replyTo: replyTo, contentType: contentType, deliveryCount: deliveryCount, raw: raw, envelopeError: nil, json: .default
        )
    }

    /// Set by a transport when the message's envelope (the broker's framing around headers and
    /// body) could not be read: the message still reaches the subscriber, and decoding it throws
    /// this error, so it is logged, traced as an error and settled by the ack policy.
    public var envelopeError: (any Error)? {
        get { storage.envelopeError }
        set { mutableStorage.envelopeError = newValue }
        _modify { yield &mutableStorage.envelopeError }
    }

    /// How ``decode(as:)`` reads JSON: the subscriber's coding (``SubscriberOptions/json``, else
    /// the broker's), set by the broker on every delivery.
    public var json: JSONCoding {
        get { storage.json }
        set { mutableStorage.json = newValue }
        _modify { yield &mutableStorage.json }
    }

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
