import Courier

/// What can go wrong talking to Redis.
public struct RedisError: Error, CustomStringConvertible, Sendable {
    /// What went wrong: a struct, so a later release can add codes without breaking a `switch`.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String

        private init(_ name: String) { self.name = name }

        /// The URL could not be parsed.
        public static let invalidURL = Code("invalidURL")
        /// The server answered with an error reply.
        public static let server = Code("server")
        /// The connection closed (or was never open).
        public static let connectionClosed = Code("connectionClosed")
        /// A reply did not arrive in time.
        public static let timeout = Code("timeout")
        /// The server's reply broke the protocol or a limit.
        public static let protocolViolation = Code("protocolViolation")
        /// The server's reply did not have the shape the command promises.
        public static let unexpectedReply = Code("unexpectedReply")

        public var description: String { name }
    }

    public var code: Code
    public var message: String
    /// The error that caused this one (a NIO channel error, a TLS failure), when there was one.
    public var underlying: (any Error)?
    public var description: String { "Redis: \(message)" }

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    static func invalidURL(_ url: String, _ reason: String) -> Self {
        Self(.invalidURL, "invalid URL '\(Redaction.url(url))': \(reason)")
    }
}
