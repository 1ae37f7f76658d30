/// What can go wrong talking to Redis.
public struct RedisError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Hashable {
        /// The URL could not be parsed.
        case invalidURL
        /// The server answered with an error reply.
        case server
        /// The connection closed (or was never open).
        case connectionClosed
        /// A reply did not arrive in time.
        case timeout
        /// The server's reply broke the protocol or a limit.
        case protocolViolation
        /// The server's reply did not have the shape the command promises.
        case unexpectedReply
    }

    public var code: Code
    public var message: String
    public var description: String { "Redis: \(message)" }

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    static func invalidURL(_ url: String, _ reason: String) -> Self {
        Self(.invalidURL, "invalid URL '\(url)': \(reason)")
    }
}
