public import Courier
import Foundation

/// Where and how to connect to RabbitMQ: `amqp://user:password@host:port/vhost`.
public struct RabbitConfiguration: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String
    public var virtualHost: String
    /// The heartbeat interval asked for; the server's proposal wins when lower.
    public var heartbeat: Duration = .seconds(60)
    public var connectTimeout: Duration = .seconds(10)

    public init(host: String = "127.0.0.1", port: Int = 5672, username: String = "guest", password: String = "guest", virtualHost: String = "/") {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.virtualHost = virtualHost
    }

    /// Parses `amqp://[user[:password]@]host[:port][/vhost]`; an empty path is the vhost `/`,
    /// `/%2f` too, and `/orders` is `orders`.
    public init(url: String) throws {
        guard let components = URLComponents(string: url), components.scheme?.lowercased() == "amqp", let host = components.host, !host.isEmpty else {
            throw RabbitError(.invalidURL, "'\(Redaction.url(url, loneUserInfo: .username))' is not an amqp://host URL")
        }
        self.init(host: host, port: components.port ?? 5672)
        if let user = components.user { username = user.removingPercentEncoding ?? user }
        if let password = components.password { self.password = password.removingPercentEncoding ?? password }
        let path = components.percentEncodedPath
        if path.isEmpty || path == "/" {
            virtualHost = "/"
        } else {
            virtualHost = String(path.dropFirst()).removingPercentEncoding ?? String(path.dropFirst())
        }
    }

    var secrets: SecretScrubber { SecretScrubber([password]) }

    public var description: String {
        "RabbitConfiguration(amqp://\(username):\(Redaction.mask)@\(host):\(port), vhost: \(virtualHost))"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: ["host": host, "port": port, "username": username, "virtualHost": virtualHost])
    }
}
