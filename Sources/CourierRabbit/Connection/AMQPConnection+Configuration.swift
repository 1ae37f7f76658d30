extension AMQPConnection {
    /// Connects as `configuration` says (login, vhost, heartbeat, TLS, connect timeout) to the
    /// first of its endpoints that answers: what `courier-bench` runs the client alone with, no
    /// framework around it, against the same server as its Courier rows.
    package static func connect(_ configuration: RabbitConfiguration) async throws -> AMQPConnection {
        try await connect(configuration, trying: configuration.endpoints).connection
    }

    /// Connects to the first of `endpoints` that answers (in order); returns the connection and
    /// the index in `endpoints` of the node it is to.
    /// - Throws: the one node's error; with several, ``RabbitError`` `.connectionClosed` naming
    ///   every node and its error. A refused login, a vhost refused, an invalid TLS configuration
    ///   fail at once: another node of the cluster would refuse them too.
    static func connect(_ configuration: RabbitConfiguration, trying endpoints: [RabbitEndpoint]) async throws -> (connection: AMQPConnection, index: Int) {
        var failures: [(RabbitEndpoint, any Error)] = []
        for (index, endpoint) in endpoints.enumerated() {
            try Task.checkCancellation()
            do {
                return (try await connect(configuration, to: endpoint), index)
            } catch let error as RabbitError where !Self.anotherNodeMayAnswer(error) {
                throw error
            } catch {
                failures.append((endpoint, error))
            }
        }
        guard failures.count > 1, let last = failures.last else {
            throw failures.last?.1 ?? RabbitError(.connectionClosed, "no RabbitMQ node to connect to")
        }
        let tried = failures.map { "\($0.0): \(($0.1 as? RabbitError)?.message ?? "\($0.1)")" }.joined(separator: "; ")
        throw RabbitError(.connectionClosed, "no RabbitMQ node answered (\(tried))", underlying: last.1)
    }

    /// Whether `error` is the node's alone (unreachable, gone during the handshake, silent), so
    /// that the next node is worth trying.
    private static func anotherNodeMayAnswer(_ error: RabbitError) -> Bool {
        [.connectionClosed, .heartbeatTimeout, .timeout].contains(error.code)
    }

    /// Connects to one node.
    static func connect(_ configuration: RabbitConfiguration, to endpoint: RabbitEndpoint) async throws -> AMQPConnection {
        try await connect(
            host: endpoint.host,
            port: endpoint.port,
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
