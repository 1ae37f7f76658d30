/// Where a transport's connection to its server is: what a readiness check and a dashboard read.
///
/// A struct with a ``Status``, not an enum, so a later release can add statuses without breaking
/// a `switch` in an application (compare with `state.status == .connected`).
public struct ConnectionState: Sendable, Hashable, CustomStringConvertible {
    /// The connection's lifecycle step.
    public struct Status: Sendable, Hashable, CustomStringConvertible {
        private let name: String

        private init(_ name: String) { self.name = name }

        /// Not connected yet: the broker has not run (nor published).
        public static let idle = Status("idle")
        /// The first connect is under way.
        public static let connecting = Status("connecting")
        /// Connected: the server was reachable the last time the client could tell.
        public static let connected = Status("connected")
        /// The connection was lost; the client connects again (at once, or on its next use).
        public static let reconnecting = Status("reconnecting")
        /// Closed by ``BrokerTransport/close()``, or given up after failing to reconnect.
        public static let closed = Status("closed")
        /// The transport does not say (a transport written before connection states existed).
        public static let unknown = Status("unknown")

        public var description: String { name }
    }

    /// The lifecycle step.
    public var status: Status
    /// Why the connection is not (or no longer) up, when the client knows: the last connect or
    /// socket error, the server's close reason. Nil when connected.
    public var reason: String?

    /// A state of `status`, with why the connection is not up when known.
    public init(_ status: Status, reason: String? = nil) {
        self.status = status
        self.reason = reason
    }

    /// Not connected yet (``Status/idle``).
    public static let idle = ConnectionState(.idle)
    /// The first connect under way (``Status/connecting``).
    public static let connecting = ConnectionState(.connecting)
    /// Connected (``Status/connected``).
    public static let connected = ConnectionState(.connected)
    /// A transport that does not say (``Status/unknown``).
    public static let unknown = ConnectionState(.unknown)

    /// A lost connection the client is getting back, with why it was lost when known.
    public static func reconnecting(reason: String?) -> ConnectionState { ConnectionState(.reconnecting, reason: reason) }

    /// A closed connection, with why when it was not a clean close.
    public static func closed(reason: String? = nil) -> ConnectionState { ConnectionState(.closed, reason: reason) }

    /// Whether messages can flow now: connected, or a transport that does not tell.
    public var isUsable: Bool { status == .connected || status == .unknown }

    public var description: String {
        reason.map { "\(status) (\($0))" } ?? status.description
    }
}
