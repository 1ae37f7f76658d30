/// The AsyncAPI versions a document can be written in: 3.0.0 (the default, as FastStream's) and 2.6.0.
public enum AsyncAPIVersion: String, Sendable, Hashable, CaseIterable {
    case v3_0_0 = "3.0.0"
    case v2_6_0 = "2.6.0"
}

/// How a subscription source or a publish destination appears in an AsyncAPI document: the
/// broker module's part of it (the document itself is `CourierAsyncAPI`'s).
public struct AsyncAPIChannel: Sendable, Hashable {
    /// Where messages go: the queue, topic, subject or channel name.
    public var address: String
    /// What FastStream puts between the address and the handler's name in channel keys
    /// (RabbitMQ: the exchange, `_` for the default one: `first:_:FirstHandler`).
    public var keyQualifiers: [String]
    /// The channel's bindings, by protocol (`["kafka": ["topic": "orders", …]]`).
    public var bindings: [String: JSONValue]
    /// The operation's bindings, by protocol (RabbitMQ's `cc`, `ack`…).
    public var operationBindings: [String: JSONValue]

    public init(address: String, keyQualifiers: [String] = [], bindings: [String: JSONValue] = [:], operationBindings: [String: JSONValue] = [:]) {
        self.address = address
        self.keyQualifiers = keyQualifiers
        self.bindings = bindings
        self.operationBindings = operationBindings
    }
}

/// The server an AsyncAPI document names: where the broker is, never its credentials.
public struct AsyncAPIServer: Sendable, Hashable {
    /// `host[:port]`.
    public var host: String
    /// The path after the host (RabbitMQ's virtual host: `/`); nil for none.
    public var pathname: String?
    /// `kafka`, `amqp`, `nats`, `redis`…
    public var `protocol`: String
    /// The protocol's version (`0.9.1`), `auto` or `custom` as FastStream writes them.
    public var protocolVersion: String?

    /// What 2.6.0 documents give instead of `host` and `pathname`; nil for
    /// `protocol://host/pathname`.
    public var url: String?

    public init(host: String, pathname: String? = nil, protocol: String, protocolVersion: String? = nil, url: String? = nil) {
        self.host = host
        self.pathname = pathname
        self.protocol = `protocol`
        self.protocolVersion = protocolVersion
        self.url = url
    }
}

extension BrokerTransport {
    /// Without a broker module's own description: the address telemetry reports.
    public func asyncAPIServer(_ version: AsyncAPIVersion) -> AsyncAPIServer {
        let description = self.description
        let host = description.serverAddress.map { address in description.serverPort.map { "\(address):\($0)" } ?? address } ?? "localhost"
        return AsyncAPIServer(host: host, protocol: description.messagingSystem)
    }

    /// Without a broker module's own description: the subscribed name, no bindings.
    public func asyncAPIChannel(for source: Source, version: AsyncAPIVersion) -> AsyncAPIChannel {
        AsyncAPIChannel(address: source.subscribedDestination.name)
    }

    /// Without a broker module's own description: the name, no bindings.
    public func asyncAPIChannel(for destination: Destination, version: AsyncAPIVersion) -> AsyncAPIChannel {
        AsyncAPIChannel(address: destination.name)
    }
}
