/// What a health check asks of a broker, whatever its transport: every ``Broker`` is one, so a
/// list of brokers of different kinds (`[redis, nats]`) can be checked together.
public protocol BrokerHealthReporting: Sendable {
    /// The broker's telemetry identity (`redis`, its server address and port): how a health
    /// report names it.
    var brokerDescription: BrokerDescription { get }
    /// Where ``Broker/run()`` is.
    var lifecycle: BrokerLifecycle { get }
    /// Whether the broker is running with every subscriber subscribed.
    var isRunning: Bool { get }
    /// Where the connection to the server is, without a round trip.
    var connectionState: ConnectionState { get }
    /// A round trip to the server, bounded by `timeout` (nil: the transport's own timeout).
    func ping(timeout: Duration?) async throws
}
