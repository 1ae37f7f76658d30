import Courier
public import NIOSSL

/// Where and how to connect to Redis: `redis://[user:password@]host[:port][/db]`, or `rediss://…`
/// for TLS; behind Sentinel, `redis+sentinel://[user:password@]host:port[,host:port…]/master[/db]`;
/// a Redis Cluster, `redis+cluster://[user:password@]host:port[,host:port…]`.
public struct RedisConfiguration: Sendable, Hashable {
    public var host: String
    public var port: Int
    /// The sentinels that name the master, for Redis behind Sentinel; nil to connect to
    /// ``host``:``port`` directly. With sentinels, host and port are only the first sentinel's,
    /// for descriptions.
    public var sentinels: RedisSentinels?
    /// The nodes to learn a Redis Cluster's slot map from, for a cluster; nil for one server (or
    /// Sentinel). With a cluster, host and port are only the first node's, for descriptions.
    public var cluster: RedisCluster?
    public var username: String?
    public var password: String?
    /// The logical database (`SELECT`).
    public var database: Int
    /// TLS for every connection; nil for plain TCP. `rediss://` URLs set the default client
    /// configuration (system trust roots, full verification); set trust roots or client
    /// certificates here.
    public var tls: TLSConfiguration?
    /// Whether to ask for RESP3 (`HELLO 3`); connections fall back to RESP2 by themselves on
    /// servers without it, so turn this off only to pin RESP2.
    public var prefersRESP3 = true
    /// How many pipelined connections publishes and acks share (subscribers have their own).
    public var connectionPoolSize = 2
    /// How long connecting may take: the TCP (and TLS) connect, and then, as long again, the
    /// handshake (`HELLO`, `AUTH`, `SELECT`).
    public var connectTimeout: Duration
    /// The longest a command (other than a blocking read) may wait for its reply.
    public var commandTimeout: Duration
    /// The longest a publish (a broker's or a handler's publish, a reply, a request's message)
    /// may take, waiting for the connection included: while Redis is unreachable after the broker
    /// had reached it (a restart, a network cut), a publish waits for the connection to come back
    /// (trying again as ``reconnect`` says) and then sends; if the connection is not back in
    /// time it fails with ``RedisError/Code/connectionUnavailable``. Cancelling the publishing task
    /// ends the wait at once. 30 s by default.
    public var publishTimeout: Duration = .seconds(30)
    /// Getting a connection back after losing it (100 ms doubling to 5 s, for ever, by default):
    /// a publish's connection, the pub/sub connection (its subscriptions renewed) and each list
    /// or stream subscriber's. Once the policy gives up, a waiting publish fails with
    /// ``RedisError/Code/connectionUnavailable``, a list or stream subscriber ends with the last
    /// error, and the pub/sub connection stops renewing (logged as an error).
    public var reconnect: ReconnectPolicy = .default
    /// The first reconnect delay and the most it grows to.
    @available(*, deprecated, message: "use reconnect, a ReconnectPolicy like every broker module's")
    public var reconnectBackoff: (initial: Duration, maximum: Duration) {
        get { (reconnect.initialDelay, reconnect.maximumDelay) }
        set { (reconnect.initialDelay, reconnect.maximumDelay) = newValue }
    }

    public init(
        host: String = "127.0.0.1",
        port: Int = 6379,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        connectTimeout: Duration = .seconds(5),
        commandTimeout: Duration = .seconds(10)
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }

    /// Redis behind Sentinel: every connection asks `sentinels` for the current master.
    ///
    /// - Parameters:
    ///   - username: the master's login, as `redis://` URLs give it (the sentinels' own, if any, is
    ///     in `sentinels`).
    public init(
        sentinels: RedisSentinels,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        connectTimeout: Duration = .seconds(5),
        commandTimeout: Duration = .seconds(10)
    ) {
        let first = sentinels.endpoints[0]
        self.init(
            host: first.host,
            port: first.port,
            username: username,
            password: password,
            database: database,
            connectTimeout: connectTimeout,
            commandTimeout: commandTimeout
        )
        self.sentinels = sentinels
    }

