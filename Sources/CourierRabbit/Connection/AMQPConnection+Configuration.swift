extension AMQPConnection {
    /// Connects with what a ``RabbitTransport`` of `configuration` would connect with (host, port,
    /// login, vhost, heartbeat, connect timeout): how `courier-bench` runs the client alone, with
    /// no framework around it, against the same server as its Courier rows.
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
            connectTimeout: configuration.connectTimeout
        )
    }
}
