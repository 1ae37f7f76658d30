/// Redis behind Sentinel: the sentinels to ask which server is the master of ``masterName``.
///
/// Every connection (publishes, subscribers, pub/sub) asks the sentinels in order, connects to
/// the master the first one that answers names, and checks with `ROLE` that it is one. When a
/// master fails, its connections drop (or a write on one is refused with `READONLY`, the old
/// master demoted), and each reconnect, as ``RedisConfiguration/reconnect`` says, asks the
/// sentinels again: it reaches the replica they promoted.
public struct RedisSentinels: Sendable, Hashable {
    /// A sentinel's address (Sentinel's own port, 26379, by default).
    public typealias Endpoint = RedisEndpoint

    /// The sentinels, asked in this order; never empty.
    public var endpoints: [Endpoint]
    /// The name the sentinels monitor the master under (`sentinel monitor NAME …`).
    public var masterName: String
    /// The sentinels' own login (`requirepass` in sentinel.conf), when they have one; the data
    /// nodes' is the configuration's.
    public var username: String?
    public var password: String?

    public init(_ endpoints: [Endpoint], masterName: String, username: String? = nil, password: String? = nil) {
        self.endpoints = endpoints.isEmpty ? [Endpoint(host: "127.0.0.1", port: 26379)] : endpoints
        self.masterName = masterName
        self.username = username
        self.password = password
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.endpoints == rhs.endpoints && lhs.masterName == rhs.masterName && lhs.username == rhs.username && lhs.password == rhs.password
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(endpoints)
        hasher.combine(masterName)
    }
}

extension RedisSentinels {
    /// The configuration of a connection to the sentinel at `endpoint`: the sentinels' login, and
    /// the data nodes' timeouts, TLS and protocol.
    func configuration(of endpoint: Endpoint, like data: RedisConfiguration) -> RedisConfiguration {
        var sentinel = RedisConfiguration(
            host: endpoint.host,
            port: endpoint.port,
            username: username,
            password: password,
            connectTimeout: data.connectTimeout,
            commandTimeout: data.commandTimeout
        )
        sentinel.tls = data.tls
        sentinel.prefersRESP3 = data.prefersRESP3
        sentinel.reconnect = data.reconnect
        return sentinel
    }
}
