/// How a subscriber consumes, as its transport needs to know it: RabbitMQ's `basic.qos`
/// prefetch and no-ack mode, Kafka's commit strategy and fetch sizing, a JetStream consumer's
/// `max_ack_pending` all follow from it.
public struct SubscriptionOptions: Sendable, Hashable {
    /// Batch deliveries, or nil for one message per delivery.
    public var batch: BatchOptions?
    /// How many deliveries the subscriber processes at once.
    public var maxConcurrency: Int
    /// The ack policy in force (the subscriber's, or the transport's default).
    public var ackPolicy: AckPolicy

    public init(batch: BatchOptions? = nil, maxConcurrency: Int = 1, ackPolicy: AckPolicy) {
        self.batch = batch
        self.maxConcurrency = maxConcurrency
        self.ackPolicy = ackPolicy
    }

    /// The most messages the subscriber holds at once: `maxConcurrency` deliveries of up to one
    /// batch each. A transport that prefetches should ask for no more.
    public var prefetch: Int { maxConcurrency * (batch?.maxMessages ?? 1) }

    /// Whether deliveries are acknowledged on receipt, before the handler runs (`.ackFirst`):
    /// a transport may consume without acknowledgements (AMQP no-ack, Kafka commit on fetch).
    public var acknowledgesOnReceipt: Bool { ackPolicy == .ackFirst }
}
