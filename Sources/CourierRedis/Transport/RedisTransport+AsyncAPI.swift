public import Courier

/// How Redis appears in AsyncAPI documents: FastStream's `redis` server and its own bindings
/// (`bindingVersion: custom`; AsyncAPI defines no Redis binding): the channel, list or stream
/// name and the command that reads or writes it (`subscribe`, `psubscribe`, `ssubscribe`, `lpop`,
/// `xread`, `xreadgroup` with the group and consumer; `publish`, `spublish`, `rpush`, `xadd`).
extension RedisTransport {
    public func asyncAPIServer(_ version: AsyncAPIVersion) -> AsyncAPIServer {
        // Where the configuration points: a node or a sentinel of a set-up; never credentials.
        let host = "\(configuration.host):\(configuration.port)"
        let scheme = configuration.tls == nil ? "redis" : "rediss"
        return AsyncAPIServer(host: host, pathname: "", protocol: scheme, protocolVersion: "custom", url: "\(scheme)://\(host)")
    }

    public func asyncAPIChannel(for source: RedisSource, version: AsyncAPIVersion) -> AsyncAPIChannel {
        var binding: [String: JSONValue] = ["bindingVersion": "custom"]
        switch source.kind {
        case .channel:
            binding["channel"] = .string(source.name)
            binding["method"] = source.sharded ? "ssubscribe" : "subscribe"
        case .pattern:
            binding["channel"] = .string(source.glob)
            binding["method"] = "psubscribe"
        case .list:
            binding["channel"] = .string(source.name)
            binding["method"] = "lpop"
        case .stream(let options):
            binding["channel"] = .string(source.name)
            binding["method"] = options.group == nil ? "xread" : "xreadgroup"
            if let group = options.group {
                binding["groupName"] = .string(group)
                binding["consumerName"] = .string(options.consumer ?? group)
            }
        }
        return AsyncAPIChannel(address: binding["channel"]?.string ?? source.name, bindings: ["redis": .object(binding)])
    }

    public func asyncAPIChannel(for destination: RedisDestination, version: AsyncAPIVersion) -> AsyncAPIChannel {
        let method: JSONValue = switch destination.kind {
        case .channel: destination.sharded ? "spublish" : "publish"
        case .list: "rpush"
        case .stream: "xadd"
        }
        return AsyncAPIChannel(
            address: destination.name,
            bindings: ["redis": ["channel": .string(destination.name), "method": method, "bindingVersion": "custom"]]
        )
    }
}
