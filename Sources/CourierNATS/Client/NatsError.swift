/// What can go wrong talking to NATS.
public struct NatsError: Error, CustomStringConvertible, Sendable {
    /// What went wrong: a struct, so a later release can add codes without breaking a `switch`.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String

        private init(_ name: String) { self.name = name }

        /// A server URL could not be parsed.
        public static let invalidURL = Code("invalidURL")
        /// nats.c reported an error (connecting, publishing, subscribing).
        public static let client = Code("client")
        /// A request reached a subject nobody listens to.
        public static let noResponders = Code("noResponders")
        /// A request or JetStream call got no answer in time.
        public static let timeout = Code("timeout")
        /// The JetStream API answered with an error.
        public static let jetStream = Code("jetStream")
        /// A message's headers could not be read.
        public static let malformedHeaders = Code("malformedHeaders")
        /// The connection is closed.
        public static let connectionClosed = Code("connectionClosed")

        public var description: String { name }
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
