/// What the broker said about one published message, flowing back through the publish
/// middleware chain to the caller: the message id, and the broker's own facts (a Kafka partition
/// and offset, a JetStream PubAck with its stream sequence, a RabbitMQ publisher confirm).
public struct PublishReceipt: Sendable {
    /// The message's id, as it was sent.
    public var messageID: String
    /// The broker's facts about the stored message, as the transport's own type; broker modules
    /// read it through typed accessors (`receipt.nats`, `receipt.kafka`). Nil where the broker
    /// confirms nothing beyond the write (Redis pub/sub, core NATS, the in-memory broker).
    ///
    /// A type that also adopts ``MessagingSpanAttributes`` adds its attributes to the publish span.
    public var details: (any Sendable)?

    public init(messageID: String, details: (any Sendable)? = nil) {
        self.messageID = messageID
        self.details = details
    }
}
