import Courier

/// Where and how to connect to NATS.
///
/// `nats://[user:password@]host[:port]` or `nats://token@host[:port]`; several servers are given
/// as a comma-separated list (`nats://a:4222,nats://b:4222`) and the client fails over between
/// them, re-subscribing after each reconnect. `tls://` URLs, or a ``tls`` setting, connect with
/// TLS; ``credentials`` adds a `.creds` file or an NKey.
public struct NatsConfiguration: Sendable, Hashable {
    /// The server URLs, as nats.c takes them (credentials inside a URL are honoured).
    public var servers: [String]
    /// User and password, when not in the URLs.
    public var username: String?
    public var password: String?
    /// An authentication token, when not in the URLs.
    public var token: String?
    /// TLS settings. nil means TLS only for `tls://` URLs, with the system's trusted authorities
    /// and the URL's host checked; a value turns TLS on for every server.
    public var tls: NatsTLS?
    /// A `.creds` file (user JWT and seed) or an NKey seed file, for servers with decentralised
    /// authentication. Only the paths are kept; nats.c reads the files at each connect.
    public var credentials: NatsCredentials?
    /// The client name the server shows in its monitoring.
    public var name: String = "courier"
    /// How long one connection attempt may take.
    public var connectTimeout: Duration = .seconds(2)
    /// Getting the connection back after a disconnect (100 ms doubling to 5 s, for ever, by
    /// default). nats.c makes the attempts (re-subscribing after each reconnect) and takes its
    /// delays from this policy: the delay before each round through the server list is the
    /// policy's for that round, and ``ReconnectPolicy/maximumAttempts`` bounds the attempts per
    /// server (0: no reconnect). Once nats.c gives up, the connection is closed: waiting publishes
    /// fail with ``NatsError/Code/connectionClosed``.
    public var reconnect: ReconnectPolicy = .default
    /// Reconnect attempts per server after a disconnect; -1 retries forever.
    @available(*, deprecated, message: "use reconnect.maximumAttempts (nil: for ever)")
    public var maxReconnectAttempts: Int {
        get { reconnect.maximumAttempts ?? -1 }
        set { reconnect.maximumAttempts = newValue < 0 ? nil : newValue }
    }
    /// A constant wait between reconnect attempts.
    @available(*, deprecated, message: "use reconnect, a ReconnectPolicy like every broker module's")
    public var reconnectWait: Duration {
        get { reconnect.initialDelay }
        set { (reconnect.initialDelay, reconnect.maximumDelay) = (newValue, newValue) }
    }
    /// Whether the first connection may also be retried in the background when no server answers
    /// (then `connect()` succeeds and messages published meanwhile are buffered).
    public var retryOnFailedConnect = false
    /// Per subscription: the most messages and bytes that may wait for the handler, counted
    /// over nats.c's queue and Courier's hand-off together. Beyond that, core NATS messages are
    /// dropped as a slow consumer (logged, counted in `courier.nats.slow_consumer.dropped`);
    /// JetStream consumers never get that far, their `maxAckPending` is kept under it.
    public var pendingLimits = PendingLimits()
    /// Whether each publish is written to the socket at once (nats.c's "send ASAP"). Otherwise
    /// nats.c's flusher thread batches writes: more throughput for bursts of fire-and-forget
    /// publishes, but up to about a millisecond more latency per message, requests and
    /// JetStream PubAcks included.
    public var sendsImmediately = true
    /// How long JetStream API calls and PubAcks may take.
    public var jetStreamTimeout: Duration = .seconds(5)
    /// How long a publish may take as a whole: waiting for the connection while nats.c
    /// reconnects, sending, and for a JetStream publish its PubAck (which
    /// ``jetStreamTimeout`` bounds too). A publish made while the connection is down waits for
    /// it to come back, then sends; past this it throws ``NatsError/Code/connectionUnavailable``
    /// without handing the message to nats.c, so it is never sent behind the caller's back.
    /// Cancelling the publishing task ends the wait at once.
    public var publishTimeout: Duration = .seconds(30)
    /// How long a graceful shutdown may take to drain subscriptions and flush publishes.
    public var drainTimeout: Duration = .seconds(10)

