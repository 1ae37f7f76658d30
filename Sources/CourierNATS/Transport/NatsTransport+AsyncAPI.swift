public import Courier

/// How NATS appears in AsyncAPI documents: FastStream's `nats` server and its own subject
/// bindings (`bindingVersion: custom`; AsyncAPI defines no NATS channel binding), with the queue
/// group, and for JetStream the stream and the durable consumer.
extension NatsTransport {
    public func asyncAPIServer(_ version: AsyncAPIVersion) -> AsyncAPIServer {
        // The description's address: parsed from the first server URL, without its credentials.
        let host = "\(description.serverAddress ?? "localhost"):\(description.serverPort ?? 4222)"
        return AsyncAPIServer(host: host, pathname: "", protocol: "nats", protocolVersion: "custom", url: "nats://\(host)")
    }

    public func asyncAPIChannel(for source: NatsSource, version: AsyncAPIVersion) -> AsyncAPIChannel {
        var binding: [String: JSONValue] = ["subject": .string(source.subject), "bindingVersion": "custom"]
        switch source.kind {
        case .subject(let queue):
            if let queue { binding["queue"] = .string(queue) }
        case .jetStream(let stream, _, let consumer):
            binding["stream"] = .string(stream)
            if let durable = consumer.durableName { binding["durable"] = .string(durable) }
        case .keyValue(let bucket):
            binding["bucket"] = .string(bucket)
        }
        return AsyncAPIChannel(address: source.subject, bindings: ["nats": .object(binding)])
    }

    public func asyncAPIChannel(for destination: NatsDestination, version: AsyncAPIVersion) -> AsyncAPIChannel {
        var binding: [String: JSONValue] = ["subject": .string(destination.subject), "bindingVersion": "custom"]
        if case .jetStream(let stream) = destination.kind, let stream { binding["stream"] = .string(stream) }
        return AsyncAPIChannel(address: destination.subject, bindings: ["nats": .object(binding)])
    }
}