    /// A Redis Cluster: the slot map comes from the first of `cluster`'s nodes that answers, and
    /// every command goes to the node that owns its key.
    public init(
        cluster: RedisCluster,
        username: String? = nil,
        password: String? = nil,
        connectTimeout: Duration = .seconds(5),
        commandTimeout: Duration = .seconds(10)
    ) {
        let first = cluster.seeds[0]
        self.init(host: first.host, port: first.port, username: username, password: password, connectTimeout: connectTimeout, commandTimeout: commandTimeout)
        self.cluster = cluster
    }

    /// Parses `redis://[user:password@]host[:port][/db]`; `rediss://` is the same over TLS;
    /// `redis+sentinel://[user:password@]host[:port][,host[:port]…]/master[/db]` (`rediss+sentinel://`
    /// over TLS) names the sentinels (port 26379 by default) and the master's name;
    /// `redis+cluster://[user:password@]host[:port][,host[:port]…]` some nodes of a Redis Cluster.
    public init(url: String) throws {
        if let sentinelScheme = ["redis+sentinel://", "rediss+sentinel://"].first(where: url.hasPrefix) {
            try self.init(sentinelURL: url, scheme: sentinelScheme)
            return
        }
        if let clusterScheme = ["redis+cluster://", "rediss+cluster://"].first(where: url.hasPrefix) {
            try self.init(clusterURL: url, scheme: clusterScheme)
            return
        }
        let secure = url.hasPrefix("rediss://")
        guard url.hasPrefix("redis://") || secure else {
            throw RedisError.invalidURL(url, "it must start with redis://, rediss://, redis+sentinel:// or redis+cluster://")
        }
        var rest = Substring(url.dropFirst(secure ? "rediss://".count : "redis://".count))
        self.init()
        if secure { tls = .makeClientConfiguration() }
        (username, password) = Self.takeCredentials(from: &rest)
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let database = Int(path), database >= 0 else { throw RedisError.invalidURL(url, "the database must be a number") }
                self.database = database
            }
        }
        if let colon = rest.lastIndex(of: ":") {
            guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
                throw RedisError.invalidURL(url, "the port must be a number from 1 to 65535")
            }
            self.port = port
            rest = rest[..<colon]
        }
        if !rest.isEmpty { host = String(rest) }
    }

    private init(sentinelURL url: String, scheme: String) throws {
        var rest = Substring(url.dropFirst(scheme.count))
        let (username, password) = Self.takeCredentials(from: &rest)
        guard let slash = rest.firstIndex(of: "/") else { throw RedisError.invalidURL(url, "the master's name must follow the sentinels: /master") }
        let path = rest[rest.index(after: slash)...].split(separator: "/", omittingEmptySubsequences: false)
        guard let masterName = path.first, !masterName.isEmpty, path.count <= 2 else {
            throw RedisError.invalidURL(url, "the path must be /master or /master/db")
        }
        var database = 0
        if path.count == 2, !path[1].isEmpty {
            guard let number = Int(path[1]), number >= 0 else { throw RedisError.invalidURL(url, "the database must be a number") }
            database = number
        }
        let endpoints = try Self.endpoints(rest[..<slash], defaultPort: 26379, url: url)
        self.init(
            sentinels: RedisSentinels(endpoints, masterName: Self.percentDecoded(masterName)),
            username: username,
            password: password,
            database: database
        )
        if scheme.hasPrefix("rediss") { tls = .makeClientConfiguration() }
    }

    private init(clusterURL url: String, scheme: String) throws {
        var rest = Substring(url.dropFirst(scheme.count))
        let (username, password) = Self.takeCredentials(from: &rest)
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            guard path.isEmpty || path == "0" else { throw RedisError.invalidURL(url, "a cluster has only database 0") }
            rest = rest[..<slash]
        }
        self.init(cluster: RedisCluster(try Self.endpoints(rest, defaultPort: 6379, url: url)), username: username, password: password)
        if scheme.hasPrefix("rediss") { tls = .makeClientConfiguration() }
    }

    /// `host[:port],host[:port]…` (IPv6 hosts in brackets).
    private static func endpoints(_ list: Substring, defaultPort: Int, url: String) throws -> [RedisEndpoint] {
        try list.split(separator: ",", omittingEmptySubsequences: false).map { host in
            var name = host
            var port = defaultPort
            if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]") {
                guard let number = Int(host[host.index(after: colon)...]), (1...65535).contains(number) else {
                    throw RedisError.invalidURL(url, "the port must be a number from 1 to 65535")
                }
                port = number
                name = host[..<colon]
            }
            if name.hasPrefix("["), name.hasSuffix("]") { name = name.dropFirst().dropLast() }
            guard !name.isEmpty else { throw RedisError.invalidURL(url, "a host in the list is empty") }
            return RedisEndpoint(host: String(name), port: port)
        }
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.host == rhs.host && lhs.port == rhs.port && lhs.username == rhs.username && lhs.password == rhs.password
            && lhs.database == rhs.database && lhs.connectionPoolSize == rhs.connectionPoolSize && lhs.sentinels == rhs.sentinels && lhs.cluster == rhs.cluster
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(host)
        hasher.combine(port)
        hasher.combine(database)
        hasher.combine(sentinels)
        hasher.combine(cluster)
    }

    /// This configuration for one server of a Sentinel set-up or a cluster (the master it found, a
    /// node): its login, database, TLS and timeouts, at `host`:`port`, connecting there directly.
    func direct(to host: String, port: Int) -> Self {
        var direct = self
        direct.sentinels = nil
        direct.cluster = nil
        direct.host = host
        direct.port = port
        return direct
    }

    /// Takes `user:password@` (or `password@`) off the front of a URL's rest, percent-decoded.
    private static func takeCredentials(from rest: inout Substring) -> (username: String?, password: String?) {
        guard let at = rest.lastIndex(of: "@") else { return (nil, nil) }
        let credentials = rest[..<at]
        rest = rest[rest.index(after: at)...]
        guard let colon = credentials.firstIndex(of: ":") else { return (nil, percentDecoded(credentials)) }
        let user = credentials[..<colon]
        return (user.isEmpty ? nil : percentDecoded(user), percentDecoded(credentials[credentials.index(after: colon)...]))
    }

    private static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

