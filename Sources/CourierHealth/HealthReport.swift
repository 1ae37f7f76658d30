import Courier

/// The answer of a liveness or readiness check: healthy when every broker is; the JSON body of
/// the health routes.
///
/// ```json
/// {"status":"unavailable","brokers":[{"name":"redis 127.0.0.1:6379","system":"redis",
///  "healthy":false,"lifecycle":"running","connection":"reconnecting",
///  "reason":"redis 127.0.0.1:6379 did not answer a ping: Redis: cannot connect to …"}]}
/// ```
public struct HealthReport: Sendable, Codable, Hashable {
    /// One broker's part of the report.
    public struct BrokerReport: Sendable, Codable, Hashable {
        /// `redis 127.0.0.1:6379`: the messaging system, then the server address where there is one.
        public var name: String
        /// `messaging.system`: `redis`, `nats`, `kafka`, `rabbitmq`, `memory`.
        public var system: String
        /// Whether this broker passed the check.
        public var healthy: Bool
        /// Where ``Courier/Broker/run()`` is (``Courier/BrokerLifecycle``).
        public var lifecycle: String
        /// The transport's connection status (``Courier/ConnectionState/Status``).
        public var connection: String
        /// Why the check failed, or why the connection is down; nil when healthy and connected.
        public var reason: String?

        /// A broker's part, from its parts (a report of a check of your own).
        public init(name: String, system: String, healthy: Bool, lifecycle: String, connection: String, reason: String?) {
            self.name = name
            self.system = system
            self.healthy = healthy
            self.lifecycle = lifecycle
            self.connection = connection
            self.reason = reason
        }

        init(_ broker: any BrokerHealthReporting, lifecycle: BrokerLifecycle, healthy: Bool, reason: String?) {
            let description = broker.brokerDescription
            let connection = broker.connectionState
            var name = description.messagingSystem
            if let address = description.serverAddress {
                name += " \(address)" + (description.serverPort.map { ":\($0)" } ?? "")
            }
            self.init(
                name: name,
                system: description.messagingSystem,
                healthy: healthy,
                lifecycle: lifecycle.description,
                connection: connection.status.description,
                reason: reason ?? connection.reason
            )
        }
    }

    /// `ok` when every broker is healthy, `unavailable` otherwise.
    public var status: String
    /// Every checked broker, in the check's order.
    public var brokers: [BrokerReport]

    /// The report of `brokers`: `ok` when every one is healthy.
    public init(brokers: [BrokerReport]) {
        self.brokers = brokers
        self.status = brokers.allSatisfy(\.healthy) ? "ok" : "unavailable"
    }

    /// Whether every broker passed.
    public var isHealthy: Bool { status == "ok" }

    /// The brokers that did not pass.
    public var failing: [BrokerReport] { brokers.filter { !$0.healthy } }
}
