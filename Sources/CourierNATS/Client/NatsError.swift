/// What can go wrong talking to NATS.
public struct NatsError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Hashable {
        /// A server URL could not be parsed.
        case invalidURL
        /// nats.c reported an error (connecting, publishing, subscribing).
        case client
        /// A request reached a subject nobody listens to.
        case noResponders
        /// A request or JetStream call got no answer in time.
        case timeout
        /// The JetStream API answered with an error.
        case jetStream
        /// A message's headers could not be read.
        case malformedHeaders
        /// The connection is closed.
        case connectionClosed
    }

    public var code: Code
    public var message: String
    /// The JetStream API error code (`err_code`), for ``Code/jetStream`` errors.
    public var jetStreamErrorCode: Int?
    public var description: String { "NATS: \(message)" }

    public init(_ code: Code, _ message: String, jetStreamErrorCode: Int? = nil) {
        self.code = code
        self.message = message
        self.jetStreamErrorCode = jetStreamErrorCode
    }
}
