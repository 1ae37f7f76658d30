extension Broker: BrokerHealthReporting {
    /// The transport's telemetry identity (`redis`, `127.0.0.1`, `6379`), which health reports
    /// name the broker by.
    public var brokerDescription: BrokerDescription { transport.description }

    /// Whether ``run()`` is past connecting and subscribing, with every subscriber subscribed,
    /// and intake has not stopped: what a readiness check wants before the first message.
    public var isRunning: Bool { lifecycle == .running }

    /// Where the transport's connection to the server is, without a round trip (see
    /// ``BrokerTransport/connectionState``).
    public var connectionState: ConnectionState { transport.connectionState }

    /// A round trip to the server (``BrokerTransport/ping()``): returns once it answered.
    ///
    /// - Parameter timeout: how long the answer may take; nil leaves it to the transport's own
    ///   timeout (its command or request timeout).
    /// - Throws: ``CourierError`` `.pingFailed`, with the transport's error as its
    ///   ``CourierError/underlying``, when the server did not answer in time or answered with an
    ///   error.
    public func ping(timeout: Duration? = nil) async throws {
        let transport = self.transport
        let name = Self.name(of: transport.description)
        do {
            if let timeout {
                try await withTimeout(timeout, error: { CourierError(.pingFailed, "\(name) did not answer a ping within \(timeout)") }) {
                    try await transport.ping()
                }
            } else {
                try await transport.ping()
            }
        } catch let error as CourierError where error.code == .pingFailed {
            throw error
        } catch {
            throw CourierError(.pingFailed, "\(name) did not answer a ping", underlying: error)
        }
    }

    /// `redis 127.0.0.1:6379`: the system, then the address where there is one.
    static func name(of description: BrokerDescription) -> String {
        guard let address = description.serverAddress else { return description.messagingSystem }
        return "\(description.messagingSystem) \(address)" + (description.serverPort.map { ":\($0)" } ?? "")
    }
}
