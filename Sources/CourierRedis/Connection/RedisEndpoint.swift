/// A Redis server's address: a sentinel's, or a cluster node's.
public struct RedisEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// A sentinel, on Sentinel's own port by default.
    public static func sentinel(_ host: String, port: Int = 26379) -> Self { Self(host: host, port: port) }

    /// A cluster node, on Redis's port by default.
    public static func node(_ host: String, port: Int = 6379) -> Self { Self(host: host, port: port) }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
