import Courier

// Topic administration on the broker itself (`broker.createTopic(…)`), so that users do not reach
// for `broker.transport`, where `send` would skip the middleware chain.
extension Broker where Transport == KafkaTransport {
    /// Creates `topic` with `partitions` partitions (replication factor 1); an existing topic is
    /// left as it is.
    public func createTopic(_ topic: String, partitions: Int32 = 1) async throws {
        try await transport.createTopic(topic, partitions: partitions)
    }

    /// How many partitions `topic` has.
    public func partitionCount(of topic: String) async throws -> Int {
        return try await transport.partitionCount(of: topic)
    }
}