// Configurations get logged and printed: their renderings never show the password.
extension RedisConfiguration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The configuration as a URL, password masked: `redis://app:***@127.0.0.1:6379/3`.
    public var redactedURL: String {
        var userInfo = ""
        if password != nil {
            userInfo = "\(username ?? ""):\(Redaction.mask)@"
        } else if let username {
            userInfo = "\(username)@"
        }
        let scheme = tls == nil ? "redis" : "rediss"
        if let cluster {
            return "\(scheme)+cluster://\(userInfo)\(cluster.seeds.map(\.description).joined(separator: ","))"
        }
        if let sentinels {
            let hosts = sentinels.endpoints.map(\.description).joined(separator: ",")
            return "\(scheme)+sentinel://\(userInfo)\(hosts)/\(sentinels.masterName)/\(database)"
        }
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "\(scheme)://\(userInfo)\(host):\(port)/\(database)"
    }

    public var description: String { "RedisConfiguration(\(redactedURL))" }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "host": host,
                "port": port,
                "cluster": cluster.map { "\($0.seeds)" } as Any,
                "sentinels": sentinels.map { "\($0.endpoints) master \($0.masterName)" + ($0.password == nil ? "" : " password \(Redaction.mask)") } as Any,
                "username": username as Any,
                "password": password.map { _ in Redaction.mask } as Any,
                "database": database,
                "tls": tls == nil ? "off" : "on",
                "prefersRESP3": prefersRESP3,
                "connectionPoolSize": connectionPoolSize,
                "connectTimeout": connectTimeout,
                "commandTimeout": commandTimeout,
                "publishTimeout": publishTimeout,
            ],
            displayStyle: .struct
        )
    }
}
