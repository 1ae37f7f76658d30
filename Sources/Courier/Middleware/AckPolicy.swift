/// When and how a subscriber settles a delivery with its broker.
///
/// What each outcome means is the transport's: a nack redelivers on the in-memory broker, a
/// RabbitMQ queue or a JetStream consumer, while at-most-once transports (Redis pub/sub) ignore it.
public enum AckPolicy: Sendable, Hashable {
    /// Ack on receipt, before the handler runs: at-most-once.
    case ackFirst
    /// Ack once the handler has finished, whether it succeeded or failed.
    case ack
    /// Ack on success; reject (drop or dead-letter) on failure.
    case rejectOnError
    /// Ack on success; nack (redeliver) on failure.
    case nackOnError
    /// The handler settles the delivery itself with `context.ack()`, `nack()` or `reject()`.
    case manual
}