    /// Bounds on what may wait between the server and a handler.
    public struct PendingLimits: Sendable, Hashable {
        public var messages: Int
        public var bytes: Int

        public init(messages: Int = 65_536, bytes: Int = 64 * 1024 * 1024) {
            precondition(messages > 0 && bytes > 0, "pending limits are positive")
            self.messages = messages
            self.bytes = bytes
        }
    }

    /// A configuration for the given servers.
    public init(servers: [String] = ["nats://127.0.0.1:4222"]) {
        self.servers = servers
    }

    /// Parses `nats://[user:password@]host[:port]`, or several such URLs separated by commas.
    public init(url: String) throws {
        let servers = url.split(separator: ",").map { String($0.filter { !$0.isWhitespace }) }
        guard !servers.isEmpty else { throw NatsError(.invalidURL, "no server URL in '\(Redaction.url(url))'") }
        for server in servers where NatsServerAddress(url: server) == nil {
            throw NatsError(.invalidURL, "invalid URL '\(Redaction.url(server))': expected nats://[user:password@]host[:port] or tls://…")
        }
        self.init(servers: servers)
    }

    /// The server URLs with their passwords and tokens masked, for logs and errors.
    public var redactedServers: [String] { servers.map { Redaction.url($0) } }

    /// Every secret of this configuration (URL passwords and tokens, ``password``, ``token``),
    /// to scrub from nats.c's own error texts.
    var secrets: SecretScrubber { SecretScrubber(urls: servers, [password, token]) }

    /// Whether the connection uses TLS: a ``tls`` setting, or a `tls://` URL.
    var usesTLS: Bool {
        tls != nil || servers.contains { $0.lowercased().hasPrefix("tls://") }
    }

    /// The first server's host and port, for telemetry (`server.address`, `server.port`).
    var primaryAddress: NatsServerAddress? {
        servers.first.flatMap(NatsServerAddress.init(url:))
    }
}

// Configurations get logged and printed: their renderings never show a password or token.
extension NatsConfiguration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        var parts = ["servers: \(redactedServers.joined(separator: ","))"]
        if let username { parts.append("username: \(username)") }
        if password != nil { parts.append("password: \(Redaction.mask)") }
        if token != nil { parts.append("token: \(Redaction.mask)") }
        if let tls { parts.append("tls: \(tls)") }
        if let credentials { parts.append("credentials: \(credentials)") }
        parts.append("name: \(name)")
        return "NatsConfiguration(\(parts.joined(separator: ", ")))"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "servers": redactedServers as Any,
                "username": username as Any,
                "password": password.map { _ in Redaction.mask } as Any,
                "token": token.map { _ in Redaction.mask } as Any,
                "tls": tls as Any,
                "credentials": credentials.map { $0.description } as Any,
                "name": name,
                "connectTimeout": connectTimeout,
                "reconnect": reconnect,
                "retryOnFailedConnect": retryOnFailedConnect,
                "pendingLimits": pendingLimits,
                "sendsImmediately": sendsImmediately,
                "jetStreamTimeout": jetStreamTimeout,
                "publishTimeout": publishTimeout,
                "drainTimeout": drainTimeout,
            ],
            displayStyle: .struct
        )
    }
}

/// The host and port of a `nats://` or `tls://` URL.
struct NatsServerAddress: Hashable {
    var host: String
    var port: Int

    init?(url: String) {
        var rest = Substring(url)
        for scheme in ["nats://", "tls://"] where rest.hasPrefix(scheme) {
            rest = rest.dropFirst(scheme.count)
        }
        if rest.contains("://") { return nil }
        if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        port = 4222
        if let colon = rest.lastIndex(of: ":") {
            guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else { return nil }
            self.port = port
            rest = rest[..<colon]
        }
        guard !rest.isEmpty else { return nil }
        host = String(rest)
    }
}
