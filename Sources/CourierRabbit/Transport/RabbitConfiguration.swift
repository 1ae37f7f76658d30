import Courier
import Foundation
public import NIOSSL

/// Where and how to connect to RabbitMQ: `amqp://user:password@host:port/vhost`, or `amqps://…`
/// for TLS.
public struct RabbitConfiguration: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var host: String
    public var port: Int
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
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.virtualHost = virtualHost
    }

    /// Parses `amqp://[user[:password]@]host[:port][/vhost]` (port 5672), or `amqps://…` (TLS,
    /// port 5671); an empty path is the vhost `/`, `/%2f` too, and `/orders` is `orders`.
    public init(url: String) throws {
        let scheme = URLComponents(string: url)?.scheme?.lowercased()
        guard let components = URLComponents(string: url), scheme == "amqp" || scheme == "amqps", let host = components.host, !host.isEmpty else {
            throw RabbitError(.invalidURL, "'\(Redaction.url(url, loneUserInfo: .username))' is not an amqp://host or amqps://host URL")
        }
        let secure = scheme == "amqps"
        self.init(host: host, port: components.port ?? (secure ? 5671 : 5672))
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

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.host == rhs.host && lhs.port == rhs.port && lhs.username == rhs.username && lhs.password == rhs.password
            && lhs.virtualHost == rhs.virtualHost && lhs.heartbeat == rhs.heartbeat && lhs.connectTimeout == rhs.connectTimeout
            && lhs.reconnect == rhs.reconnect && lhs.publishRetries == rhs.publishRetries && lhs.publishTimeout == rhs.publishTimeout
            && (lhs.tls == nil) == (rhs.tls == nil) && (lhs.tls.map { rhs.tls?.bestEffortEquals($0) ?? false } ?? true)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(host)
        hasher.combine(port)
        hasher.combine(username)
        hasher.combine(virtualHost)
        tls?.bestEffortHash(into: &hasher)
    }

    var secrets: SecretScrubber { SecretScrubber([password]) }

    public var description: String {
        "RabbitConfiguration(\(tls == nil ? "amqp" : "amqps")://\(username):\(Redaction.mask)@\(host):\(port), vhost: \(virtualHost))"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "host": host, "port": port, "username": username, "virtualHost": virtualHost, "tls": tls == nil ? "off" : "on",
                "publishTimeout": publishTimeout,
            ]
        )
    }
}
