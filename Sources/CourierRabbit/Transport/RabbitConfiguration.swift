import Courier
import Foundation
public import NIOSSL

/// One node of RabbitMQ to connect to.
public struct RabbitEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int = 5672) {
        self.host = host
        self.port = port
    }

    /// `host:port` (`[::1]:5672` for an IPv6 address).
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Where and how to connect to RabbitMQ: `amqp://user:password@host:port/vhost`, or `amqps://…`
/// for TLS; a cluster's nodes as `amqp://user:password@h1:5672,h2:5673,h3:5674/vhost`.
public struct RabbitConfiguration: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The nodes to connect to, in order: the first that answers is used, and a lost connection
    /// is made again to the next one (then round again), so that the client fails over to a
    /// surviving node of a cluster. Never empty.
    public var endpoints: [RabbitEndpoint] {
        didSet { if endpoints.isEmpty { endpoints = oldValue } }
    }
    /// The first endpoint's host.
    public var host: String {
        get { endpoints[0].host }
        set { endpoints[0].host = newValue }
    }
    /// The first endpoint's port.
    public var port: Int {
        get { endpoints[0].port }
        set { endpoints[0].port = newValue }
    }
    public var username: String
    public var password: String
    public var virtualHost: String
    /// TLS for the connection; nil for plain TCP. `amqps://` URLs set the default client
    /// configuration (system trust roots, full verification); set trust roots or a client
    /// certificate here.
    public var tls: TLSConfiguration?
    /// The heartbeat interval asked for; the server's proposal wins when lower.
    public var heartbeat: Duration = .seconds(60)
    public var connectTimeout: Duration = .seconds(10)
    /// Getting the connection back after losing it (100 ms doubling to 5 s, for ever, by
    /// default); nil makes a lost connection stop the broker. On each new connection the
    /// transport declares again every exchange, queue and binding it declared, resumes every
    /// consumer and the direct reply-to consumer, and sends again the publishes the old
    /// connection lost before their confirms (``publishRetries``). Once the policy gives up, the
    /// broker stops with the last attempt's error.
    public var reconnect: ReconnectPolicy? = .default
    /// How many times a publish the connection lost before its confirm is sent again on the
    /// next connection before it fails (3). A retried publish may arrive twice, if the server had
    /// taken it before the connection broke; it keeps its message id, for consumers to tell.
    public var publishRetries: Int = 3
    /// The longest a publish (a broker's or a handler's publish, a reply, a request's message)
    /// may take: waiting for the connection, sending, and the server's confirm. While the
    /// connection is being made again (``reconnect``) a publish waits for it and then sends; if
    /// it is not back in time the publish fails with ``RabbitError/Code/connectionUnavailable``
    /// (a confirm that does not come in time: ``RabbitError/Code/timeout``). Cancelling the
    /// publishing task ends the wait at once. 30 s by default.
    public var publishTimeout: Duration = .seconds(30)

    public init(host: String = "127.0.0.1", port: Int = 5672, username: String = "guest", password: String = "guest", virtualHost: String = "/") {
        self.init(endpoints: [RabbitEndpoint(host: host, port: port)], username: username, password: password, virtualHost: virtualHost)
    }

    /// A cluster's nodes, tried in order (see ``endpoints``); an empty list is the local node.
    public init(endpoints: [RabbitEndpoint], username: String = "guest", password: String = "guest", virtualHost: String = "/") {
        self.endpoints = endpoints.isEmpty ? [RabbitEndpoint(host: "127.0.0.1")] : endpoints
        self.username = username
        self.password = password
        self.virtualHost = virtualHost
    }

    /// Parses `amqp://[user[:password]@]host[:port][,host[:port]…][/vhost]` (port 5672), or
    /// `amqps://…` (TLS, port 5671); an empty path is the vhost `/`, `/%2f` too, and `/orders` is
    /// `orders`. Several hosts are a cluster's nodes, tried in order (see ``endpoints``).
    public init(url: String) throws {
        let invalid = RabbitError(.invalidURL, "'\(Redaction.url(url, loneUserInfo: .username))' is not an amqp://host or amqps://host URL")
        // The hosts after the first are parsed as URLs of their own (`scheme://host:port`), so
        // that each is read, and checked, as a URL's host is.
        let (first, others) = Self.splitHosts(url)
        let scheme = URLComponents(string: first)?.scheme?.lowercased()
        guard let components = URLComponents(string: first), scheme == "amqp" || scheme == "amqps", let host = components.host, !host.isEmpty else {
            throw invalid
        }
        let secure = scheme == "amqps"
        let defaultPort = secure ? 5671 : 5672
        var endpoints = [RabbitEndpoint(host: host, port: components.port ?? defaultPort)]
        for other in others {
            guard let node = URLComponents(string: "\(scheme ?? "amqp")://\(other)"), let host = node.host, !host.isEmpty,
                node.user == nil, node.percentEncodedPath.isEmpty
            else { throw invalid }
            endpoints.append(RabbitEndpoint(host: host, port: node.port ?? defaultPort))
        }
        self.init(endpoints: endpoints)
        if secure { tls = .makeClientConfiguration() }
        if let user = components.user { username = user.removingPercentEncoding ?? user }
        if let password = components.password { self.password = password.removingPercentEncoding ?? password }
        let path = components.percentEncodedPath
        if path.isEmpty || path == "/" {
            virtualHost = "/"
        } else {
            virtualHost = String(path.dropFirst()).removingPercentEncoding ?? String(path.dropFirst())
        }
    }

    /// `url` with only its first host, and the other hosts (`host[:port]` each) of a
    /// comma-separated list.
    private static func splitHosts(_ url: String) -> (String, [Substring]) {
        guard let schemeEnd = url.range(of: "://") else { return (url, []) }
        let afterScheme = url[schemeEnd.upperBound...]
        let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? afterScheme.endIndex
        let authority = afterScheme[..<authorityEnd]
        let hostsStart = authority.lastIndex(of: "@").map { authority.index(after: $0) } ?? authority.startIndex
        let hosts = authority[hostsStart...].split(separator: ",", omittingEmptySubsequences: false)
        guard hosts.count > 1 else { return (url, []) }
        let first = String(url[..<hostsStart]) + hosts[0] + url[authorityEnd...]
        return (first, Array(hosts.dropFirst()))
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.endpoints == rhs.endpoints && lhs.username == rhs.username && lhs.password == rhs.password
            && lhs.virtualHost == rhs.virtualHost && lhs.heartbeat == rhs.heartbeat && lhs.connectTimeout == rhs.connectTimeout
            && lhs.reconnect == rhs.reconnect && lhs.publishRetries == rhs.publishRetries && lhs.publishTimeout == rhs.publishTimeout
            && (lhs.tls == nil) == (rhs.tls == nil) && (lhs.tls.map { rhs.tls?.bestEffortEquals($0) ?? false } ?? true)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(endpoints)
        hasher.combine(username)
        hasher.combine(virtualHost)
        tls?.bestEffortHash(into: &hasher)
    }

    var secrets: SecretScrubber { SecretScrubber([password]) }

    public var description: String {
        "RabbitConfiguration(\(tls == nil ? "amqp" : "amqps")://\(username):\(Redaction.mask)@\(endpoints.map(\.description).joined(separator: ",")), vhost: \(virtualHost))"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "endpoints": endpoints.map(\.description), "username": username, "virtualHost": virtualHost, "tls": tls == nil ? "off" : "on",
                "publishTimeout": publishTimeout,
            ]
        )
    }
}
