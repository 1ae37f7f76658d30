public import Courier

/// How Kafka appears in AsyncAPI documents: FastStream's `kafka` server (`protocolVersion:
/// auto`) and topic bindings (binding version 0.4.0), with the consumer group as the operation's
/// `groupId`.
extension KafkaTransport {
    public func asyncAPIServer(_ version: AsyncAPIVersion) -> AsyncAPIServer {
        // The bootstrap list: `host:port` each, never credentials (those are SASL properties).
        let servers = configuration.bootstrapServers.joined(separator: ",")
        return AsyncAPIServer(host: servers, pathname: "", protocol: "kafka", protocolVersion: "auto", url: servers)
    }

    public func asyncAPIChannel(for source: KafkaSource, version: AsyncAPIVersion) -> AsyncAPIChannel {
        let address = source.subscribedDestination.name
        var operation: [String: JSONValue] = [:]
        if let group = source.group {
            operation["kafka"] = ["groupId": ["type": "string", "enum": [.string(group)]], "bindingVersion": "0.4.0"]
        }
        return AsyncAPIChannel(address: address, bindings: ["kafka": ["topic": .string(address), "bindingVersion": "0.4.0"]], operationBindings: operation)
    }

    public func asyncAPIChannel(for destination: NamedDestination, version: AsyncAPIVersion) -> AsyncAPIChannel {
        AsyncAPIChannel(address: destination.name, bindings: ["kafka": ["topic": .string(destination.name), "bindingVersion": "0.4.0"]])
    }
}
