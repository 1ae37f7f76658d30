/// One delivery from a transport: a message, or a batch of them, and how to settle it.
public struct InboundDelivery: Sendable {
    public var messages: [IncomingMessage]
    public var settlement: Settlement
    /// Deliveries with the same ordering key are processed one after another, in the order the
    /// transport hands them over, even by a subscriber with `maxConcurrency` above 1; deliveries
    /// with different keys (or none) run in parallel. A Kafka partition, a RabbitMQ
    /// single-active consumer, a Redis stream: whatever the broker orders by.
    public var orderingKey: String?

    public init(messages: [IncomingMessage], settlement: Settlement, orderingKey: String? = nil) {
        self.messages = messages
        self.settlement = settlement
        self.orderingKey = orderingKey
    }
}
