public import Courier

/// How RabbitMQ appears in AsyncAPI documents: the `amqp` server (0.9.1, the virtual host as its
/// path) and AMQP bindings as FastStream writes them: version 0.3.0 in 3.0.0 documents (a queue,
/// with its declaration flags, for a subscriber; an exchange and a routing key for a publisher),
/// 0.2.0 in 2.6.0 ones. Channel keys carry the exchange, `_` for the default one.
extension RabbitTransport {
    public func asyncAPIServer(_ version: AsyncAPIVersion) -> AsyncAPIServer {
        let host = "\(configuration.host):\(configuration.port)"
        let scheme = configuration.tls == nil ? "amqp" : "amqps"
        let path = configuration.virtualHost.hasPrefix("/") ? configuration.virtualHost : "/" + configuration.virtualHost
        return AsyncAPIServer(host: host, pathname: path, protocol: scheme, protocolVersion: "0.9.1", url: "\(scheme)://\(host)\(path)")
    }

    public func asyncAPIChannel(for source: RabbitSource, version: AsyncAPIVersion) -> AsyncAPIChannel {
        let queue: JSONValue = [
            "name": .string(source.queue.name),
            "durable": .bool(source.queue.durable),
            "exclusive": .bool(source.queue.exclusive),
            "autoDelete": .bool(source.queue.autoDelete),
            "vhost": .string(configuration.virtualHost),
        ]
        let exchange = source.exchange.map(exchangeBinding) ?? defaultExchange
        let routingKey = source.routingKey ?? source.queue.name
        let bindingVersion = Self.bindingVersion(version)
        var binding: [String: JSONValue] = ["queue": queue, "bindingVersion": bindingVersion]
        if version == .v3_0_0 {
            binding["is"] = "queue"
            if source.exchange != nil { binding["exchange"] = exchange }
        } else {
            binding["is"] = "routingKey"
            binding["exchange"] = exchange
        }
        let cc: JSONValue = version == .v3_0_0 ? [.string(routingKey)] : .string(routingKey)
        return AsyncAPIChannel(
            address: source.queue.name,
            keyQualifiers: [source.exchange?.name ?? "_"],
            bindings: ["amqp": .object(binding)],
            operationBindings: ["amqp": ["cc": cc, "ack": true, "bindingVersion": bindingVersion]]
        )
    }

    public func asyncAPIChannel(for destination: RabbitDestination, version: AsyncAPIVersion) -> AsyncAPIChannel {
        let isDefaultExchange = destination.exchange.isEmpty
        let exchange: JSONValue = isDefaultExchange ? defaultExchange : ["name": .string(destination.exchange), "vhost": .string(configuration.virtualHost)]
        let bindingVersion = Self.bindingVersion(version)
        var binding: [String: JSONValue] = ["is": "routingKey", "exchange": exchange, "bindingVersion": bindingVersion]
        if version == .v2_6_0, isDefaultExchange {
            // 2.6.0 documents name the queue the default exchange routes to.
            binding["queue"] = [
                "name": .string(destination.routingKey), "durable": true, "exclusive": false, "autoDelete": false,
                "vhost": .string(configuration.virtualHost),
            ]
        }
        let cc: JSONValue = version == .v3_0_0 ? [.string(destination.routingKey)] : .string(destination.routingKey)
        return AsyncAPIChannel(
            address: isDefaultExchange || !destination.routingKey.isEmpty ? destination.routingKey : destination.exchange,
            keyQualifiers: [isDefaultExchange ? "_" : destination.exchange],
            bindings: ["amqp": .object(binding)],
            operationBindings: ["amqp": ["cc": cc, "ack": true, "deliveryMode": 1, "mandatory": true, "bindingVersion": bindingVersion]]
        )
    }

    private var defaultExchange: JSONValue {
        ["type": "default", "vhost": .string(configuration.virtualHost)]
    }

    private func exchangeBinding(_ exchange: RabbitExchange) -> JSONValue {
        [
            "name": .string(exchange.name),
            "type": .string(exchange.kind.rawValue),
            "durable": .bool(exchange.durable),
            "autoDelete": .bool(exchange.autoDelete),
            "vhost": .string(configuration.virtualHost),
        ]
    }

    private static func bindingVersion(_ version: AsyncAPIVersion) -> JSONValue {
        version == .v3_0_0 ? "0.3.0" : "0.2.0"
    }
}
