extension AMQPConnection {
    /// Connects as `configuration` says (host, port, login, vhost, heartbeat, TLS, connect
    /// timeout): what ``RabbitTransport`` connects with, and how `courier-bench` runs the client
    /// alone, with no framework around it, against the same server as its Courier rows.
    package static func connect(_ configuration: RabbitConfiguration) async throws -> AMQPConnection {
        try await connect(
            host: configuration.host,
            port: configuration.port,
            configuration: .init(
                username: configuration.username,
                password: configuration.password,
                virtualHost: configuration.virtualHost,
                heartbeat: UInt16(clamping: configuration.heartbeat.components.seconds)
            ),
            tls: configuration.tls,
            connectTimeout: configuration.connectTimeout
        )
    }
}
