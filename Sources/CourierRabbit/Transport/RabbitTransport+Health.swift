public import Courier

extension RabbitTransport {
    /// Opens a channel on the live connection and closes it again: two round trips
    /// (`channel.open`/`open-ok`, `channel.close`/`close-ok`) that touch no exchange or queue.
    /// Never waits for a reconnect under way: a lost connection fails at once. Bounded by the
    /// configuration's connect timeout.
    public func ping() async throws {
        let session = self.session
        let timeout = configuration.connectTimeout
        try await withTimeout(timeout, error: { RabbitError(.connectionClosed, "RabbitMQ did not answer within \(timeout)") }) {
            let live = try await session.liveWithoutWaitingForRecovery()
            let channel = try await live.connection.openChannel()
            try await channel.close()
        }
    }

    /// The session's connection: idle, connecting, connected, reconnecting (with the close
    /// reason: the server's `connection.close`, a missed heartbeat, the socket) or closed.
    public var connectionState: ConnectionState {
        session.connectionState
    }

    /// The node the connection is to (one of the configuration's ``RabbitConfiguration/endpoints``);
    /// nil while there is no open connection.
    public var connectedNode: RabbitEndpoint? {
        session.connectedNode
    }
}

extension Broker where Transport == RabbitTransport {
    /// The node the broker's connection is to; nil while there is no open connection.
    public var connectedNode: RabbitEndpoint? {
        transport.connectedNode
    }
}
