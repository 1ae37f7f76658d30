import Courier

// Topology management on the broker itself (`broker.declareQueue(…)`), so that users do not reach
// for `broker.transport`, where `send` would skip the middleware chain.
extension Broker where Transport == RabbitTransport {
    /// Declares `queue` (on a channel of its own: a refused declaration closes only that
    /// channel); declared again after a reconnect.
    public func declareQueue(_ queue: RabbitQueue) async throws {
        try await transport.declareQueue(queue)
    }

    /// Declares `exchange`; declared again after a reconnect.
    public func declareExchange(_ exchange: RabbitExchange) async throws {
        try await transport.declareExchange(exchange)
    }

    /// Binds `queue` to `exchange` with `routingKey` (and header matches in `arguments`).
    public func bind(queue: String, to exchange: String, routingKey: String, arguments: AMQPFieldTable = [:]) async throws {
        try await transport.bind(queue: queue, to: exchange, routingKey: routingKey, arguments: arguments)
    }

    /// Binds exchange `destination` to exchange `source`: what `source` routes with
    /// `routingKey` (or header matches in `arguments`) goes on to `destination`.
    public func bind(exchange destination: String, to source: String, routingKey: String, arguments: AMQPFieldTable = [:]) async throws {
        try await transport.bind(exchange: destination, to: source, routingKey: routingKey, arguments: arguments)
    }

    /// Deletes `queue` and what it holds.
    public func deleteQueue(_ queue: String) async throws {
        try await transport.deleteQueue(queue)
    }

    /// Deletes `exchange` and its bindings.
    public func deleteExchange(_ exchange: String) async throws {
        try await transport.deleteExchange(exchange)
    }
}
