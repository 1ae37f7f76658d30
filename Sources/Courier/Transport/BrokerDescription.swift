/// The broker facts telemetry reports.
public struct BrokerDescription: Sendable, Hashable {
    /// `messaging.system`: `kafka`, `rabbitmq`, `nats`, `redis`, `memory`.
    public var messagingSystem: String
    /// `server.address`, when there is a server.
    public var serverAddress: String?
    /// `server.port`, when there is a server.
    public var serverPort: Int?

    public init(messagingSystem: String, serverAddress: String? = nil, serverPort: Int? = nil) {
        self.messagingSystem = messagingSystem
        self.serverAddress = serverAddress
        self.serverPort = serverPort
    }
}
